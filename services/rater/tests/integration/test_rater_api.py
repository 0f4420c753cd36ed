"""The rater's HTTP API on a real database: tariffs in and out as CSV, directory, rated calls, totals, re-rates."""

import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from openpyxl import load_workbook  # type: ignore[import-untyped]

from tarifa_common import auth
from tarifa_common.events import Event
from tarifa_common.testing import eventually, unique
from tarifa_rater import handlers
from tarifa_rater.bootstrap import Rater
from tarifa_rater.entrypoints.api import create_app

SECRET = "r" * 48


class Api:
    def __init__(self, client: httpx.AsyncClient, rater: Rater, tenant: str) -> None:
        self.client, self.rater, self.tenant = client, rater, tenant

    def headers(self, role: str = "operator") -> dict[str, str]:
        token = auth.mint(SECRET, subject="tester", tenant=self.tenant, roles=[role])
        return {"Authorization": f"Bearer {token}"}

    async def rate(self, event: Event) -> None:
        async with self.rater.runtime.units() as uow:
            await handlers.rate_collected_cdr(event, uow, self.rater.store(uow), self.rater.numbering)


@pytest_asyncio.fixture
async def api(database_url: str, rater_settings_factory) -> AsyncIterator[Api]:
    app = create_app(rater_settings_factory(database_url))
    rater: Rater = app.state.rater
    await rater.runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rater") as client:
            yield Api(client, rater, unique("acme"))
    finally:
        await rater.runtime.stop()


async def retry_done(api: Api) -> dict[str, Any]:
    """The tenant's queued retry once the rater's retry loop has finished it."""

    async def done() -> dict[str, Any]:
        retry: dict[str, Any] = (await api.client.get("/v1/unrated-calls/retry", headers=api.headers("viewer"))).json()
        assert retry["state"] == "done", retry
        return retry

    return await eventually(done)


