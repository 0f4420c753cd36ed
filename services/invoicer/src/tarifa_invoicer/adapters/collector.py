"""The collector's watermark API over HTTP (`tarifa_common.service_client`: a short-lived service token, retries)."""

from __future__ import annotations

import logging
from datetime import datetime

import httpx
from pydantic import BaseModel, ValidationError

from tarifa_common.service_client import ServiceClient, ServiceUnavailable
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.checks import SourceWatermark, WatermarkUnavailable

log = logging.getLogger(__name__)


class _Source(BaseModel):
    source_id: str
    reached: bool
    last_call_start: datetime | None = None
    last_record_at: datetime | None = None


class _Watermark(BaseModel):
    """The part of the collector's `Watermark` answer the invoicer reads (extra fields are ignored)."""

    reached: bool
    sources: list[_Source]


class HttpWatermarks:
    """`GET {collector}/v1/watermark?until=...` for one tenant, as the `service` role of that tenant."""

    def __init__(
        self,
        url: str,
        jwt_secret: str,
        *,
        issuer: str = "tarifa",
        timeout: float = 10.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = ServiceClient(
            "the collector",
            url,
            jwt_secret,
            caller="invoicer",
            issuer=issuer,
            timeout=timeout,
            attempts=attempts,
            transport=transport,
        )
        self.url = self.client.url

    @classmethod
    def from_settings(cls, settings: InvoicerSettings) -> HttpWatermarks:
        return cls(
            settings.collector_url,
            settings.jwt_secret.get_secret_value(),
            issuer=settings.jwt_issuer,
            timeout=settings.collector_timeout_seconds,
        )

    async def sources(self, tenant: str, until: datetime) -> list[SourceWatermark]:
        try:
            body = await self.client.get_json(tenant, "/v1/watermark", {"until": until.isoformat()})
        except ServiceUnavailable as error:
            # The finding names the collector and its URL already: the message says what it did.
            raise WatermarkUnavailable(f"it {error.problem}") from error
        try:
            answer = _Watermark.model_validate(body)
        except ValidationError as error:
            raise WatermarkUnavailable(f"its answer is not a watermark: {error.errors()[0]['msg']}") from error
        return [SourceWatermark(s.source_id, s.reached, s.last_call_start, s.last_record_at) for s in answer.sources]
