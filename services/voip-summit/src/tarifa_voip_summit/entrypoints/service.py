"""How the `tarifa` CLI finds the voip-summit (entry point `tarifa.services`)."""

import typer
from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec
from tarifa_voip_summit.config import VoipSummitSettings


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_voip_summit.entrypoints.api import create_app

    return create_app(settings)


def _commands() -> typer.Typer:
    from tarifa_voip_summit.entrypoints.cli import commands

    return commands()


SPEC = ServiceSpec(
    name="voip-summit",
    summary="SIP lines, DIDs and blocking on Summit Networks.",
    settings=VoipSummitSettings,
    create_app=_create_app,
    commands=_commands,
)
