"""The rater's and the invoicer's report APIs over HTTP (httpx), retried with tenacity, with a service token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from tarifa_common import auth
from tarifa_notifier.domain.reports import Attachment, CostCentreTotal, InvoiceSummary, ReportFormat
from tarifa_notifier.handlers import ReportSourceDown

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReportSourceConfig:
    rater_url: str
    invoicer_url: str
    jwt_secret: str
    jwt_issuer: str = "tarifa"
    attempts: int = 3
    wait_seconds: float = 1.0
    timeout: float = 60.0


class _Retryable(Exception):
    """A 5xx answer or a 429: the service is there but cannot answer now."""


def _retryable(error: BaseException) -> bool:
    return isinstance(error, (_Retryable, httpx.TransportError))


class HttpReportSource:
    """Reads reports as the schedule's tenant: a short-lived token with the `service` role, minted per call."""

    def __init__(self, config: ReportSourceConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport

    async def cost_centre_totals(self, tenant: str, start: datetime, end: datetime) -> list[CostCentreTotal]:
        answer = await self._get(
            "rater",
            self.config.rater_url,
            "/v1/rated-calls/totals",
            tenant,
            {"group_by": "cost_centre", "start": start.isoformat(), "end": end.isoformat()},
        )
        return [
            CostCentreTotal(
                cost_centre=str(t["key"]),
                currency=str(t["currency"]),
                calls=int(t["calls"]),
                billable_seconds=int(t["billable_seconds"]),
                amount=Decimal(str(t["amount"])),
            )
            for t in _json_list(answer)
        ]

    async def rated_calls_file(self, tenant: str, start: datetime, end: datetime, fmt: ReportFormat) -> Attachment:
        params = {"start": start.isoformat(), "end": end.isoformat()}
        if fmt is ReportFormat.XLSX:
            params["group_by"] = "cost_centre"
        answer = await self._get("rater", self.config.rater_url, f"/v1/rated-calls.{fmt.value}", tenant, params)
        return _file(answer, f"rated-calls.{fmt.value}")

    async def invoices(self, tenant: str, month: str) -> list[InvoiceSummary]:
        answer = await self._get("invoicer", self.config.invoicer_url, "/v1/invoices", tenant, {"period": month})
        return [
            InvoiceSummary(
                number=str(i["number"]),
                kind=str(i["kind"]),
                customer_id=str(i["customer_id"]),
                issue_date=date.fromisoformat(str(i["issue_date"])),
                currency=str(i["currency"]),
                net=Decimal(str(i["net"])),
                tax=Decimal(str(i["tax"])),
                total=Decimal(str(i["total"])),
            )
            for i in _json_list(answer)
        ]

    async def invoicing_file(self, tenant: str, month: str, fmt: ReportFormat) -> Attachment:
        path = f"/v1/reports/invoices.{fmt.value}"
        answer = await self._get("invoicer", self.config.invoicer_url, path, tenant, {"period": month})
        return _file(answer, f"invoices-{month}.{fmt.value}")

    async def _get(self, service: str, base_url: str, path: str, tenant: str, params: dict[str, str]) -> httpx.Response:
        url = f"{base_url.rstrip('/')}{path}"
        token = auth.mint(
            self.config.jwt_secret,
            subject="notifier",
            tenant=tenant,
            roles=[auth.SERVICE],
            issuer=self.config.jwt_issuer,
            ttl=timedelta(minutes=5),
        )

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "report source %s %s failed (attempt %d), retrying: %s", service, url, state.attempt_number, error
            )

        try:
            async with httpx.AsyncClient(timeout=self.config.timeout, transport=self._transport) as client:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.config.attempts),
                    wait=wait_exponential(multiplier=self.config.wait_seconds, max=30),
                    retry=retry_if_exception(_retryable),
                    before_sleep=before_sleep,
                    reraise=True,
                ):
                    with attempt:
                        answer = await client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
                        if answer.status_code >= 500 or answer.status_code == 429:
                            raise _Retryable(f"answered {answer.status_code}: {answer.text[:200]}")
        except (_Retryable, httpx.HTTPError) as error:
            raise ReportSourceDown(f"{service} at {url}: {type(error).__name__}: {error}") from error
        if answer.status_code >= 300:
            # A refusal (bad token, unknown tenant, bad month) will not pass by retrying at once.
            raise ReportSourceDown(f"{service} at {url} answered {answer.status_code}: {answer.text[:300]}")
        return answer


def _json_list(answer: httpx.Response) -> list[dict[str, Any]]:
    body = answer.json()
    if not isinstance(body, list):
        raise ReportSourceDown(f"{answer.url} answered {type(body).__name__}, not a list")
    return body


def _file(answer: httpx.Response, name: str) -> Attachment:
    media_type = answer.headers.get("content-type", "application/octet-stream").split(";", 1)[0].strip()
    return Attachment(name, media_type, answer.content)