async def load_tariff(api: Api, price_list: str) -> None:
    answer = await api.client.put(
        "/v1/tariffs/standard/versions/2026-11-01T00:00:00-03:00",
        content=price_list,
        headers={**api.headers(), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    answer = await api.client.put(
        "/v1/tariff-assignments/tenant/*", json={"plan_code": "standard"}, headers=api.headers()
    )
    assert answer.status_code == 200, answer.text


async def test_a_tariff_loaded_as_csv_exports_the_same_rates(api: Api, price_list: str) -> None:
    await load_tariff(api, price_list)
    listed = (await api.client.get("/v1/tariffs", headers=api.headers("viewer"))).json()
    assert [(v["code"], v["valid_from"], v["rates"]) for v in listed] == [("standard", "2026-11-01T03:00:00Z", 4)]
    exported = await api.client.get(
        "/v1/tariffs/standard/rates.csv", params={"at": "2026-11-15T00:00:00Z"}, headers=api.headers("viewer")
    )
    assert exported.status_code == 200
    lines = exported.text.splitlines()
    assert lines[1] == "Local,,local,0.12,0.06,0.05,0.03,30,6,0,3,false"
    assert lines[4] == "Portugal,351,,1.2,,0.1,0.8,30,6,0,3,false"  # amounts in their shortest exact form


async def test_a_bad_tariff_file_is_refused_with_the_line_of_each_problem(api: Api) -> None:
    answer = await api.client.put(
        "/v1/tariffs/standard/versions/2026-11-01T00:00:00Z",
        content="destination,call_class,price_per_minute\nLocal,local,0.12\nMobile,vc1,-1\n",
        headers={**api.headers(), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "line 3: price_per_minute", "problem": "'-1' must be zero or more"}]


async def test_a_viewer_cannot_load_tariffs(api: Api, price_list: str) -> None:
    answer = await api.client.put(
        "/v1/tariffs/standard/versions/2026-11-01T00:00:00Z",
        content=price_list,
        headers={**api.headers("viewer"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 403


async def test_unrated_calls_are_listed_then_rated_once_the_extension_exists_and_totalled(
    api: Api, make_cdr, price_list: str
) -> None:
    await load_tariff(api, price_list)
    await api.rate(make_cdr(api.tenant, "r1", extension="2001", billable_seconds=61))
    await api.rate(make_cdr(api.tenant, "r2", extension="2001", billable_seconds=61))
    await api.rate(
        make_cdr(api.tenant, "r3", extension="2002", dialled="987654321", transferred=True, answered_by="2005")
    )
    waiting = (await api.client.get("/v1/unrated-calls", headers=api.headers("viewer"))).json()
    assert sorted((w["record_id"], w["reason"]) for w in waiting) == [
        ("r1", "unknown_extension"),
        ("r2", "unknown_extension"),
        ("r3", "unknown_extension"),
    ]
    directory = "extension,line_id,cost_centre,allowed_classes\n2001,line-1,sales,\n2002,line-2,lobby,local\n"
    imported = await api.client.post(
        "/v1/extensions/import", content=directory, headers={**api.headers(), "Content-Type": "text/csv"}
    )
    assert imported.json() == {
        "imported": 2,
        "retried": 0,
        "retry": {"state": "waiting", "requests": 1, "waiting_calls": 3, "progress": "/v1/unrated-calls/retry"},
    }
    assert (await retry_done(api))["rated"] == 3
    assert (await api.client.get("/v1/unrated-calls", headers=api.headers("viewer"))).json() == []

    totals = await api.client.get(
        "/v1/rated-calls/totals", params={"group_by": "cost_centre"}, headers=api.headers("viewer")
    )
    assert [(t["key"], t["calls"], t["amount"], t["amount_unrounded"], t["out_of_class"]) for t in totals.json()] == [
        ("lobby", 1, "0.65", "0.65", 1),  # VC1 60 s: 0.05 + 0.60
        ("sales", 2, "0.36", "0.364", 0),  # 2 x (0.05 + 0.12 * 66/60), rounded once
    ]
    transferred = await api.client.get(
        "/v1/rated-calls", params={"transferred": "true", "answered_by": "2005"}, headers=api.headers("viewer")
    )
    assert [(c["record_id"], c["call_class"], c["out_of_class"]) for c in transferred.json()] == [("r3", "vc1", True)]
    exported = await api.client.get(
        "/v1/rated-calls.csv", params={"call_class": "local"}, headers=api.headers("viewer")
    )
    rows = exported.text.splitlines()
    assert len(rows) == 3 and rows[0].startswith("record_id,version,started_at")
    workbook = await api.client.get(
        "/v1/rated-calls.xlsx", params={"group_by": "cost_centre"}, headers=api.headers("viewer")
    )
    assert workbook.status_code == 200
    sheets = load_workbook(io.BytesIO(workbook.content), read_only=True)
    assert sheets.sheetnames == ["calls", "totals by cost_centre"]
    assert len(list(sheets["calls"].iter_rows())) == 4
    totals_sheet = [list(r) for r in sheets["totals by cost_centre"].iter_rows(values_only=True)]
    assert totals_sheet[1][0] == "lobby" and totals_sheet[2][:3] == ["sales", "BRL", 2]
    assert Decimal(str(totals_sheet[2][5])) == Decimal("0.36")


async def test_a_rerate_through_the_api_versions_the_changed_calls_and_reports_the_difference(
    api: Api, make_cdr, price_list: str
) -> None:
    await load_tariff(api, price_list)
    await api.client.put("/v1/extensions/2001", json={"cost_centre": "sales"}, headers=api.headers())
    await api.rate(make_cdr(api.tenant, "r1", billable_seconds=61))
    await load_tariff(api, price_list.replace("0.12,0.06", "0.10,0.05"))
    body = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    first = await api.client.post("/v1/rerates", json=body, headers=api.headers())
    second = await api.client.post("/v1/rerates", json=body, headers=api.headers())
    assert first.json() == {"examined": 1, "changed": 1, "newly_rated": 0, "still_unrated": 0, "difference": "-0.022"}
    assert second.json()["changed"] == 0
    [call] = (await api.client.get("/v1/rated-calls", headers=api.headers("viewer"))).json()
    assert (call["version"], Decimal(call["amount"])) == (2, Decimal("0.16"))


async def test_a_rerate_with_an_end_before_its_start_names_the_field(api: Api) -> None:
    answer = await api.client.post(
        "/v1/rerates", json={"start": "2026-12-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, headers=api.headers()
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "end"


async def test_a_tenant_holiday_and_a_source_home_area_change_how_calls_are_priced(
    api: Api, make_cdr, price_list: str
) -> None:
    await load_tariff(api, price_list)
    await api.client.put("/v1/extensions/2001", json={"cost_centre": "sales"}, headers=api.headers())
    holiday = await api.client.put("/v1/holidays/2026-11-23", json={"name": "bench holiday"}, headers=api.headers())
    assert holiday.status_code == 200
    numbering = await api.client.put(
        "/v1/numbering/pbx-rio", json={"country_code": "55", "home_area_code": "21"}, headers=api.headers()
    )
    assert numbering.status_code == 200
    await api.rate(make_cdr(api.tenant, "r1", billable_seconds=60))  # Monday noon, but a holiday: reduced
    await api.rate(make_cdr(api.tenant, "r2", source_id="pbx-rio", dialled="987654321"))  # a Rio mobile: VC1 from Rio
    calls = {c["record_id"]: c for c in (await api.client.get("/v1/rated-calls", headers=api.headers("viewer"))).json()}
    assert (calls["r1"]["band"], calls["r1"]["amount"]) == ("reduced", "0.11")  # 0.05 + 0.06
    assert (calls["r2"]["call_class"], calls["r2"]["called_e164"]) == ("vc1", "5521987654321")
    bad = await api.client.put("/v1/numbering/*", json={"home_area_code": "2"}, headers=api.headers())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "home_area_code"


async def test_deleting_a_numbering_context_falls_back_to_the_tenant_default_then_the_built_in_one(
    api: Api, make_cdr, price_list: str
) -> None:
    await load_tariff(api, price_list)
    await api.client.put("/v1/extensions/2001", json={}, headers=api.headers())
    await api.client.put("/v1/numbering/pbx-rio", json={"home_area_code": "21"}, headers=api.headers())
    await api.client.put("/v1/numbering/*", json={"home_area_code": "31"}, headers=api.headers())

    async def home_of_a_mobile_call(record: str) -> str:
        await api.rate(make_cdr(api.tenant, record, source_id="pbx-rio", dialled="987654321"))
        calls = (await api.client.get("/v1/rated-calls", headers=api.headers("viewer"))).json()
        e164: str = next(c["called_e164"] for c in calls if c["record_id"] == record)
        return e164[2:4]

    assert await home_of_a_mobile_call("r1") == "21"  # the source's own context
    removed = await api.client.delete("/v1/numbering/pbx-rio", headers=api.headers())
    assert removed.status_code == 204, removed.text
    assert await home_of_a_mobile_call("r2") == "31"  # the tenant's default
    assert (await api.client.delete("/v1/numbering/*", headers=api.headers())).status_code == 204
    assert await home_of_a_mobile_call("r3") == "11"  # the built-in default (TARIFA_RATER_HOME_AREA_CODE)
    missing = await api.client.delete("/v1/numbering/pbx-rio", headers=api.headers())
    assert missing.status_code == 404 and "pbx-rio" in missing.json()["detail"]
    viewer = await api.client.delete("/v1/numbering/*", headers=api.headers("viewer"))
    assert viewer.status_code == 403


async def test_a_line_allowance_is_set_and_its_usage_reported_for_the_cycle(
    api: Api, make_cdr, price_list: str
) -> None:
    await load_tariff(api, price_list)
    await api.client.put("/v1/extensions/2001", json={"line_id": "line-1"}, headers=api.headers())
    answer = await api.client.put(
        "/v1/allowances/line-1",
        json={"included_minutes": 1, "due_day": 25, "credit_limit": "10"},
        headers=api.headers(),
    )
    assert answer.status_code == 200, answer.text
    await api.rate(make_cdr(api.tenant, "r1", billable_seconds=61))  # 66 s charged: 60 covered, 6 s overage
    usage = await api.client.get(
        "/v1/allowances/line-1/usage", params={"day": "2026-11-23"}, headers=api.headers("viewer")
    )
    assert usage.json() == {
        "line_id": "line-1",
        "cycle_start": "2026-10-25",
        "cycle_end": "2026-11-24",
        "included_seconds": 60,
        "used_seconds": 66,
        "spent": "0.016545454545",  # 0.182 * 6/66, carried to 12 decimals
        "thresholds_announced": [80, 100],
        "credit_exceeded": False,
    }
    missing = await api.client.get("/v1/allowances/line-9/usage", headers=api.headers("viewer"))
    assert missing.status_code == 404


async def test_a_new_tariff_retries_the_calls_waiting_for_a_tariff_and_a_new_extension_only_its_own(
    api: Api, make_cdr, price_list: str
) -> None:
    idle = (await api.client.get("/v1/unrated-calls/retry", headers=api.headers("viewer"))).json()
    assert (idle["state"], idle["waiting_calls"]) == ("idle", 0)
    extension = await api.client.put("/v1/extensions/2001", json={"line_id": "line-1"}, headers=api.headers())
    assert extension.status_code == 200, extension.text
    await api.rate(make_cdr(api.tenant, "r1", extension="2001"))  # no tariff yet
    await api.rate(make_cdr(api.tenant, "r2", extension="2002", caller="2002"))  # unknown extension
    await api.rate(make_cdr(api.tenant, "r3", extension="2003", caller="2003"))  # unknown extension
    answer = await api.client.put(
        "/v1/tariffs/standard/versions/2026-11-01T00:00:00-03:00",
        content=price_list,
        headers={**api.headers(), "Content-Type": "text/csv"},
    )
    assert answer.json()["retry"]["waiting_calls"] == 3
    assert (await retry_done(api))["rated"] == 0  # nothing is assigned yet: r1 still waits for a tariff
    assigned = await api.client.put(
        "/v1/tariff-assignments/tenant/*", json={"plan_code": "standard"}, headers=api.headers()
    )
    assert assigned.json()["retry"]["state"] == "waiting"
    retry = await retry_done(api)  # r1; r2 and r3 wait for their extensions, not for a tariff
    assert (retry["reasons"], retry["examined"], retry["rated"]) == (["no_tariff"], 1, 1)
    await api.client.put("/v1/extensions/2002", json={"line_id": "line-2"}, headers=api.headers())
    assert (await retry_done(api))["rated"] == 1
    waiting = (await api.client.get("/v1/unrated-calls", headers=api.headers("viewer"))).json()
    assert [(w["record_id"], w["reason"]) for w in waiting] == [("r3", "unknown_extension")]


async def test_extensions_aliases_plan_versions_assignments_and_holidays_can_be_removed(
    api: Api, make_cdr, price_list: str
) -> None:
    await load_tariff(api, price_list)
    await api.client.put("/v1/extensions/2001", json={"line_id": "line-1"}, headers=api.headers())
    await api.client.put("/v1/aliases/1133335555", json={"extension": "2001"}, headers=api.headers())
    await api.client.put("/v1/holidays/2026-11-20", json={"name": "Consciência Negra"}, headers=api.headers())
    version = "/v1/tariffs/standard/versions/2026-11-01T00:00:00-03:00"
    for path in (
        "/v1/aliases/1133335555",
        "/v1/extensions/2001",
        "/v1/holidays/2026-11-20",
        "/v1/tariff-assignments/tenant/*",
        version,
    ):
        assert (await api.client.delete(path, headers=api.headers("viewer"))).status_code == 403
        assert (await api.client.delete(path, headers=api.headers())).status_code == 204, path
        missing = await api.client.delete(path, headers=api.headers())
        assert missing.status_code == 404 and missing.json()["detail"], path
    assert (await api.client.get("/v1/extensions", headers=api.headers("viewer"))).json() == []
    assert (await api.client.get("/v1/tariffs", headers=api.headers("viewer"))).json() == []
    await api.rate(make_cdr(api.tenant, "r1", extension="2001"))
    [waiting] = (await api.client.get("/v1/unrated-calls", headers=api.headers("viewer"))).json()
    assert waiting["reason"] == "unknown_extension"
