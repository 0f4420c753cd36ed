"""A scheduled report is logged once per due time and e-mailed; a missed run is not replayed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from sqlmodel import select

from tarifa_common import auth
from tarifa_common.alerts import AlertObject, AlertRaised, Severity
from tarifa_common.broker import free_port
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.tables import AlertRow, NotificationRow, ReportScheduleRow
from tarifa_notifier.config import NotifierSettings
from tarifa_notifier.entrypoints.api import create_app


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


async def test_a_report_whose_source_refuses_connections_alerts_until_it_is_stopped(
    units: UnitOfWorkFactory, database_url: str, clock
) -> None:  # type: ignore[no-untyped-def]
    secret = "s" * 48
    settings = NotifierSettings(
        database_url=database_url,
        kafka_bootstrap_servers="127.0.0.1:1",
        jwt_secret=secret,
        rater_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        report_attempts=2,
        report_retry_wait_seconds=0,
    )
    app = create_app(settings, clock=clock, loops=False)
    notifier, runtime = app.state.notifier, app.state.runtime
    headers = {"Authorization": f"Bearer {auth.mint(secret, subject='ana', tenant='hotel', roles=['operator'])}"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier") as client:
            created = await client.post(
                "/v1/report-schedules",
                json={
                    "name": "Calls",
                    "cron": "0 7 * * *",
                    "recipients": ["it@hotel.test"],
                    "kind": "calls_by_cost_centre",
                    "format": "csv",
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
            clock.now = datetime.fromisoformat(created.json()["next_run_at"])
            assert await notifier.reports(runtime) == 0
            listed = (await client.get("/v1/report-schedules", headers=headers)).json()
            assert listed[0]["failures"] == 1 and "rater at" in listed[0]["last_error"]
            fingerprint = f"notifier/report-failed/{created.json()['id']}"
            async with units() as uow:
                alert = (await uow.session.exec(select(AlertRow).where(AlertRow.fingerprint == fingerprint))).one()
            assert alert.status == "firing" and alert.extra_emails == ["it@hotel.test"]
            stopped = await client.delete(f"/v1/report-schedules/{created.json()['id']}", headers=headers)
            assert stopped.json()["active"] is False
        async with units() as uow:
            alert = (await uow.session.exec(select(AlertRow).where(AlertRow.fingerprint == fingerprint))).one()
        assert alert.status == "resolved"
    finally:
        await runtime.engine.dispose()
