"""The collector's watermark API over HTTP (httpx, tenacity), called with a short-lived service token."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tarifa_common import auth
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.checks import SourceWatermark, WatermarkUnavailable

log = logging.getLogger(__name__)
TOKEN_TTL = timedelta(minutes=5)


class _Source(BaseModel):
    source_id: str
    reached: bool
    last_call_start: datetime | None = None
    last_record_at: datetime | None = None


class _Watermark(BaseModel):
    """The part of the collector's `Watermark` answer the invoicer reads (extra fields are ignored)."""

    reached: bool
    sources: list[_Source]


class _Busy(Exception):
    """The collector answered 5xx or 429: worth another try."""


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
        self.url = url.rstrip("/")
        self._secret, self._issuer = jwt_secret, issuer
        self._timeout, self._attempts, self._transport = timeout, attempts, transport

    @classmethod
    def from_settings(cls, settings: InvoicerSettings) -> HttpWatermarks:
        return cls(
            settings.collector_url,
            settings.jwt_secret.get_secret_value(),
            issuer=settings.jwt_issuer,
            timeout=settings.collector_timeout_seconds,
        )

    async def sources(self, tenant: str, until: datetime) -> list[SourceWatermark]:
        token = auth.mint(
            self._secret, subject="invoicer", tenant=tenant, roles=[auth.SERVICE], issuer=self._issuer, ttl=TOKEN_TTL
        )
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                body = await self._get(client, {"until": until.isoformat()}, headers)
        except httpx.HTTPError as error:
            raise WatermarkUnavailable(f"{type(error).__name__}: {str(error) or 'no answer'}") from error
        except _Busy as error:
            raise WatermarkUnavailable(f"it answered {error} after {self._attempts} tries") from error
        try:
            answer = _Watermark.model_validate(body)
        except ValidationError as error:
            raise WatermarkUnavailable(f"its answer is not a watermark: {error.errors()[0]['msg']}") from error
        return [SourceWatermark(s.source_id, s.reached, s.last_call_start, s.last_record_at) for s in answer.sources]

    async def _get(self, client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]) -> Any:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type((httpx.TransportError, _Busy)),
            reraise=True,
        ):
            with attempt:
                answer = await client.get(f"{self.url}/v1/watermark", params=params, headers=headers)
                if answer.status_code >= 500 or answer.status_code == 429:
                    raise _Busy(f"HTTP {answer.status_code}")
                if answer.status_code in (401, 403):
                    raise WatermarkUnavailable(
                        f"it refused the invoicer's token (HTTP {answer.status_code}): "
                        "both services need the same TARIFA_JWT_SECRET and TARIFA_JWT_ISSUER"
                    )
                if answer.status_code != 200:
                    raise WatermarkUnavailable(f"it answered HTTP {answer.status_code}: {answer.text[:200]}")
                try:
                    return answer.json()
                except ValueError as error:
                    raise WatermarkUnavailable("its answer is not JSON") from error
        raise AssertionError("unreachable")  # pragma: no cover
