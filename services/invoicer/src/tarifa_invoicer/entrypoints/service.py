"""How the `tarifa` CLI finds the invoicer (entry point `tarifa.services`)."""

import typer
from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec
from tarifa_invoicer.config import InvoicerSettings


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_invoicer.entrypoints.api import create_app

    return create_app(settings)


def _commands() -> typer.Typer:
    from tarifa_invoicer.entrypoints.cli import commands

    return commands()


SPEC = ServiceSpec(
    name="invoicer",
    summary="Billing runs, invoices and EDI.",
    settings=InvoicerSettings,
    create_app=_create_app,
    commands=_commands,
)
