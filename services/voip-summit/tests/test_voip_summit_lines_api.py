"""Lines through the API on SQLite and PostgreSQL: Summit provisioning, DIDs, numbers, bad input, secrets."""

import asyncio
import logging
from decimal import Decimal

import pytest
from voip_summit_support import SUMMIT_PASSWORD, Service


async def test_a_created_line_gets_its_terminal_and_credential_from_summit(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    answer = await service.http.post("/v1/lines", json=service.line_body(integration))
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["sync_status"] == "pending"
    assert created["cost_centre"] == "Default"  # "DEFAULT" matched the registered cost centre without case

    line = await service.applied(created["id"])
    [terminal] = service.summit.state.terminals.values()
    assert line["terminal_id"] == terminal.terminal_id
    assert line["credential"] == "sip551130000001@sip.summit.example"
    assert (terminal.number, terminal.category, terminal.account_code, terminal.due_day) == (
        "551130000001",
        "LIVRE",
        "123456",
        10,
    )
    assert terminal.credit_limit is not None
    assert Decimal(terminal.credit_limit) == Decimal("150.00")


async def test_dids_route_to_the_main_line_or_to_a_new_port_and_hold_their_numbers(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    line = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()
    main = await service.http.post(f"/v1/lines/{line['id']}/dids", json={"number": "+551130000050", "port": 1})
    ported = await service.http.post(
        f"/v1/lines/{line['id']}/dids", json={"number": "+551130000051", "priority": 2, "port": 3}
    )
    silent = await service.http.post(f"/v1/lines/{line['id']}/dids", json={"number": "+551130000052", "port": None})
    assert [main.status_code, ported.status_code, silent.status_code] == [201, 201, 201]
    assert main.json()["city"] == "São Paulo"
    await service.applied(line["id"])

    [terminal] = service.summit.state.terminals.values()
    assert sorted((d.number, d.port) for d in terminal.dids) == [
        ("551130000050", 1),
        ("551130000051", 3),
        ("551130000052", None),
    ]
    assert [p.number for p in service.summit.state.ports.values()] == ["551130000051"]
    [range_] = (await service.http.get("/v1/number-ranges")).json()
    assert (range_["size"], range_["in_use"]) == (100, 4)
    page = (await service.http.get(f"/v1/number-ranges/{range_['id']}/numbers", params={"limit": 3})).json()
    assert [(n["number"], n["status"]) for n in page["numbers"]] == [
        ("+551130000000", "available"),
        ("+551130000001", "in_use"),
        ("+551130000002", "available"),
    ]

    removed = await service.http.delete(f"/v1/lines/{line['id']}/dids/551130000051")
    assert removed.status_code == 204
    await service.applied(line["id"])
    assert service.summit.state.ports == {}
    in_use = (await service.http.get(f"/v1/number-ranges/{range_['id']}/numbers", params={"status": "in_use"})).json()
    assert [n["number"] for n in in_use["numbers"]] == ["+551130000001", "+551130000050", "+551130000052"]


async def test_deactivating_and_cancelling_reach_summit_and_cancelling_frees_the_number(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    line = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()
    await service.applied(line["id"])
    off = await service.http.patch(f"/v1/lines/{line['id']}", json={"active": False, "call_limit": 4})
    assert off.json()["state"] == "inactive"
    await service.applied(line["id"])
    [terminal] = service.summit.state.terminals.values()
    assert (terminal.active, terminal.call_limit) == (False, 4)

    cancelled = await service.http.post(f"/v1/lines/{line['id']}/cancel")
    assert cancelled.json()["state"] == "cancelled"
    await service.applied(line["id"])
    assert service.summit.state.terminals == {}
    again = await service.http.post("/v1/lines", json=service.line_body(integration, contract_id="C-2"))
    assert again.status_code == 201, "a cancelled line's number is available again"
    kinds = [o["kind"] for o in (await service.http.get(f"/v1/lines/{line['id']}/operations")).json()]
    assert kinds == ["create", "update", "cancel"]


BAD_INPUT = [
    ({"due_day": 26}, "due_day", "between 1 and 25"),
    ({"due_day": 0}, "due_day", "between 1 and 25"),
    ({"account_code": "12345"}, "account_code", "exactly 6 digits"),
    ({"account_code": "12a456"}, "account_code", "exactly 6 digits"),
    ({"number": "+551140000001"}, "number", "outside every number range"),
    ({"number": "call me"}, "number", "not a telephone number"),
    ({"partition": "NOWHERE"}, "partition", "unknown partition"),
    ({"category": "LOCAL"}, "category", "not allowed in partition"),
    ({"cost_centre": "Finance"}, "cost_centre", "unknown cost centre"),
    ({"call_limit": 0}, "call_limit", "at least 1"),
    ({"bid_type": "fax"}, "bid_type", "'terminal' or 'trunk'"),
]


async def test_bad_line_input_is_refused_naming_the_field(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    for change, field, problem in BAD_INPUT:
        answer = await service.http.post("/v1/lines", json=service.line_body(integration, **change))
        assert answer.status_code == 422, (change, answer.text)
        [error] = answer.json()["errors"]
        assert (error["field"], change) == (field, change)
        assert problem in error["problem"], (change, error)
    assert (await service.http.get("/v1/lines")).json() == []


async def test_a_did_port_must_be_positive_and_a_number_in_use_is_a_conflict(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    line = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()
    bad_port = await service.http.post(f"/v1/lines/{line['id']}/dids", json={"number": "+551130000060", "port": 0})
    assert bad_port.status_code == 422
    assert bad_port.json()["errors"] == [
        {"field": "port", "problem": "must be a positive integer (1 = the main line) or empty (got 0)"}
    ]
    taken = await service.http.post(f"/v1/lines/{line['id']}/dids", json={"number": "+551130000001"})
    assert taken.status_code == 409
    assert "already in use by line" in taken.json()["detail"]


async def test_two_lines_racing_for_one_number_never_both_get_it(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    bodies = [service.line_body(integration, contract_id=f"C-{i}", number="+551130000007") for i in range(8)]
    answers = await asyncio.gather(*(service.http.post("/v1/lines", json=body) for body in bodies))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 7, [a.text for a in answers]
    lines = (await service.http.get("/v1/lines")).json()
    assert [line["number"] for line in lines] == ["+551130000007"]


async def test_the_summit_password_is_encrypted_and_never_answered_nor_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    integration = await service.integration()
    await service.catalogue()
    answers = [
        await service.http.get("/v1/integrations"),
        await service.http.get(f"/v1/integrations/{integration}"),
        await service.http.patch(f"/v1/integrations/{integration}", json={"description": "renamed"}),
        await service.http.post("/v1/lines", json=service.line_body(integration)),
        await service.http.post("/v1/lines", json=service.line_body(integration, due_day=30)),
        await service.http.get(f"/v1/integrations/{integration}/summit/partitions"),
        await service.http.get("/openapi.json"),
    ]
    line_id = answers[3].json()["id"]
    await service.applied(line_id)
    answers.append(await service.http.get(f"/v1/lines/{line_id}"))
    assert answers[1].json()["password_set"] is True
    for answer in answers:
        assert answer.status_code < 500
        assert SUMMIT_PASSWORD not in answer.text
    assert caplog.records, "the run logged nothing, so the check below would prove nothing"
    for record in caplog.records:
        assert SUMMIT_PASSWORD not in record.getMessage()
        assert SUMMIT_PASSWORD not in str(record.__dict__)
    async with service.voip.runtime.units() as uow:
        row = await service.voip.store(uow).integration(service.tenant, integration)
    assert SUMMIT_PASSWORD not in row.access_password_encrypted
    assert service.voip.box.open(row.access_password_encrypted) == SUMMIT_PASSWORD
