"""The rater's and the invoicer's report APIs over HTTP (`tarifa_common.service_client`: service token, retries)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from tarifa_common.service_client import ServiceClient, ServiceUnavailable
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


class HttpReportSource:
    """Reads reports as the schedule's tenant: a short-lived token with the `service` role, minted per call."""

    def __init__(self, config: ReportSourceConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._services = {
            name: ServiceClient(
                name,
                url,
                config.jwt_secret,
                caller="notifier",
                issuer=config.jwt_issuer,
                timeout=config.timeout,
                attempts=config.attempts,
                wait_seconds=config.wait_seconds,
                max_wait_seconds=30,
                transport=transport,
            )
            for name, url in (("rater", config.rater_url), ("invoicer", config.invoicer_url))
        }

    async def cost_centre_totals(self, tenant: str, start: datetime, end: datetime) -> list[CostCentreTotal]:
        answer = await self._get(
            "rater",
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
        answer = await self._get("rater", f"/v1/rated-calls.{fmt.value}", tenant, params)
        return _file(answer, f"rated-calls.{fmt.value}")

    async def invoices(self, tenant: str, month: str) -> list[InvoiceSummary]:
        answer = await self._get("invoicer", "/v1/invoices", tenant, {"period": month})
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
        answer = await self._get("invoicer", path, tenant, {"period": month})
        return _file(answer, f"invoices-{month}.{fmt.value}")

    async def _get(self, service: str, path: str, tenant: str, params: dict[str, str]) -> httpx.Response:
        client = self._services[service]
        try:
            return await client.request("GET", tenant, path, params=params)
        except ServiceUnavailable as error:
            # A refusal (bad token, unknown tenant, bad month) is not retried: it will not pass at once.
            raise ReportSourceDown(f"{service} at {client.url}{path} {error.problem}") from error


def _json_list(answer: httpx.Response) -> list[dict[str, Any]]:
    body = answer.json()
    if not isinstance(body, list):
        raise ReportSourceDown(f"{answer.url} answered {type(body).__name__}, not a list")
    return body


def _file(answer: httpx.Response, name: str) -> Attachment:
    media_type = answer.headers.get("content-type", "application/octet-stream").split(";", 1)[0].strip()
    return Attachment(name, media_type, answer.content)
