"""The notifier's HTTP API."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.http import create_app as create_service_app
from tarifa_notifier import __doc__ as summary
from tarifa_notifier.bootstrap import bootstrap
from tarifa_notifier.config import NotifierSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, NotifierSettings)
    return create_service_app(bootstrap(settings), title="Tarifa notifier", description=summary or "", version="0.1.0")
