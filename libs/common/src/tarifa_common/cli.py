"""The `tarifa` command: run the platform, serve one service, mint tokens, replay dead letters.

Each service adds its own commands (import a file, re-rate a period, run billing) under
`tarifa <service> …` through its `ServiceSpec`; this module never imports a service directly.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tarifa_common import auth
from tarifa_common.service import ServiceSpec, discover

DEFAULT_DATA_DIR = Path(".tarifa")
app = typer.Typer(
    name="tarifa",
    help="Tarifa: call accounting and telecom billing on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
dlq_app = typer.Typer(help="Dead-letter topics: see what failed, replay it after a fix.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console(stderr=True)


def _specs() -> dict[str, ServiceSpec]:
    specs = discover()
    if not specs:
        console.print("[red]No Tarifa service is installed.[/] Run `python3 dev.py setup` first.")
        raise typer.Exit(1)
    return specs


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Where SQLite files, logs and the token key live")] = DEFAULT_DATA_DIR,
    broker_port: Annotated[int, typer.Option(help="Port of the embedded Kafka broker")] = 19092,
    port_offset: Annotated[int, typer.Option(help="Added to every service's port (8101-8105)")] = 0,
    only: Annotated[str, typer.Option(help="Comma-separated services to start (default: all)")] = "",
    demo: Annotated[
        bool, typer.Option(help="Seed a demo tenant, start local sinks and simulators, and run the demo story")
    ] = False,
) -> None:
    """Start the embedded platform: a Kafka-protocol broker and the five services, until Ctrl-C."""
    from tarifa_common.broker import BrokerError
    from tarifa_common.service import load_extension
    from tarifa_common.supervisor import Supervisor

    extension = load_extension("demo") if demo else None
    if demo and extension is None:
        console.print("[red]The demo is not installed[/] (the tarifa-demo package); run `python3 dev.py setup`.")
        raise typer.Exit(2)

    specs = _specs()
    chosen = [name.strip() for name in only.split(",") if name.strip()] or list(specs)
    unknown = sorted(set(chosen) - set(specs))
    if unknown:
        console.print(f"[red]Unknown services {unknown}.[/] Installed: {', '.join(specs)}")
        raise typer.Exit(2)
    supervisor = Supervisor(
        [specs[name] for name in chosen],
        data_dir=data_dir,
        broker_port=broker_port,
        port_offset=port_offset,
        console=console,
        extension=extension,
    )
    try:
        code = asyncio.run(supervisor.run())
    except BrokerError as error:
        console.print(f"[red]{error}[/]")
        code = 1
    raise typer.Exit(code)


@app.command()
def serve(service: Annotated[str, typer.Argument(help="collector, rater, voip-summit, invoicer or notifier")]) -> None:
    """Run one service (what docker compose and Kubernetes run), reading its settings from the environment."""
    import uvicorn
    from pydantic import ValidationError

    from tarifa_common.config import tune_garbage_collector
    from tarifa_common.telemetry import setup_telemetry

    specs = _specs()
    if service not in specs:
        console.print(f"[red]Unknown service {service!r}.[/] Installed: {', '.join(specs)}")
        raise typer.Exit(2)
    spec = specs[service]
    try:
        settings = spec.settings()
    except ValidationError as error:
        console.print(f"[red]{service}: invalid settings[/]\n{error}")
        raise typer.Exit(2) from error
    setup_telemetry(
        service,
        exporter=settings.trace_exporter,
        otlp_endpoint=settings.otlp_endpoint,
        log_format=settings.log_format,
        log_level=settings.log_level,
    )
    tune_garbage_collector(settings)
    config = uvicorn.Config(
        spec.create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        lifespan="on",
    )
    uvicorn.Server(config).run()


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="The tenant the token acts for")],
    role: Annotated[list[str], typer.Option(help=f"Repeatable: {', '.join(auth.ROLES)}")],
    subject: Annotated[str, typer.Option(help="Who holds the token (a person or a system)")] = "cli",
    ttl_hours: Annotated[float, typer.Option(help="Validity in hours")] = 12.0,
    data_dir: Annotated[Path, typer.Option(help="The `tarifa up` data directory holding the key")] = DEFAULT_DATA_DIR,
) -> None:
    """Mint a bearer token, signed with TARIFA_JWT_SECRET or the embedded platform's key."""
    from tarifa_common.supervisor import SECRET_FILE

    secret = os.environ.get("TARIFA_JWT_SECRET")
    if not secret:
        path = data_dir / SECRET_FILE
        if not path.exists():
            console.print(f"[red]No key:[/] set TARIFA_JWT_SECRET or run `tarifa up` once (it writes {path}).")
            raise typer.Exit(2)
        secret = path.read_text().strip()
    try:
        minted = auth.mint(secret, subject=subject, tenant=tenant, roles=role, ttl=timedelta(hours=ttl_hours))
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    sys.stdout.write(minted + "\n")


@app.command()
def topics(
    bootstrap: Annotated[str, typer.Option(envvar="TARIFA_KAFKA_BOOTSTRAP_SERVERS")] = "127.0.0.1:19092",
) -> None:
    """Create every Tarifa topic that does not exist yet on the broker."""
    from tarifa_common.kafka import ensure_topics

    created = asyncio.run(ensure_topics(bootstrap))
    console.print(f"created: {', '.join(created) if created else 'nothing, all topics exist'}")


@dlq_app.command("replay")
def dlq_replay(
    group: Annotated[str, typer.Argument(help="The consumer group whose dead letters to replay, e.g. rater")],
    bootstrap: Annotated[str, typer.Option(envvar="TARIFA_KAFKA_BOOTSTRAP_SERVERS")] = "127.0.0.1:19092",
    dry_run: Annotated[bool, typer.Option(help="Only list what would be replayed")] = False,
) -> None:
    """Send the dead letters of GROUP back to their original topics (after fixing the cause).

    The inbox makes replay safe: an event that was in fact processed is a no-op the second time.
    """
    from tarifa_common.dead_letters import replay

    count = asyncio.run(replay(bootstrap, group, dry_run=dry_run, report=console.print))
    console.print(f"{'would replay' if dry_run else 'replayed'} {count} message(s) from dlq.{group}")


def _add_service_commands() -> None:
    try:
        specs = discover()
    except Exception as error:  # a broken service install must not hide `tarifa up`'s error message
        console.print(f"[yellow]warning: could not load service commands: {error}[/]")
        return
    for spec in specs.values():
        if spec.commands is not None:
            app.add_typer(spec.commands(), name=spec.name, help=spec.summary)


def main() -> None:
    _add_service_commands()
    app()


if __name__ == "__main__":
    main()
