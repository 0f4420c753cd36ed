"""The rater's HTTP API: the app factory, wiring the routes to the rater of this process."""

from fastapi import FastAPI

from tarifa_common.config import ServiceSettings
from tarifa_common.http import create_app as create_service_app
from tarifa_rater import __doc__ as summary
from tarifa_rater.bootstrap import build
from tarifa_rater.config import RaterSettings
from tarifa_rater.entrypoints import accounted
from tarifa_rater.entrypoints.routes import ROUTERS

TAGS = [
    {"name": "tariffs", "description": "Plan versions (CSV), activation dates, export"},
    {"name": "rating settings", "description": "Plan assignments, holidays, numbering contexts"},
    {"name": "extension directory", "description": "Extensions, classes of service, DID aliases"},
    {"name": "allowances", "description": "Minutes included per line per cycle, usage, credit limits"},
    {"name": "calls", "description": "Rated and unrated calls, totals, CSV, re-rates"},
]


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, RaterSettings)
    rater = build(settings)
    app = create_service_app(
        rater.runtime,
        title="Tarifa rater",
        description=summary or "",
        version="0.1.0",
        routers=(*ROUTERS, accounted.router),
        openapi_tags=TAGS,
    )
    app.state.rater = rater
    return app
