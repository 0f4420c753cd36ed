"""The rater's HTTP API."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.http import create_app as create_service_app
from tarifa_rater import __doc__ as summary
from tarifa_rater.bootstrap import bootstrap
from tarifa_rater.config import RaterSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, RaterSettings)
    return create_service_app(bootstrap(settings), title="Tarifa rater", description=summary or "", version="0.1.0")
