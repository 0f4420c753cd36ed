"""Billing runs as jobs: a row that reports progress while `handlers.bill_period` works through the contracts."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import date

from sqlmodel import col, select

from tarifa_common.events import utcnow
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters.accounts import new_id
from tarifa_invoicer.adapters.backlog import KafkaRatedCallBacklog
from tarifa_invoicer.adapters.collector import HttpWatermarks
from tarifa_invoicer.adapters.store import store_factory
from tarifa_invoicer.adapters.tables import BillingProfile, BillingRun
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.invoice import Period

log = logging.getLogger(__name__)


async def create_run(units: UnitOfWorkFactory, tenant: str, period: Period, dry_run: bool) -> str:
    run_id = new_id()
    async with units() as uow:
        uow.session.add(
            BillingRun(
                id=run_id,
                tenant=tenant,
                period_start=period.start,
                period_end=period.end,
                dry_run=dry_run,
                status="running",
                net=handlers.RunReport(period, dry_run).net,
                checks="[]",
                created_at=utcnow(),
            )
        )
    return run_id


async def _save(units: UnitOfWorkFactory, run_id: str, report: handlers.RunReport, status: str) -> None:
    async with units() as uow:
        run = await uow.session.get(BillingRun, run_id)
        if run is None:
            return
        run.total, run.done, run.issued, run.skipped = report.total, report.done, len(report.issued), report.skipped
        run.net = report.net
        run.checks = json.dumps([asdict(finding) for finding in report.findings])
        run.status = status
        if status != "running":
            run.finished_at = utcnow()
        uow.session.add(run)


async def execute_run(
    units: UnitOfWorkFactory,
    run_id: str,
    tenant: str,
    period: Period,
    *,
    dry_run: bool,
    hold_on_findings: bool,
    issue_date: date,
    progress: handlers.Progress | None = None,
    watermarks: handlers.Watermarks | None = None,
    backlog: handlers.RatedCallBacklog | None = None,
) -> handlers.RunReport:
    """Run the billing and keep the run row up to date; a failure is recorded on the run, then re-raised."""

    async def report_progress(report: handlers.RunReport) -> None:
        await _save(units, run_id, report, "running")
        if progress is not None:
            await progress(report)

    try:
        report = await handlers.bill_period(
            store_factory(units),
            tenant,
            period,
            issue_date=issue_date,
            dry_run=dry_run,
            hold_on_findings=hold_on_findings,
            run_id=run_id,
            progress=report_progress,
            new_id=new_id,
            watermarks=watermarks,
            backlog=backlog,
        )
    except Exception as error:
        log.exception("billing run %s failed", run_id)
        async with units() as uow:
            run = await uow.session.get(BillingRun, run_id)
            if run is not None:
                run.status, run.error, run.finished_at = "failed", f"{type(error).__name__}: {error}", utcnow()
                uow.session.add(run)
        raise
    await _save(units, run_id, report, "held" if report.held else "finished")
    return report


def previous_month(today: date) -> Period:
    first = date(today.year, today.month, 1)
    return Period.month(f"{date.fromordinal(first.toordinal() - 1):%Y-%m}")


async def bill_closed_periods(
    units: UnitOfWorkFactory,
    today: date,
    bill_day: int,
    watermarks: handlers.Watermarks | None = None,
    backlogs: Callable[[], handlers.RatedCallBacklog] | None = None,
) -> list[str]:
    """From `bill_day` of a month on, bill the month before for every tenant with a profile, once.

    A tenant whose run for that month already exists (finished, held or failed) is left alone:
    a held or failed run waits for a person. Runs hold on pre-check findings, since nobody
    watches them. Returns the run ids started.
    """
    if today.day < bill_day:
        return []
    period = previous_month(today)
    async with units() as uow:
        tenants = list((await uow.session.exec(select(BillingProfile.tenant))).all())
        done = set(
            (
                await uow.session.exec(
                    select(BillingRun.tenant).where(
                        BillingRun.period_start == period.start, col(BillingRun.dry_run).is_(False)
                    )
                )
            ).all()
        )
    started: list[str] = []
    for tenant in tenants:
        if tenant in done:
            continue
        run_id = await create_run(units, tenant, period, dry_run=False)
        started.append(run_id)
        try:
            await execute_run(
                units,
                run_id,
                tenant,
                period,
                dry_run=False,
                hold_on_findings=True,
                issue_date=today,
                watermarks=watermarks,
                backlog=backlogs() if backlogs is not None else None,
            )
        except Exception:
            log.exception("scheduled billing of %s for %s failed; the run says why", tenant, period.label)
    return started


async def billing_scheduler(runtime: ServiceRuntime) -> None:
    """Background task: bill closed periods at `auto_bill_day`, checking every hour (off when 0)."""
    settings = runtime.settings
    assert isinstance(settings, InvoicerSettings)
    if not settings.auto_bill_day:
        return
    watermarks = HttpWatermarks.from_settings(settings)
    while True:
        try:
            await bill_closed_periods(
                runtime.units,
                utcnow().date(),
                settings.auto_bill_day,
                watermarks,
                lambda: KafkaRatedCallBacklog.from_settings(settings),
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("billing scheduler pass failed; trying again in an hour")
        await asyncio.sleep(3600)
