"""The one place that wires the collector: its runtime, its background tasks, its adapters."""

import logging
from pathlib import Path

import httpx

from tarifa_collector.adapters import accounting
from tarifa_collector.adapters.accounting import HttpRatingLedger, wait_for_rater
from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.links import SourceRunner, watch_sources
from tarifa_collector.adapters.prepare_worker import PrepareWorker
from tarifa_collector.adapters.replay import republish_recent
from tarifa_collector.adapters.summit import HttpSummitIntegrations, SummitImports
from tarifa_collector.config import CollectorSettings
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.service_client import ServiceClient

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def bootstrap(settings: CollectorSettings) -> ServiceRuntime:
    """The collector consumes no topic: its inputs are PBX links, directories and HTTP."""

    async def run_sources(runtime: ServiceRuntime) -> None:
        worker = PrepareWorker(settings.gc_young_threshold) if settings.prepare_worker else None
        if worker is not None:
            worker.start()
        try:
            await SourceRunner(Intake(runtime.units, worker), settings).run()
        finally:
            if worker is not None:
                worker.close()

    async def run_summit_imports(runtime: ServiceRuntime) -> None:
        await SummitImports(Intake(runtime.units), settings, HttpSummitIntegrations.from_settings(settings)).run()

    async def watchdog(runtime: ServiceRuntime) -> None:
        await watch_sources(Intake(runtime.units), settings)

    async def republish(runtime: ServiceRuntime) -> None:
        if settings.republish_on_start_hours <= 0:
            return
        await runtime.publisher.ready.wait()
        rows = await Intake(runtime.units).sources()
        await republish_recent(runtime.units, [(row.tenant, row.id) for row in rows], settings.republish_on_start_hours)

    async def republish_unaccounted(runtime: ServiceRuntime) -> None:
        if not settings.rater_url:
            return
        async with httpx.AsyncClient(base_url=settings.rater_url, timeout=30) as client:
            if not await wait_for_rater(client):
                log.warning("the rater at %s never answered; nothing re-published on start", settings.rater_url)
                return
            rows = await Intake(runtime.units).sources()
            ledger = HttpRatingLedger(
                ServiceClient(
                    "the rater",
                    settings.rater_url,
                    settings.jwt_secret.get_secret_value(),
                    caller="collector",
                    issuer=settings.jwt_issuer,
                    timeout=30,
                )
            )
            await accounting.republish_unaccounted(
                runtime.units,
                ledger,
                [(row.tenant, row.id) for row in rows],
                days=settings.republish_unaccounted_days,
            )

    return ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        subscriptions=(),
        background=[run_sources, run_summit_imports, watchdog, republish, republish_unaccounted],
    )


def intake_of(runtime: ServiceRuntime) -> Intake:
    return Intake(runtime.units)
