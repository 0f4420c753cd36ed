"""Two notifier replicas on one database: one decides and watches (the lease), both share the send queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio
from sqlmodel import select

from tarifa_common.alerts import AlertObject, AlertRaised, Severity
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.channels import SmtpConfig, SmtpEmailSender
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.tables import (
    FlushRow,
    LeaseRow,
    NotificationRow,
    RecipientRow,
    ResponsibilityRow,
    WatchStateRow,
)
from tarifa_notifier.bootstrap import Notifier, build
from tarifa_notifier.config import NotifierSettings

RECIPIENTS = 30


@pytest_asyncio.fixture
async def replicas(
    units: UnitOfWorkFactory, database_url: str, clock, smtp_server
) -> AsyncIterator[list[tuple[ServiceRuntime, Notifier]]]:  # type: ignore[no-untyped-def]
    """Two notifiers on the (migrated) database of the test, one clock, one real SMTP server."""
    settings = NotifierSettings(
        database_url=database_url,
        kafka_bootstrap_servers="127.0.0.1:1",
        jwt_secret="n" * 48,
        group_wait_seconds=30,
        lease_seconds=30,
        send_claim_seconds=120,
        send_attempts=1,
        send_retry_wait_seconds=0,
        watch_dead_letters=False,
    )
    email = SmtpEmailSender(SmtpConfig("127.0.0.1", smtp_server.port, "alerts@tarifa.test", timeout=5))
    pair = [build(settings, clock=clock, email=email, loops=False) for _ in range(2)]
    for _, notifier in pair:
        notifier.dispatcher.batch_size = 5  # small claims, so both replicas take part of the queue
    async with units() as uow:
        for n in range(RECIPIENTS):
            uow.session.add(RecipientRow(id=f"r{n:02d}", tenant="acme", name=f"R{n}", email=f"r{n:02d}@acme.test"))
            uow.session.add(
                ResponsibilityRow(tenant="acme", recipient_id=f"r{n:02d}", object_kind="source", object_id="pbx-hq")
            )
    yield pair
    for runtime, _ in pair:
        await runtime.engine.dispose()


async def raise_outage(units: UnitOfWorkFactory, clock) -> None:  # type: ignore[no-untyped-def]
    async with units() as uow:
        await handlers.raise_alert(
            SqlNotifierStore(uow.session),
            "acme",
            AlertRaised(
                fingerprint="collector/source-silent/pbx-hq",
                severity=Severity.IMPORTANT,
                object=AlertObject(kind="source", id="pbx-hq"),
                summary="No call records from pbx-hq for 20 minutes",
            ),
            clock(),
        )


async def test_two_replicas_deciding_at_once_send_one_message_per_person_sharing_the_queue(
    replicas, units: UnitOfWorkFactory, clock, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    (first_rt, first), (second_rt, second) = replicas
    await raise_outage(units, clock)
    clock.advance(seconds=31)
    decided = await asyncio.gather(first.flush(first_rt), second.flush(second_rt))
    assert sorted(decided) == [0, 1]  # the lease holder decided; the other did nothing
    async with units() as uow:
        assert len((await uow.session.exec(select(FlushRow))).all()) == 1
        assert len((await uow.session.exec(select(NotificationRow))).all()) == RECIPIENTS

    sent = [0, 0]
    while True:
        handled = await asyncio.gather(
            first.dispatcher.dispatch_once(clock()), second.dispatcher.dispatch_once(clock())
        )
        if not any(handled):
            break
        sent = [a + b for a, b in zip(sent, handled, strict=True)]
    assert sum(sent) == RECIPIENTS and all(sent), sent  # both replicas sent, together each message once
    told = sorted(a for m in smtp_server.box.messages for a in m.to)
    assert told == sorted(f"r{n:02d}@acme.test" for n in range(RECIPIENTS))
    async with units() as uow:
        rows = (await uow.session.exec(select(NotificationRow))).all()
    assert {(r.status, r.claimed_by) for r in rows} == {("sent", None)}


async def test_the_watchdogs_run_in_the_lease_holder_only_and_move_when_it_stops_renewing(
    replicas, units: UnitOfWorkFactory, clock
) -> None:  # type: ignore[no-untyped-def]
    (first_rt, first), (second_rt, second) = replicas
    async with units() as uow:  # the rater is heard, so the rating watchdog has something to judge
        beat = {"service": "rater", "instance": "r-1", "consumers": {"rater": {"processed": 1, "lag": 0}}}
        await handlers.record_heartbeat(SqlNotifierStore(uow.session), beat, clock())
    assert await first.watch(first_rt) is True
    assert await second.watch(second_rt) is False
    clock.advance(seconds=20)
    assert await first.watch(first_rt) is True  # renewed: held until 30 s from now
    clock.advance(seconds=29)
    assert await second.watch(second_rt) is False
    async with units() as uow:
        lease = await uow.session.get(LeaseRow, "notifier-loops")
    assert lease is not None and lease.holder == first_rt.instance_id

    clock.advance(seconds=2)  # the first replica died 31 s ago: its lease has expired
    assert await second.watch(second_rt) is True
    assert await first.watch(first_rt) is False  # back from a pause, it does not take it back
    assert await first.flush(first_rt) == 0
    async with units() as uow:
        lease = await uow.session.get(LeaseRow, "notifier-loops")
        rating = await uow.session.get(WatchStateRow, ("platform", "rating"))
    assert lease is not None and lease.holder == second_rt.instance_id
    assert rating is not None  # the watchdogs ran (in whichever replica held the lease)


async def test_a_restarting_replica_leaves_the_messages_another_is_sending_alone(
    replicas, units: UnitOfWorkFactory, clock, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    (first_rt, first), (_, second) = replicas
    await raise_outage(units, clock)
    clock.advance(seconds=31)
    await first.flush(first_rt)
    async with units() as uow:  # the first replica claimed five and is sending them right now
        claimed = (await uow.session.exec(select(NotificationRow).order_by(NotificationRow.id).limit(5))).all()
        for row in claimed:
            row.status, row.claimed_by = "sending", first_rt.instance_id
            row.claimed_until = clock() + timedelta(seconds=120)
    in_flight = {r.id for r in claimed}
    assert await second.dispatcher.recover(clock()) == 0  # the second restarts: not its rows, not expired
    while await second.dispatcher.dispatch_once(clock()):
        pass
    assert len(smtp_server.box.messages) == RECIPIENTS - 5
    async with units() as uow:
        rows = {r.id: r for r in (await uow.session.exec(select(NotificationRow))).all()}
    assert {rows[i].status for i in in_flight} == {"sending"}

    clock.advance(seconds=121)  # the first replica died mid-send: its claims expire, the second sends them
    assert await second.dispatcher.dispatch_once(clock()) == 5
    assert len(smtp_server.box.messages) == RECIPIENTS
    ids = {m.message_id for m in smtp_server.box.messages}
    assert {f"<tarifa-notification-{i}@tarifa.test>" for i in in_flight} <= ids  # same Message-ID as a re-send
