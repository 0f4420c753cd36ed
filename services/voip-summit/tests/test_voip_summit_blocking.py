"""Partition-based blocking: the whole rule matrix, and contract statuses and credit breaches arriving by Kafka."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from voip_summit_support import Service

from tarifa_common import topics
from tarifa_common.contracts import (
    CONTRACT_STATUS_CHANGED,
    LINE_CREDIT_EXCEEDED,
    ContractStatus,
    ContractStatusChanged,
    CreditLimitExceeded,
    LineChanged,
)
from tarifa_common.events import Event, decode
from tarifa_common.testing import eventually, read_all
from tarifa_voip_summit.domain.model import Partition, category_for_contract_status, category_for_credit_breach
from tarifa_voip_summit.handlers import apply_contract_status, block_line_over_credit

S = ContractStatus
UNCHANGED = None
# (status, blocking enabled, partial-block category present) -> (category, blocked) or unchanged
MATRIX = {
    (S.ACTIVE, True, True): ("LIVRE", False),
    (S.ACTIVE, True, False): ("LIVRE", False),
    (S.BLOCKED_MANUALLY, True, True): ("BLOQ", True),
    (S.BLOCKED_MANUALLY, True, False): ("BLOQ", True),
    (S.BLOCKED_AUTOMATICALLY, True, True): ("BLOQ", True),
    (S.BLOCKED_AUTOMATICALLY, True, False): ("BLOQ", True),
    (S.FINANCIALLY_OVERDUE, True, True): ("PARC", True),
    (S.FINANCIALLY_OVERDUE, True, False): UNCHANGED,
    (S.CANCELLED, True, True): ("CANC", True),
    (S.CANCELLED, True, False): ("CANC", True),
    (S.RELEASED, True, True): ("LIVRE", False),
    (S.RELEASED, True, False): ("LIVRE", False),
    **{(status, False, partial): UNCHANGED for status in S for partial in (True, False)},
}


def partition(blocking: bool, partial: bool) -> Partition:
    return Partition.checked("SP", "São Paulo", blocking, "LIVRE", "BLOQ", "PARC" if partial else None, "CANC")


def test_the_matrix_covers_every_status_blocking_and_partial_combination() -> None:
    assert len(MATRIX) == len(S) * 2 * 2 == 24


@pytest.mark.parametrize(("case", "expected"), list(MATRIX.items()), ids=lambda v: str(v))
def test_each_contract_status_moves_the_line_to_its_partitions_category(
    case: tuple[ContractStatus, bool, bool], expected: tuple[str, bool] | None
) -> None:
    status, blocking, partial = case
    change = category_for_contract_status(partition(blocking, partial), status)
    assert (None if change is None else (change.category, change.blocked)) == expected


def test_a_credit_breach_uses_the_block_category_even_when_contract_blocking_is_off() -> None:
    change = category_for_credit_breach(partition(blocking=False, partial=False))
    assert change is not None
    assert (change.category, change.blocked) == ("BLOQ", True)


def test_a_partition_with_blocking_on_needs_its_block_category() -> None:
    with pytest.raises(Exception, match="block_category: is required when blocking_enabled is true"):
        Partition.checked("SP", "x", True, "LIVRE", None, None, "CANC")


def status_event(tenant: str, contract_id: str, status: ContractStatus) -> Event:
    data = ContractStatusChanged(
        tenant=tenant, contract_id=contract_id, customer_id="K-1", status=status, changed_at=datetime.now(UTC)
    )
    return Event(
        type=CONTRACT_STATUS_CHANGED,
        source="tarifa/invoicer",
        tenant=tenant,
        subject=contract_id,
        data=data.model_dump(mode="json"),
    )


@pytest.mark.broker
async def test_contract_statuses_and_credit_breaches_from_kafka_block_and_release_lines(
    service_on_broker: Service,
) -> None:
    service = service_on_broker
    integration = await service.integration()
    await service.catalogue(blocking=True, partial=False)
    first = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()
    second = (await service.http.post("/v1/lines", json=service.line_body(integration, number="+551130000002"))).json()
    other = (
        await service.http.post(
            "/v1/lines", json=service.line_body(integration, number="+551130000003", contract_id="C-9")
        )
    ).json()
    for line in (first, second, other):
        await service.applied(line["id"])
    publisher = service.voip.runtime.publisher
    await eventually(lambda: _ready(service), timeout=30)

    blocked = status_event(service.tenant, "C-1", S.BLOCKED_AUTOMATICALLY)
    await publisher.publish(blocked, topics.CONTRACT_STATUS, key="C-1")
    await publisher.publish(blocked, topics.CONTRACT_STATUS, key="C-1")  # redelivered: a no-op

    async def both_blocked_on_summit() -> None:
        for line in (first, second):
            current = await service.applied(line["id"])
            assert (current["category"], current["blocked"]) == ("BLOQ", True)
        categories = sorted(t.category for t in service.summit.state.terminals.values())
        assert categories == ["BLOQ", "BLOQ", "LIVRE"]

    await eventually(both_blocked_on_summit, timeout=30)
    audit = (await service.http.get(f"/v1/lines/{first['id']}/audit")).json()
    assert [(a["what"], a["reason"], a["caused_by"]) for a in audit] == [
        ("created", "line created", "api:alice"),
        ("category LIVRE -> BLOQ", "contract blocked_automatically", blocked.id),
    ]

    overdue = status_event(service.tenant, "C-1", S.FINANCIALLY_OVERDUE)
    released = status_event(service.tenant, "C-1", S.RELEASED)
    await publisher.publish(overdue, topics.CONTRACT_STATUS, key="C-1")  # no partial category: unchanged
    await publisher.publish(released, topics.CONTRACT_STATUS, key="C-1")

    async def released_on_summit() -> None:
        current = await service.applied(first["id"])
        assert (current["category"], current["blocked"]) == ("LIVRE", False)

    await eventually(released_on_summit, timeout=30)

    breach = Event(
        type=LINE_CREDIT_EXCEEDED,
        source="tarifa/rater",
        tenant=service.tenant,
        subject=second["id"],
        data=CreditLimitExceeded(
            tenant=service.tenant,
            line_id=second["id"],
            credit_limit=Decimal("150.00"),
            spent=Decimal("150.010000"),
            cycle_start=date(2026, 11, 10),
        ).model_dump(mode="json"),
    )
    await publisher.publish(breach, topics.LINE_USAGE, key=second["id"])

    async def only_that_line_blocked() -> None:
        lines = {line["id"]: line for line in (await service.http.get("/v1/lines")).json()}
        assert [lines[k]["category"] for k in (first["id"], second["id"], other["id"])] == ["LIVRE", "BLOQ", "LIVRE"]

    await eventually(only_that_line_blocked, timeout=30)
    audit = (await service.http.get(f"/v1/lines/{second['id']}/audit")).json()
    assert audit[-1]["reason"] == "credit limit 150.00 BRL exceeded: spent 150.010000"
    assert audit[-1]["caused_by"] == breach.id

    async def line_events_published() -> list[LineChanged]:
        records = await read_all(service.voip.settings.kafka_bootstrap_servers, topics.LINE_EVENTS.name, 1, 5)
        events = [decode(r.headers, r.key, r.value) for r in records]
        mine = [LineChanged.model_validate(e.data) for e in events if e.tenant == service.tenant]
        kinds = [(c.line.line_id, c.kind.value) for c in mine if c.line.line_id == first["id"]]
        assert kinds == [
            (first["id"], "created"),
            (first["id"], "activated"),
            (first["id"], "blocked"),
            (first["id"], "released"),
        ]
        return mine

    mine = await eventually(line_events_published, timeout=30)
    blocked_event = next(c for c in mine if c.kind.value == "blocked" and c.line.line_id == first["id"])
    assert blocked_event.caused_by == blocked.id
    assert blocked_event.line.number == "+551130000001"
    assert blocked_event.line.category == "BLOQ"


async def _ready(service: Service) -> None:
    assert service.voip.runtime.publisher.ready.is_set()


async def test_a_credit_breach_deactivates_the_line_when_its_partition_has_no_block_category(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    plain = {"code": "RJ", "description": "Rio", "blocking_enabled": False, "extra_categories": ["LIVRE"]}
    assert (await service.http.post("/v1/partitions", json=plain)).status_code == 201
    line = (await service.http.post("/v1/lines", json=service.line_body(integration, partition="RJ"))).json()
    await service.applied(line["id"])
    breach = Event(
        type=LINE_CREDIT_EXCEEDED,
        source="tarifa/rater",
        tenant=service.tenant,
        data=CreditLimitExceeded(
            tenant=service.tenant,
            line_id=line["id"],
            credit_limit=Decimal("150.00"),
            spent=Decimal("151"),
            cycle_start=date(2026, 11, 10),
        ).model_dump(mode="json"),
    )
    async with service.voip.runtime.units() as uow:
        assert await block_line_over_credit(breach, service.voip.store(uow)) is True
    async with service.voip.runtime.units() as uow:  # a redelivery finds the line already off
        assert await block_line_over_credit(breach, service.voip.store(uow)) is False
    current = await service.applied(line["id"])
    assert (current["active"], current["blocked"], current["state"], current["category"]) == (
        False,
        True,
        "inactive",
        "LIVRE",
    )
    [terminal] = service.summit.state.terminals.values()
    assert terminal.active is False

    reactivated = (await service.http.patch(f"/v1/lines/{line['id']}", json={"active": True})).json()
    assert (reactivated["active"], reactivated["blocked"], reactivated["state"]) == (True, False, "active")


async def test_an_operator_can_move_a_line_to_another_category_of_its_partition_only(service: Service) -> None:
    integration = await service.integration()
    await service.catalogue()
    line = (await service.http.post("/v1/lines", json=service.line_body(integration))).json()
    refused = await service.http.patch(f"/v1/lines/{line['id']}", json={"category": "LOCAL"})
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "category")
    moved = await service.http.patch(f"/v1/lines/{line['id']}", json={"category": "PARC"})
    assert (moved.json()["category"], moved.json()["blocked"]) == ("PARC", True)
    await service.applied(line["id"])
    [terminal] = service.summit.state.terminals.values()
    assert terminal.category == "PARC"
    audit = (await service.http.get(f"/v1/lines/{line['id']}/audit")).json()
    assert (audit[-1]["old_category"], audit[-1]["new_category"], audit[-1]["caused_by"]) == (
        "LIVRE",
        "PARC",
        "api:alice",
    )


async def test_the_whole_matrix_through_the_handler_and_the_database(service: Service) -> None:
    """Every status x blocking on/off x partial category present/absent, each on its own contract and line."""
    integration = await service.integration()
    await service.catalogue()
    cases = list(MATRIX.items())
    for index, ((status, blocking, partial), _) in enumerate(cases):
        body = {
            "code": f"P{index}",
            "description": f"{status.value} blocking={blocking} partial={partial}",
            "blocking_enabled": blocking,
            "default_category": "LIVRE",
            "block_category": "BLOQ",
            "partial_block_category": "PARC" if partial else None,
            "cancellation_category": "CANC",
            "extra_categories": ["OUTRA"],
        }
        assert (await service.http.post("/v1/partitions", json=body)).status_code == 201
        line = service.line_body(
            integration,
            number=f"+5511300000{index + 10:02d}",
            contract_id=f"C-{index}",
            partition=f"P{index}",
            category="OUTRA",  # a category no status leads to, so "unchanged" is visible
        )
        assert (await service.http.post("/v1/lines", json=line)).status_code == 201
    for index, ((status, _, _), _) in enumerate(cases):
        async with service.voip.runtime.units() as uow:
            await apply_contract_status(status_event(service.tenant, f"C-{index}", status), service.voip.store(uow))
    lines = {line["contract_id"]: line for line in (await service.http.get("/v1/lines")).json()}
    outcome = {
        case: (lines[f"C-{index}"]["category"], lines[f"C-{index}"]["blocked"]) for index, (case, _) in enumerate(cases)
    }
    assert outcome == {case: expected or ("OUTRA", False) for case, expected in cases}
    for index, (_, expected) in enumerate(cases):
        audit = (await service.http.get(f"/v1/lines/{lines[f'C-{index}']['id']}/audit")).json()
        assert len(audit) == (2 if expected else 1)  # "created", then the change if there was one
