"""How the `tarifa` CLI finds the collector (entry point `tarifa.services`)."""

from fastapi import FastAPI

from tarifa_collector.config import CollectorSettings
from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec


def _create_app(settings: ServiceSettings) -> FastAPI:
    from tarifa_collector.entrypoints.api import create_app

    return create_app(settings)


SPEC = ServiceSpec(
    name="collector",
    summary="Call records from PBXs, files and APIs into cdr.raw.",
    settings=CollectorSettings,
    create_app=_create_app,
)
