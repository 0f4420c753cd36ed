"""The collector's HTTP API."""

from fastapi import FastAPI

from tarifa_collector import __doc__ as summary
from tarifa_collector.bootstrap import bootstrap
from tarifa_collector.config import CollectorSettings
from tarifa_common.config import ServiceSettings
from tarifa_common.http import create_app as create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, CollectorSettings)
    return create_service_app(bootstrap(settings), title="Tarifa collector", description=summary or "", version="0.1.0")
