"""`tarifa voip-summit ...`: run the Summit simulator, export its contract, reconcile lines by hand."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from tarifa_voip_summit.simulator import create_simulator

SPEC_FILE = Path(__file__).resolve().parents[3] / "summit-api.json"


def commands() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, help="SIP lines, DIDs and blocking on Summit Networks.")

    @app.command()
    def simulator(
        port: Annotated[int, typer.Option(help="TCP port to listen on")] = 8190,
        host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
        username: Annotated[str | None, typer.Option(help="demand HTTP Basic with this user")] = None,
        password: Annotated[
            str | None, typer.Option(envvar="SUMMIT_SIMULATOR_PASSWORD", help="and this password")
        ] = None,
    ) -> None:
        """Run the stateful Summit simulator (fault injection under PUT /_control/faults)."""
        uvicorn.run(create_simulator(username=username, password=password), host=host, port=port, log_level="info")

    @app.command("summit-spec")
    def summit_spec(
        output: Annotated[Path, typer.Option(help="where to write the OpenAPI document")] = SPEC_FILE,
    ) -> None:
        """Write the OpenAPI document of the Summit API we speak (the simulator is its reference)."""
        output.write_text(json.dumps(create_simulator().openapi(), indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"wrote {output}")

    @app.command()
    def reconcile() -> None:
        """Compare every active integration's lines with Summit now; drift is printed and alerted."""
        from tarifa_voip_summit.bootstrap import bootstrap
        from tarifa_voip_summit.config import VoipSummitSettings

        async def run() -> None:
            # No consumers, no relay: the alerts go to the outbox, which the running service publishes.
            voip = bootstrap(VoipSummitSettings())
            try:
                report = await voip.provisioner.reconcile()
            finally:
                await voip.runtime.engine.dispose()
            for integration_id, drift in report.items():
                typer.echo(f"{integration_id}: {drift.summary()}")

        asyncio.run(run())

    return app
