"""How the `tarifa` CLI finds the collector (entry point `tarifa.services`)."""

import typer
from fastapi import FastAPI

from tarifa_collector.config import CollectorSettings
from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_collector.entrypoints.api import create_app

    assert isinstance(settings, CollectorSettings)
    return create_app(settings)


def _commands() -> typer.Typer:
    from tarifa_collector.entrypoints.cli import commands

    return commands()


SPEC = ServiceSpec(
    name="collector",
    summary="Call records from PBXs, files and APIs into cdr.raw.",
    settings=CollectorSettings,
    create_app=_create_app,
    commands=_commands,
)
