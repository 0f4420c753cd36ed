"""How the `tarifa` CLI finds the rater (entry point `tarifa.services`)."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec
from tarifa_rater.config import RaterSettings


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_rater.entrypoints.api import create_app

    return create_app(settings)


SPEC = ServiceSpec(
    name="rater",
    summary="Tariffs, extensions and rated calls.",
    settings=RaterSettings,
    create_app=_create_app,
)
