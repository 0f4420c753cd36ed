"""The invoicer asks a real collector, over HTTP with a service token, whether every source delivered the period."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tarifa_common import auth
from tarifa_common.broker import EmbeddedBroker
from tarifa_common.testing import ServedService, eventually, serve_service, unique
from tarifa_invoicer.adapters.collector import HttpWatermarks
from tarifa_invoicer.domain.checks import WatermarkUnavailable

pytestmark = pytest.mark.broker
SECRET = "a-cross-service-secret-long-enough-for-hs256"
PROFILE = {
    "seller_name": "Tarifa Telecom SAS",
    "seller_vat_id": "FR40123456789",
    "seller_street": "1 rue du Port",
    "seller_city": "Marseille",
    "seller_postcode": "13002",
    "seller_country": "FR",
    "seller_endpoint": "0009:12345678900011",
    "default_tax_rate": "20",
    "currency": "EUR",
    "series": "F",
    "credit_series": "CN",
    "time_zone": "UTC",
}


async def serve(name: str, tmp_path: Path, broker: EmbeddedBroker, **settings: Any) -> ServedService:
    return await serve_service(name, tmp_path, broker, jwt_secret=SECRET, **settings)


@pytest_asyncio.fixture
async def platform(
    tmp_path: Path, broker: EmbeddedBroker, fast_consumers: dict[str, str]
) -> AsyncIterator[tuple[ServedService, ServedService]]:
    collector = await serve("collector", tmp_path, broker)
    invoicer = await serve("invoicer", tmp_path, broker, collector_url=collector.url)
    yield collector, invoicer
    await invoicer.stop()
    if not collector.task.done():
        await collector.stop()


def bearer(tenant: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='test', tenant=tenant, roles=list(roles))}"}


async def deliver(api: httpx.AsyncClient, tenant: str, source_id: str, call_id: str, started_at: str) -> None:
    call = {
        "call_id": call_id,
        "started_at": started_at,
        "duration_seconds": 70,
        "billable_seconds": 60,
        "direction": "outbound",
        "caller": "203",
        "dialled": "01133334444",
        "extension": "203",
    }
    answer = await api.post(
        "/v1/cdrs", params={"source_id": source_id}, json={"records": [call]}, headers=bearer(tenant, "ingest")
    )
    assert answer.json()["accepted"] == 1, answer.text


async def run_to_end(api: httpx.AsyncClient, tenant: str, period: str) -> dict[str, Any]:
    started = await api.post(
        "/v1/billing-runs",
        headers=bearer(tenant, "operator"),
        json={"period": period, "hold_on_findings": True, "issue_date": "2026-11-02"},
    )
    assert started.status_code == 202, started.text

    async def ended() -> dict[str, Any]:
        body: dict[str, Any] = (
            await api.get(f"/v1/billing-runs/{started.json()['id']}", headers=bearer(tenant, "viewer"))
        ).json()
        assert body["status"] in {"held", "finished", "failed"}, body
        return body

    return await eventually(ended, timeout=60)


def source_findings(run: dict[str, Any]) -> dict[str, str]:
    return {f["object_id"]: f["detail"] for f in run["checks"] if f["check"] == "sources_delivered"}


async def test_a_period_is_held_until_every_source_delivered_and_an_unreachable_collector_holds_it_too(
    platform: tuple[ServedService, ServedService],
) -> None:
    collector, invoicer = platform
    tenant = unique("tenant")
    admin = bearer(tenant, "admin")
    async with (
        httpx.AsyncClient(base_url=collector.url) as collecting,
        httpx.AsyncClient(base_url=invoicer.url) as billing,
    ):
        for source_id in ("feed-a", "feed-b"):
            created = await collecting.post(
                "/v1/sources", json={"id": source_id, "kind": "http", "time_zone": "UTC"}, headers=admin
            )
            assert created.status_code == 201, created.text
        await deliver(collecting, tenant, "feed-a", "a1", "2026-11-01T08:00:00")  # a call of November: October is in
        # feed-b has delivered nothing yet: its calls may still sit in the PBX's buffer

        assert (await billing.put("/v1/billing-profile", json=PROFILE, headers=admin)).status_code == 200
        customer = await billing.post(
            "/v1/customers",
            headers=admin,
            json={
                "name": "Hotel du Lac",
                "street": "5 quai Ouest",
                "city": "Annecy",
                "postcode": "74000",
                "country": "FR",
                "emails": ["billing@hotel.example"],
            },
        )
        assert customer.status_code == 201, customer.text
        contract = await billing.post(
            "/v1/contracts",
            headers=admin,
            json={"customer_id": customer.json()["id"], "due_day": 10, "starts_on": "2026-10-01"},
        )
        assert contract.status_code == 201, contract.text
        charge = {"description": "Subscription", "amount": "10.00", "recurring": True, "starts_on": "2026-10-01"}
        assert (
            await billing.post(f"/v1/contracts/{contract.json()['id']}/charges", headers=admin, json=charge)
        ).status_code == 201

        held = await run_to_end(billing, tenant, "2026-10")
        assert held["status"] == "held", held
        findings = source_findings(held)
        assert list(findings) == ["feed-b"]
        assert "2026-11-01T00:00:00+00:00" in findings["feed-b"]
        assert "last call started never" in findings["feed-b"]
        assert (await billing.get("/v1/invoices", headers=admin)).json() == []

        await deliver(collecting, tenant, "feed-b", "b2", "2026-11-01T00:05:00")
        issued = await run_to_end(billing, tenant, "2026-10")
        assert (issued["status"], issued["issued"], source_findings(issued)) == ("finished", 1, {})
        (invoice,) = (await billing.get("/v1/invoices", headers=admin)).json()
        assert (invoice["number"], invoice["total"]) == ("F-000001", "12.00")

        other_secret = HttpWatermarks(collector.url, "another-secret-than-the-collector-has-000")
        with pytest.raises(WatermarkUnavailable, match=r"refused the invoicer's token \(HTTP 401\)"):
            await other_secret.sources(tenant, datetime(2026, 11, 1, tzinfo=UTC))

        await collector.stop()
        unreachable = await run_to_end(billing, tenant, "2026-11")
        assert unreachable["status"] == "held", unreachable
        detail = source_findings(unreachable)["collector"]
        assert collector.url in detail
        assert "TARIFA_INVOICER_COLLECTOR_URL" in detail
        assert len((await billing.get("/v1/invoices", headers=admin)).json()) == 1
