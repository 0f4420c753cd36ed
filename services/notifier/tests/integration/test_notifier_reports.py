"""A scheduled report is logged once per due time and e-mailed; a missed run is not replayed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlmodel import select

from tarifa_common.alerts import AlertObject, AlertRaised, Severity
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.tables import NotificationRow, ReportScheduleRow


async def run(units: UnitOfWorkFactory, now: datetime) -> int:
    @asynccontextmanager
    async def open_store() -> AsyncIterator[handlers.NotifierStore]:
        async with units() as uow:
            yield SqlNotifierStore(uow.session)

    return await handlers.run_due_reports(open_store, now)


async def test_a_daily_report_runs_at_its_local_time_once(units: UnitOfWorkFactory, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    async with units() as uow:
        await handlers.raise_alert(
            SqlNotifierStore(uow.session),
            "acme",
            AlertRaised(
                fingerprint="c/source-silent/pbx-hq",
                severity=Severity.URGENT,
                object=AlertObject(kind="source", id="pbx-hq"),
                summary="No call records",
            ),
            clock(),
        )
        uow.session.add(
            ReportScheduleRow(
                id="daily",
                tenant="acme",
                name="Yesterday's alerts",
                cron="0 7 * * *",
                time_zone="America/Sao_Paulo",
                recipients=["ops@hotel.test", "it@hotel.test"],
                kind="alert_digest",
                format="text",
                next_run_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
            )
        )
    assert await run(units, datetime(2026, 11, 22, 9, 59, tzinfo=UTC)) == 0
    assert await run(units, datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)) == 2
    assert await run(units, datetime(2026, 11, 22, 10, 0, 20, tzinfo=UTC)) == 0
    assert await run(units, datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) == 2  # three days down: one run, not three
    async with units() as uow:
        rows = (await uow.session.exec(select(NotificationRow).order_by(NotificationRow.id))).all()
        schedule = await uow.session.get(ReportScheduleRow, "daily")
    assert [(r.address, r.subject) for r in rows[:2]] == [
        (
            "ops@hotel.test",
            "Yesterday's alerts: 1 alert(s) from 2026-11-21 07:00 to 2026-11-22 07:00 (America/Sao_Paulo)",
        ),
        (
            "it@hotel.test",
            "Yesterday's alerts: 1 alert(s) from 2026-11-21 07:00 to 2026-11-22 07:00 (America/Sao_Paulo)",
        ),
    ]
    assert "urgent: 1" in rows[0].body
    assert schedule is not None and schedule.next_run_at.replace(tzinfo=UTC) == datetime(
        2026, 11, 26, 10, 0, tzinfo=UTC
    )
