"""How the `tarifa` CLI finds the rater (entry point `tarifa.services`)."""

import typer
from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec
from tarifa_rater.config import RaterSettings


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_rater.entrypoints.api import create_app

    return create_app(settings)


def _commands() -> typer.Typer:
    from tarifa_rater.entrypoints.cli import commands

    return commands()


SPEC = ServiceSpec(
    name="rater",
    summary="Tariffs, extensions and rated calls.",
    settings=RaterSettings,
    create_app=_create_app,
    commands=_commands,
)
