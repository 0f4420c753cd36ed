"""Fixtures of the collector's tests: a running collector (real broker, real database)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

sys.path.insert(0, str(Path(__file__).parent))

from collector_harness import Collector, collector_settings, start_collector

from tarifa_common.broker import EmbeddedBroker
from tarifa_common.testing import unique


@pytest_asyncio.fixture
async def collector(broker: EmbeddedBroker, database_url: str) -> AsyncIterator[Collector]:
    settings = collector_settings(broker.bootstrap_servers, database_url)
    runtime, client = await start_collector(settings)
    try:
        yield Collector(client, runtime, settings, unique("tenant"), broker.bootstrap_servers)
    finally:
        await client.aclose()
        await runtime.stop()


@pytest_asyncio.fixture
async def sqlite_collector(broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Collector]:
    """A collector on SQLite only, for tests whose subject is not the database."""
    settings = collector_settings(broker.bootstrap_servers, f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}")
    runtime, client = await start_collector(settings)
    try:
        yield Collector(client, runtime, settings, unique("tenant"), broker.bootstrap_servers)
    finally:
        await client.aclose()
        await runtime.stop()
