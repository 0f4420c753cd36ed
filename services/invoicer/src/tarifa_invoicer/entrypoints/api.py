"""The invoicer's HTTP API."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.http import create_app as create_service_app
from tarifa_invoicer import __doc__ as summary
from tarifa_invoicer.bootstrap import bootstrap
from tarifa_invoicer.config import InvoicerSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, InvoicerSettings)
    return create_service_app(bootstrap(settings), title="Tarifa invoicer", description=summary or "", version="0.1.0")
