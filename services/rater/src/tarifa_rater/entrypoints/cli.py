"""`tarifa rater …`: the jobs people run by hand (load a tariff, load a directory, re-rate a period).

Commands work on the rater's database (the `TARIFA_RATER_*` settings); the events they cause
wait in the outbox and go out at once if the broker answers, or with the running service's relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tarifa_common.db import migrate
from tarifa_common.errors import TarifaError
from tarifa_rater import handlers
from tarifa_rater.adapters import store as sql
from tarifa_rater.bootstrap import MIGRATIONS, Rater, build
from tarifa_rater.config import RaterSettings
from tarifa_rater.domain.rating import parse_extensions_csv
from tarifa_rater.domain.tariffs import parse_rates_csv
from tarifa_rater.handlers import RerateProgress, RerateScope

console = Console(stderr=True)


def _moment(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time", param_hint=option) from error
    if value.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-11-01T00:00:00-03:00", param_hint=option)
    return value.astimezone(UTC)


def _read(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def _open(settings: RaterSettings) -> Rater:
    rater = build(settings, consume=False)
    await migrate(rater.runtime.engine, MIGRATIONS, "rater")
    return rater


async def _close(rater: Rater) -> None:
    """Publish what the command emitted if the broker answers; otherwise the service's relay will."""
    try:
        await asyncio.wait_for(rater.runtime.publisher.start(), timeout=5)
        await asyncio.wait_for(rater.runtime.relay.drain(), timeout=60)
        console.print(f"published {rater.runtime.relay.published} event(s)")
    except Exception:
        console.print("[yellow]the broker did not answer: the events wait in the outbox for the rater service[/]")
    finally:
        await rater.runtime.publisher.stop()
        await rater.runtime.engine.dispose()


async def _work_off_retry(rater: Rater, tenant: str) -> None:
    """Work off the retry the command queued, batch by batch (each its own transaction), showing progress.

    The change is already committed with its retry request: if this stops half way (Ctrl-C, a
    failure), the running rater service resumes the retry where the last batch left it.
    """
    row = None
    while (batch := await rater.work_retry(tenant)) is not None:
        row = batch
        if row.state == "failed" or row.retry_at is not None:
            break
        console.print(f"  retrying waiting calls: {row.examined} examined, {row.rated} rated")
    if row is None:
        console.print("no waiting call to retry")
    elif row.state == "done":
        console.print(f"{row.rated} waiting call(s) rated")
    elif row.state == "failed":
        console.print(
            f"[red]retry failed after {row.rated} rated: {row.error}[/]\n"
            "Fix the cause, then make any change that can rate waiting calls (a tariff, an extension)"
            " to queue the retry again; `GET /v1/unrated-calls/retry` shows it."
        )
    else:
        console.print(
            f"[yellow]retry {row.state} after {row.rated} rated: {row.error}; the rater service resumes it[/]"
        )


def _run(job: Coroutine[Any, Any, Any]) -> None:
    try:
        asyncio.run(job)
    except TarifaError as error:
        console.print(f"[red]{error.message}[/]")
        for problem in error.problems[:50]:
            console.print(f"  {problem.field}: {problem.problem}")
        raise typer.Exit(2) from error


def commands() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, help="Tariffs, the extension directory and re-rating.")

    @app.command("import-tariff")
    def import_tariff(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: destination,prefixes,...")],
        tenant: Annotated[str, typer.Option(help="the tenant the plan belongs to")],
        code: Annotated[str, typer.Option(help="the plan's code, e.g. standard")],
        valid_from: Annotated[str, typer.Option(help="activation, ISO 8601 with zone")],
        currency: Annotated[str, typer.Option()] = "BRL",
        assign_to_tenant: Annotated[bool, typer.Option(help="make it the tenant's default plan")] = False,
    ) -> None:
        """Load a plan version from a CSV file; waiting calls it can price are rated."""
        start = _moment(valid_from, "--valid-from")

        async def job() -> None:
            entries = parse_rates_csv(_read(file))
            rater = await _open(RaterSettings())
            try:
                async with rater.runtime.units() as uow:
                    await sql.save_plan_version(uow.session, tenant, code, start, entries, currency=currency)
                    if assign_to_tenant:
                        await sql.assign_plan(uow.session, tenant, "tenant", "*", code)
                    await rater.request_retry(uow, tenant, handlers.FOR_TARIFF)
                console.print(f"plan {code} from {start.isoformat()}: {len(entries)} rate(s)")
                await _work_off_retry(rater, tenant)
            finally:
                await _close(rater)

        _run(job())

    @app.command("import-extensions")
    def import_extensions(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: extension,line_id,...")],
        tenant: Annotated[str, typer.Option()],
    ) -> None:
        """Load the extension directory from a CSV file; waiting calls it can attribute are rated."""

        async def job() -> None:
            entries = parse_extensions_csv(_read(file))
            rater = await _open(RaterSettings())
            try:
                async with rater.runtime.units() as uow:
                    for entry in entries:
                        await sql.save_extension(uow.session, tenant, entry)
                    await rater.request_retry(
                        uow, tenant, handlers.for_extensions(*(entry.extension for entry in entries))
                    )
                console.print(f"{len(entries)} extension(s) loaded")
                await _work_off_retry(rater, tenant)
            finally:
                await _close(rater)

        _run(job())

    @app.command("rerate")
    def rerate(
        tenant: Annotated[str, typer.Option()],
        start: Annotated[str, typer.Option("--from", help="ISO 8601 with zone, inclusive")],
        end: Annotated[str, typer.Option("--to", help="ISO 8601 with zone, exclusive")],
        source: Annotated[str | None, typer.Option(help="only this source")] = None,
        line: Annotated[str | None, typer.Option(help="only this line id or extension")] = None,
    ) -> None:
        """Re-rate a period: calls whose price or attribution changed get a new version; twice changes nothing."""
        scope = RerateScope(tenant, _moment(start, "--from"), _moment(end, "--to"), source, line)
        if scope.end <= scope.start:
            raise typer.BadParameter("must be after --from", param_hint="--to")

        async def job() -> RerateProgress:
            rater = await _open(RaterSettings())
            try:
                with Progress(
                    SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
                ) as bar:
                    task = bar.add_task("re-rating", total=None)

                    def show(progress: RerateProgress) -> None:
                        bar.update(
                            task,
                            description=f"examined {progress.examined}, changed {progress.changed}, "
                            f"difference {progress.difference}",
                        )

                    result = await rater.rerate(scope, show)
                typer.echo(
                    f"examined {result.examined}; new versions {result.changed} "
                    f"(first rating {result.newly_rated}); still unrated {result.still_unrated}; "
                    f"difference {result.difference}"
                )
                return result
            finally:
                await _close(rater)

        _run(job())

    return app
