"""The voip-summit's HTTP API."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.http import create_app as create_service_app
from tarifa_voip_summit import __doc__ as summary
from tarifa_voip_summit.bootstrap import bootstrap
from tarifa_voip_summit.config import VoipSummitSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, VoipSummitSettings)
    return create_service_app(
        bootstrap(settings), title="Tarifa voip-summit", description=summary or "", version="0.1.0"
    )
