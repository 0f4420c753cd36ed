"""Fault injection: a misbehaving Summit never gets a duplicate line, and every line ends up applied."""

import asyncio

from sqlmodel import col, select
from voip_summit_support import Service

from tarifa_common.db import make_engine, session_factory
from tarifa_common.messaging import OutboxEntry
from tarifa_common.testing import eventually
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_voip_summit.adapters.provisioning import Provisioner
from tarifa_voip_summit.adapters.summit import SummitClients
from tarifa_voip_summit.bootstrap import summit_client
from tarifa_voip_summit.simulator import Faults


async def test_lines_created_while_summit_fails_and_loses_answers_end_up_applied_once_each(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    service.summit.inject(
        fail_next=4,
        throttle_next=2,
        retry_after_seconds=0,
        lose_answer_next=3,
        timeout_next=1,
        hang_seconds=1.5,
        ignore_idempotency_key=True,
    )
    ids = []
    for n in range(12):
        body = service.line_body(integration, number=f"+5511300000{n + 10:02d}", contract_id=f"C-{n}")
        answer = await service.http.post("/v1/lines", json=body)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    for line_id in ids:
        await service.applied(line_id)

    terminals = list(service.summit.state.terminals.values())
    assert sorted(t.external_id for t in terminals) == sorted(ids)
    assert service.summit.state.creates_applied == 12
    lines = {line["id"]: line for line in (await service.http.get("/v1/lines")).json()}
    assert {t.terminal_id for t in terminals} == {line["terminal_id"] for line in lines.values()}


async def test_an_operation_that_keeps_failing_is_marked_failed_with_its_error_and_can_be_retried_by_hand(
    service: Service,
) -> None:
    integration = await service.integration()
    await service.catalogue()
    service.summit.inject(fail_next=1000)
    line = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()

    async def failed() -> dict[str, object]:
        current = (await service.http.get(f"/v1/lines/{line['id']}")).json()
        assert current["sync_status"] == "failed", current
        return dict(current)

    current = await eventually(failed, timeout=30)
    assert "Summit unavailable after 5 attempts" in str(current["last_error"])
    [operation] = (await service.http.get(f"/v1/lines/{line['id']}/operations")).json()
    assert (operation["status"], operation["attempts"]) == ("failed", 3)
    assert service.summit.state.terminals == {}

    not_failed = await service.http.post(f"/v1/operations/{operation['id'] + 999}/retry")
    assert not_failed.status_code == 404
    service.summit.state.faults = Faults()
    retried = await service.http.post(f"/v1/operations/{operation['id']}/retry")
    assert retried.json()["status"] == "pending"
    applied = await service.applied(line["id"])
    assert applied["last_error"] is None
    assert len(service.summit.state.terminals) == 1


async def test_reconciliation_reports_drift_as_an_alert_and_resolves_it(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    lines = []
    for number in ("+551130000001", "+551130000002"):
        line = (await service.http.post("/v1/lines", json=service.line_body(integration, number=number))).json()
        lines.append(await service.applied(line["id"]))
    in_step = (await service.http.post("/v1/reconciliations")).json()
    assert in_step == [
        {"integration_id": integration, "missing_on_summit": [], "unknown_on_summit": [], "mismatched": []}
    ]

    state = service.summit.state
    del state.terminals[lines[0]["terminal_id"]]  # someone removed it on Summit's console
    state.terminals[lines[1]["terminal_id"]].category = "BLOQ"  # and changed another one there
    drift = (await service.http.post("/v1/reconciliations")).json()
    assert drift == [
        {
            "integration_id": integration,
            "missing_on_summit": [lines[0]["terminal_id"]],
            "unknown_on_summit": [],
            "mismatched": [lines[1]["terminal_id"]],
        }
    ]
    async with service.voip.runtime.units() as uow:
        rows = (await uow.session.exec(select(OutboxEntry).order_by(col(OutboxEntry.id)))).all()
    alerts = [r for r in rows if r.topic == "alert.events"]
    assert ["alert.raised" in a.headers for a in alerts] == [False, True]  # resolved while in step, then raised
    assert all(a.key == f"voip-summit/line-drift/{integration}".encode() for a in alerts)
    assert "1 line(s) missing on Summit, 0 terminal(s) unknown here, 1 differing" in alerts[-1].value.decode()


async def test_two_replicas_applying_the_queue_apply_each_operation_once(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    settings = service.voip.settings
    engine = make_engine(settings.database_url)
    clients = SummitClients(lambda address: summit_client(settings, address))
    replica = Provisioner(UnitOfWorkFactory(session_factory(engine)), service.voip.box, clients)
    running = asyncio.ensure_future(replica.run(0.01))
    try:
        ids = []
        for n in range(10):
            body = service.line_body(integration, number=f"+5511300000{n + 20:02d}", contract_id=f"C-{n}")
            ids.append((await service.http.post("/v1/lines", json=body)).json()["id"])
        for line_id in ids:
            await service.applied(line_id)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await clients.close()
        await engine.dispose()
    assert service.summit.state.creates_applied == 10
    assert service.summit.state.requests == 20, "each create is one look-up and one POST, done by one replica"
