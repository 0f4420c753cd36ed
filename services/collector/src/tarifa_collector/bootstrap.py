"""The one place that wires the collector: its runtime, its background tasks, its adapters."""

from pathlib import Path

from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.links import SourceRunner, watch_sources
from tarifa_collector.adapters.replay import republish_recent
from tarifa_collector.config import CollectorSettings
from tarifa_common.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(settings: CollectorSettings) -> ServiceRuntime:
    """The collector consumes no topic: its inputs are PBX links, directories and HTTP."""

    async def run_sources(runtime: ServiceRuntime) -> None:
        await SourceRunner(Intake(runtime.units), settings).run()

    async def watchdog(runtime: ServiceRuntime) -> None:
        await watch_sources(Intake(runtime.units), settings)

    async def republish(runtime: ServiceRuntime) -> None:
        if settings.republish_on_start_hours <= 0:
            return
        await runtime.publisher.ready.wait()
        rows = await Intake(runtime.units).sources()
        await republish_recent(runtime.units, [(row.tenant, row.id) for row in rows], settings.republish_on_start_hours)

    return ServiceRuntime(
        settings, migrations=MIGRATIONS, subscriptions=(), background=[run_sources, watchdog, republish]
    )


def intake_of(runtime: ServiceRuntime) -> Intake:
    return Intake(runtime.units)
