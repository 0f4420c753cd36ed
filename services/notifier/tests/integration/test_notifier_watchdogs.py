"""CmTel's watchdog on a real database and SMTP server, driven by a clock: it repeats every X minutes and stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlmodel import select

from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.channels import SmtpConfig, SmtpEmailSender
from tarifa_notifier.adapters.dispatch import Dispatcher, RetryPolicy
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.tables import AlertRow
from tarifa_notifier.domain.alerts import GroupPolicy

X = timedelta(minutes=5)
POLICY = GroupPolicy(timedelta(seconds=30), timedelta(minutes=1), timedelta(hours=4))
WATCH = handlers.WatchdogSettings(
    rating_every=X, watch_emails=("ops@hotel.test", "it@hotel.test"), lag_threshold=10_000
)


def rater_beat(processed: int, lag: int) -> dict[str, object]:
    return {
        "service": "rater",
        "instance": "rater-1",
        "interval_seconds": 10,
        "consumers": {"rater": {"processed": processed, "lag": lag}},
    }


def opener(units: UnitOfWorkFactory):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def open_store() -> AsyncIterator[SqlNotifierStore]:
        async with units() as uow:
            yield SqlNotifierStore(uow.session)

    return open_store


async def tick(units: UnitOfWorkFactory, clock, beat: dict[str, object] | None) -> None:  # type: ignore[no-untyped-def]
    """One moment of the platform: maybe a heartbeat arrives, the watchdog looks, the notifier flushes."""
    async with units() as uow:
        store = SqlNotifierStore(uow.session)
        if beat is not None:
            await handlers.record_heartbeat(store, beat, clock())
        await handlers.run_watchdogs(store, WATCH, clock())
    async with units() as uow:
        await handlers.flush_groups(SqlNotifierStore(uow.session), POLICY, clock())
    await handlers.fan_out(opener(units))


async def test_rating_stopped_emails_the_list_every_x_minutes_until_it_resumes_then_says_so(
    units: UnitOfWorkFactory, clock, smtp_server
) -> None:
    dispatcher = Dispatcher(
        units,
        SmtpEmailSender(SmtpConfig("127.0.0.1", smtp_server.port, "alerts@tarifa.test")),
        {},
        "smpp",
        RetryPolicy(wait_seconds=0),
    )

    async def minute(beat: dict[str, object] | None) -> None:
        await tick(units, clock, beat)
        await dispatcher.dispatch_once(clock())
        clock.advance(seconds=30)
        await tick(units, clock, None)
        await dispatcher.dispatch_once(clock())
        clock.advance(seconds=30)

    def subjects() -> list[str]:
        return [m.subject for m in smtp_server.box.messages if m.to == ["ops@hotel.test"]]

    await minute(rater_beat(100, 0))  # 03:00 first look: calls are rated
    for _ in range(4):
        await minute(rater_beat(100, 4))  # calls arrive and wait, none is rated
    assert subjects() == []  # X minutes have not passed since the last look
    for _ in range(12):  # 03:05 .. 03:16: stopped at 03:05, repeats at 03:10 and 03:15
        await minute(rater_beat(100, 9))
    stopped = (
        "[IMPORTANT] 1 alert(s) firing on service rater: "
        "Rating stopped: 9 call(s) waiting and none rated in the last 5 minutes"
    )
    assert subjects() == [stopped, stopped, stopped]
    assert sorted({a for m in smtp_server.box.messages for a in m.to}) == ["it@hotel.test", "ops@hotel.test"]
    for _ in range(4):  # 03:17 .. 03:20: rating resumes; the 03:20 look sees it
        await minute(rater_beat(250, 0))
    for _ in range(15):  # and nothing more is sent while it keeps rating
        await minute(rater_beat(400, 0))
    assert subjects() == [
        stopped,
        stopped,
        stopped,
        "[RESOLVED] service rater: Rating resumed: calls are being rated again",
    ]
    async with units() as uow:
        row = (
            await uow.session.exec(select(AlertRow).where(AlertRow.fingerprint == "notifier/rating-stopped/rater"))
        ).one()
    assert (row.tenant, row.status, row.raised_count) == ("platform", "resolved", 3)


async def test_a_service_that_stops_its_heartbeat_fires_without_any_event_arriving(
    units: UnitOfWorkFactory, clock
) -> None:
    async with units() as uow:
        await handlers.record_heartbeat(
            SqlNotifierStore(uow.session), {"service": "collector", "instance": "c-1", "interval_seconds": 10}, clock()
        )
    clock.advance(seconds=31)
    async with units() as uow:
        verdicts = await handlers.run_watchdogs(SqlNotifierStore(uow.session), WATCH, clock())
    assert [(v.fingerprint, v.firing) for v in verdicts if v.object_id == "collector"] == [
        ("notifier/heartbeat-stopped/collector", True)
    ]
    async with units() as uow:
        alert = await SqlNotifierStore(uow.session).get_alert("platform", "notifier/heartbeat-stopped/collector")
    assert alert is not None and alert.firing and alert.summary == "Service collector stopped: no heartbeat for 31 s"


async def test_instances_silent_for_a_day_are_forgotten(units: UnitOfWorkFactory, clock) -> None:  # type: ignore[no-untyped-def]
    async with units() as uow:
        store = SqlNotifierStore(uow.session)
        await handlers.record_heartbeat(store, {"service": "rater", "instance": "old", "interval_seconds": 10}, clock())
        await handlers.record_heartbeat(
            store, {"service": "rater", "instance": "new", "interval_seconds": 10}, clock.advance(hours=23)
        )
    clock.advance(hours=2)
    async with units() as uow:
        await handlers.run_watchdogs(SqlNotifierStore(uow.session), WATCH, clock())
    async with units() as uow:
        assert [b.instance for b in await SqlNotifierStore(uow.session).heartbeats()] == ["new"]
