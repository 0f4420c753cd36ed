"""How the `tarifa` CLI finds the notifier (entry point `tarifa.services`)."""

import typer
from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec
from tarifa_notifier.config import NotifierSettings


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_notifier.entrypoints.api import create_app

    return create_app(settings)


def _commands() -> typer.Typer:
    from tarifa_notifier.entrypoints.cli import commands

    return commands()


SPEC = ServiceSpec(
    name="notifier",
    summary="Alerts, watchdogs, e-mail and SMS.",
    settings=NotifierSettings,
    create_app=_create_app,
    commands=_commands,
)
