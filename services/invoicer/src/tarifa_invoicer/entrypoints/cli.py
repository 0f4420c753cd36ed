"""`tarifa invoicer ...`: the jobs people run by hand (a billing run for a period)."""

from __future__ import annotations

import asyncio
from datetime import date

import typer

from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters import runs
from tarifa_invoicer.adapters.backlog import KafkaRatedCallBacklog
from tarifa_invoicer.adapters.collector import HttpWatermarks
from tarifa_invoicer.bootstrap import MIGRATIONS
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.invoice import Period


def commands() -> typer.Typer:
    app = typer.Typer(help="Billing runs and invoices.", no_args_is_help=True)

    @app.command()
    def bill(
        tenant: str = typer.Option(..., help="the tenant to bill"),
        period: str = typer.Option(..., help="the month to bill, YYYY-MM"),
        dry_run: bool = typer.Option(False, "--dry-run", help="compute and check, issue nothing"),
        hold: bool = typer.Option(False, "--hold-on-findings", help="issue nothing if a pre-check finds something"),
        issue_date: str | None = typer.Option(None, help="YYYY-MM-DD, today if not given"),
    ) -> None:
        """Bill every contract of TENANT for PERIOD, with progress; events leave through the outbox."""
        settings = InvoicerSettings()
        report = asyncio.run(
            _bill(
                settings,
                tenant,
                Period.month(period),
                dry_run,
                hold,
                date.fromisoformat(issue_date) if issue_date else utcnow().date(),
            )
        )
        for finding in report.findings:
            typer.echo(f"check {finding.check} {finding.object_id}: {finding.detail}")
        if report.held:
            typer.echo("held: pre-checks found something and --hold-on-findings was given; nothing issued")
            raise typer.Exit(2)
        verb = "would issue" if dry_run else "issued"
        count = len(report.drafts) if dry_run else len(report.issued)
        typer.echo(f"{verb} {count} invoices, net {report.net}; {report.skipped} already issued before")

    return app


async def _bill(
    settings: InvoicerSettings, tenant: str, period: Period, dry_run: bool, hold: bool, issue_date: date
) -> handlers.RunReport:
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine, MIGRATIONS, settings.service_name)
        units = UnitOfWorkFactory(session_factory(engine))

        async def progress(report: handlers.RunReport) -> None:
            typer.echo(f"  {report.done}/{report.total} contracts", err=True)

        run_id = await runs.create_run(units, tenant, period, dry_run)
        typer.echo(f"billing run {run_id} for {tenant} {period.label}{' (dry run)' if dry_run else ''}", err=True)
        return await runs.execute_run(
            units,
            run_id,
            tenant,
            period,
            dry_run=dry_run,
            hold_on_findings=hold,
            issue_date=issue_date,
            progress=progress,
            watermarks=HttpWatermarks.from_settings(settings),
            backlog=KafkaRatedCallBacklog.from_settings(settings),
        )
    finally:
        await engine.dispose()
