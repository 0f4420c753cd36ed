"""How the `tarifa` CLI finds the invoicer (entry point `tarifa.services`)."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec
from tarifa_invoicer.config import InvoicerSettings


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_invoicer.entrypoints.api import create_app

    return create_app(settings)


SPEC = ServiceSpec(
    name="invoicer",
    summary="Billing runs, invoices and EDI.",
    settings=InvoicerSettings,
    create_app=_create_app,
)
