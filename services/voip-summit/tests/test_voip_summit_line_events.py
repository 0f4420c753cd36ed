"""Every change of a line leaves a `line.events` event in the outbox, in the same transaction."""

from decimal import Decimal

from sqlmodel import col, select
from voip_summit_support import Service

from tarifa_common.contracts import LineChanged
from tarifa_common.events import decode
from tarifa_common.messaging import OutboxEntry, outbox_headers


async def line_events(service: Service, line_id: str) -> list[LineChanged]:
    async with service.voip.runtime.units() as uow:
        rows = (await uow.session.exec(select(OutboxEntry).order_by(col(OutboxEntry.id)))).all()
    events = [decode(outbox_headers(r), r.key, r.value) for r in rows if r.topic == "line.events"]
    return [LineChanged.model_validate(e.data) for e in events if e.subject == line_id]


async def test_a_lines_life_is_told_on_line_events(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    line = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()
    line_id = line["id"]
    await service.http.post(f"/v1/lines/{line_id}/dids", json={"number": "+551130000050", "port": 2})
    await service.http.delete(f"/v1/lines/{line_id}/dids/551130000050")
    await service.http.patch(f"/v1/lines/{line_id}", json={"category": "PARC"})
    await service.http.patch(f"/v1/lines/{line_id}", json={"active": False})
    await service.http.patch(f"/v1/lines/{line_id}", json={"active": True})
    await service.http.post(f"/v1/lines/{line_id}/cancel")
    refused = await service.http.patch(f"/v1/lines/{line_id}", json={"category": "LIVRE"})
    assert refused.status_code == 409

    events = await line_events(service, line_id)
    assert [(e.kind.value, e.line.active, e.line.category, e.line.dids) for e in events] == [
        ("created", True, "LIVRE", []),
        ("activated", True, "LIVRE", []),
        ("did_added", True, "LIVRE", ["+551130000050"]),
        ("did_removed", True, "LIVRE", []),
        ("category_changed", True, "PARC", []),
        ("blocked", False, "PARC", []),
        ("activated", True, "PARC", []),
        ("cancelled", False, "PARC", []),
    ]
    first = events[0]
    assert (first.tenant, first.line.number, first.line.contract_id, first.line.due_day) == (
        service.tenant,
        "+551130000001",
        "C-1",
        10,
    )
    assert first.line.credit_limit == Decimal("150.00")
    assert all(e.caused_by == "api:alice" for e in events)
