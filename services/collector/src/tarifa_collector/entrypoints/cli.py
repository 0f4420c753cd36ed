"""`tarifa collector ...`: sources, file imports and replays from the shell, with progress bars.

Commands work on the collector's database (the `tarifa up` data directory by default, or
TARIFA_COLLECTOR_DATABASE_URL); what they publish goes through the outbox, so the running
collector's relay sends it (or sends it when it next starts).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.lines import LineSplitter
from tarifa_collector.adapters.links import skip_header
from tarifa_collector.adapters.replay import replay
from tarifa_collector.adapters.repository import SqlSourceRepository, settings_of
from tarifa_collector.bootstrap import MIGRATIONS
from tarifa_collector.domain.numbering import NumberingPlan
from tarifa_collector.domain.sources import AfterImport, RecordFormat, SourceKind, SourceSettings
from tarifa_collector.fake_ipoffice import stream_calls
from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.errors import TarifaError
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWorkFactory

console = Console()
T = TypeVar("T")
DataDir = Annotated[Path, typer.Option(help="The `tarifa up` data directory (its db/collector.db is used)")]
Tenant = Annotated[str, typer.Option(help="The tenant the source belongs to")]


def _database_url(data_dir: Path) -> str:
    return os.environ.get("TARIFA_COLLECTOR_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'db' / 'collector.db'}"


def _run(data_dir: Path, work: Callable[[UnitOfWorkFactory], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = make_engine(_database_url(data_dir))
        try:
            await migrate(engine, MIGRATIONS, "collector")
            return await work(UnitOfWorkFactory(session_factory(engine)))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except TarifaError as error:
        console.print(f"[red]{error.message}[/]")
        raise typer.Exit(2) from error


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    )


def commands() -> typer.Typer:
    app = typer.Typer(help="Call record sources, file imports and replays.", no_args_is_help=True)
    sources = typer.Typer(help="Configure and watch sources.", no_args_is_help=True)
    app.add_typer(sources, name="sources")

    @sources.command("list")
    def list_sources(tenant: Tenant, data_dir: DataDir = Path(".tarifa")) -> None:
        """Every source of the tenant with its health."""

        async def work(units: UnitOfWorkFactory) -> None:
            async with units() as uow:
                repository = SqlSourceRepository(uow.session)
                rows, states = await repository.list(tenant), await repository.states(tenant)
            table = Table("id", "kind", "format", "where", "connection", "last record", "today", "rejects today")
            for row in rows:
                state = states.get(row.id)
                where = row.directory or (f"{row.host or '*'}:{row.port}" if row.port else "-")
                table.add_row(
                    row.id,
                    row.kind,
                    row.format,
                    where,
                    state.connection if state else "idle",
                    str(state.last_record_at or "never") if state else "never",
                    str(state.records_today if state else 0),
                    str(state.rejects_today if state else 0),
                )
            Console().print(table)  # a fresh console measures the terminal as it is now

        _run(data_dir, work)

    @sources.command("add")
    def add_source(
        tenant: Tenant,
        source_id: Annotated[str, typer.Argument(help="A short name, e.g. pbx-hq")],
        kind: Annotated[SourceKind, typer.Option(help="How records arrive")],
        record_format: Annotated[RecordFormat, typer.Option("--format", help="What they look like")] = (
            RecordFormat.AVAYA_SMDR
        ),
        host: Annotated[str | None, typer.Option(help="smdr_client: IP Office's address")] = None,
        port: Annotated[int | None, typer.Option(help="SMDR TCP port, e.g. 1080")] = None,
        directory: Annotated[str | None, typer.Option(help="drop_directory: the directory to watch")] = None,
        after_import: Annotated[AfterImport, typer.Option(help="What to do with imported files")] = AfterImport.ARCHIVE,
        time_zone: Annotated[str, typer.Option(help="The PBX's time zone")] = "UTC",
        quiet_minutes: Annotated[int, typer.Option(help="Alert after this long without records")] = 60,
        schedule: Annotated[
            str | None, typer.Option(help="drop_directory: import on a cron schedule, e.g. '0 3 1 * *' (monthly)")
        ] = None,
        country_code: Annotated[
            str | None, typer.Option(help="Give calls E.164 numbers: the PBX's country code (55, Brazil's rules)")
        ] = None,
        area_code: Annotated[str | None, typer.Option(help="With --country-code: the home area code (DDD)")] = None,
        outside_line_prefix: Annotated[
            str, typer.Option(help="With --country-code: what users dial for a line, if the PBX reports it")
        ] = "",
        integration_id: Annotated[
            str | None,
            typer.Option(help="summit_integration: the voip-summit integration whose CDR import settings it follows"),
        ] = None,
        data_dir: DataDir = Path(".tarifa"),
    ) -> None:
        """Configure a source; a running collector starts it within seconds."""
        numbering = None
        if country_code is not None:
            numbering = NumberingPlan(
                country_code=country_code, area_code=area_code, outside_line_prefix=outside_line_prefix
            )
        settings = SourceSettings(
            id=source_id,
            kind=kind,
            format=record_format,
            host=host,
            port=port,
            directory=directory,
            after_import=after_import,
            time_zone=time_zone,
            quiet_minutes=quiet_minutes,
            schedule=schedule,
            numbering=numbering,
            integration_id=integration_id,
        )

        async def work(units: UnitOfWorkFactory) -> None:
            settings.validate()
            async with units() as uow:
                await SqlSourceRepository(uow.session).add(tenant, settings, utcnow())
            console.print(f"source [bold]{source_id}[/] added")

        _run(data_dir, work)

    @sources.command("delete")
    def delete_source(
        tenant: Tenant,
        source_id: Annotated[str, typer.Argument(help="The source to delete")],
        data_dir: DataDir = Path(".tarifa"),
    ) -> None:
        """Delete a source; its archive and calls are kept (re-adding the same id finds them again)."""

        async def work(units: UnitOfWorkFactory) -> None:
            flushed = await Intake(units).delete_source(tenant, source_id)
            note = f"; {flushed} waiting call(s) published first" if flushed else ""
            console.print(f"source [bold]{source_id}[/] deleted, its archive kept{note}")

        _run(data_dir, work)

    def _set_enabled(tenant: str, source_id: str, enabled: bool, data_dir: Path) -> None:
        async def work(units: UnitOfWorkFactory) -> None:
            async with units() as uow:
                row = await SqlSourceRepository(uow.session).get(tenant, source_id)
                row.enabled, row.updated_at = enabled, utcnow()
            console.print(f"source [bold]{source_id}[/] {'enabled' if enabled else 'disabled'}")

        _run(data_dir, work)

    @sources.command("disable")
    def disable_source(
        tenant: Tenant,
        source_id: Annotated[str, typer.Argument(help="The source to pause")],
        data_dir: DataDir = Path(".tarifa"),
    ) -> None:
        """Pause a source: its link stops and the watchdog ignores it; its settings and archive stay."""
        _set_enabled(tenant, source_id, False, data_dir)

    @sources.command("enable")
    def enable_source(
        tenant: Tenant,
        source_id: Annotated[str, typer.Argument(help="The source to resume")],
        data_dir: DataDir = Path(".tarifa"),
    ) -> None:
        """Resume a paused source."""
        _set_enabled(tenant, source_id, True, data_dir)

    @app.command("import")
    def import_file(
        tenant: Tenant,
        source_id: Annotated[str, typer.Argument(help="The source the file belongs to (its format is used)")],
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CDR file")],
        data_dir: DataDir = Path(".tarifa"),
    ) -> None:
        """Import a file of records; a record imported before is skipped (same id)."""

        async def work(units: UnitOfWorkFactory) -> None:
            async with units() as uow:
                source = settings_of(await SqlSourceRepository(uow.session).get(tenant, source_id))
            splitter = LineSplitter()
            lines = skip_header(source, splitter.feed(file.read_bytes()))
            rest = splitter.rest()
            intake = Intake(units)
            totals = [0, 0, 0]
            with _progress() as progress:
                task = progress.add_task(f"importing {file.name}", total=len(lines))
                for start in range(0, max(len(lines), 1), 1000):
                    chunk = lines[start : start + 1000]
                    last = start + 1000 >= len(lines)
                    outcome = await intake.ingest(
                        tenant,
                        source,
                        chunk,
                        location=f"file {file.name} from line {start + 1}",
                        incomplete=[rest] if last and rest.strip() else (),
                    )
                    totals[0] += outcome.accepted
                    totals[1] += outcome.duplicates
                    totals[2] += outcome.rejected
                    progress.advance(task, len(chunk))
            console.print(f"{totals[0]} accepted, {totals[1]} already known, {totals[2]} rejected")

        _run(data_dir, work)

    @app.command("replay")
    def replay_command(
        tenant: Tenant,
        source_id: Annotated[str, typer.Argument(help="The source whose calls to re-publish")],
        start: Annotated[datetime, typer.Option(help="Calls that started at or after this (UTC unless an offset)")],
        end: Annotated[datetime, typer.Option(help="...and before this")],
        data_dir: DataDir = Path(".tarifa"),
    ) -> None:
        """Re-publish a source's calls for a time range (same event ids: consumers skip what they have)."""
        start_utc = start if start.tzinfo else start.replace(tzinfo=utcnow().tzinfo)
        end_utc = end if end.tzinfo else end.replace(tzinfo=utcnow().tzinfo)

        async def work(units: UnitOfWorkFactory) -> None:
            with _progress() as progress:
                task = progress.add_task(f"replaying {source_id}", total=None)

                def report(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                published = await replay(units, tenant, source_id, start_utc, end_utc, report)
            console.print(f"{published} calls queued for publication on cdr.raw")

        _run(data_dir, work)

    @app.command("fake-ipoffice")
    def fake_ipoffice_command(
        connect: Annotated[str, typer.Option(help="The collector's SMDR listener, HOST:PORT, e.g. collector:1080")],
        every: Annotated[float, typer.Option(help="Seconds between calls")] = 5.0,
        count: Annotated[int | None, typer.Option(help="Stop after this many calls (default: never)")] = None,
        seed: Annotated[int | None, typer.Option(help="Repeat the same calls from run to run")] = None,
    ) -> None:
        """Play an Avaya IP Office sending SMDR to a source's listener, for trying the platform."""
        host, _, port = connect.rpartition(":")
        if not host or not port.isdigit():
            console.print(f"--connect: {connect!r} is not HOST:PORT (e.g. 127.0.0.1:1080)")
            raise typer.Exit(2)
        console.print(f"sending a call every {every:g} s to {host}:{port} (Ctrl-C stops)")

        def report(sent: int) -> None:
            console.print(f"{sent} calls sent", end="\r")

        sent = asyncio.run(stream_calls(host, int(port), every=every, count=count, seed=seed, on_sent=report))
        console.print(f"{sent} calls sent")

    return app
