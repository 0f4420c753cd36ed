"""The one place that wires the collector: its runtime, its subscriptions, its adapters."""

from pathlib import Path

from tarifa_collector.config import CollectorSettings
from tarifa_common.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(settings: CollectorSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=())
