"""Fixtures of the rater's tests: a migrated rater on a real database, and collected calls to rate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from tarifa_common import contracts
from tarifa_common.db import migrate
from tarifa_common.events import Event, deterministic_id
from tarifa_rater.bootstrap import MIGRATIONS, Rater, build
from tarifa_rater.config import RaterSettings

SECRET = "r" * 48
# Monday 23 November 2026, 12:00 in São Paulo (UTC-3): the normal band.
MONDAY_NOON = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PRICE_LIST = """destination,prefixes,call_class,price_per_minute,reduced_price_per_minute,connect_fee,cost_per_minute
Local,,local,0.12,0.06,0.05,0.03
Mobile VC1,,vc1,0.60,0.40,0.05,0.30
Long distance,,long_distance,0.30,,0.05,
Portugal,351,,1.20,,0.10,0.80
"""


def rater_settings(database_url: str, bootstrap: str = "127.0.0.1:1") -> RaterSettings:
    return RaterSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        jwt_secret=SECRET,
        outbox_poll_seconds=0.05,
        heartbeat_interval_seconds=30,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=3000,
        consumer_batch_size=500,
    )


@pytest_asyncio.fixture
async def offline_rater(database_url: str) -> AsyncIterator[Rater]:
    """A rater on a migrated database, not connected to any broker (handlers and stores only)."""
    rater = build(rater_settings(database_url), consume=False)
    await migrate(rater.runtime.engine, MIGRATIONS, "rater")
    yield rater
    await rater.runtime.engine.dispose()


CdrFactory = Callable[..., Event]


@pytest.fixture
def make_cdr() -> CdrFactory:
    """A `tarifa.cdr.collected.v1` event; keyword arguments override the CDR's fields."""

    def make(tenant: str, record: str, **overrides: Any) -> Event:
        started = overrides.pop("started_at", MONDAY_NOON)
        seconds = overrides.pop("billable_seconds", 60)
        event_id = overrides.pop("event_id", None)
        fields: dict[str, Any] = {
            "tenant": tenant,
            "source_id": "pbx-hq",
            "source_kind": "avaya_smdr",
            "record_id": record,
            "call_id": f"call-{record}",
            "started_at": started,
            "local_start": (started - timedelta(hours=3)).replace(tzinfo=None).isoformat(),
            "time_zone": "America/Sao_Paulo",
            "answered_at": started,
            "ended_at": started + timedelta(seconds=seconds),
            "duration_seconds": seconds,
            "billable_seconds": seconds,
            "direction": contracts.Direction.OUTBOUND,
            "disposition": contracts.Disposition.ANSWERED,
            "caller": "2001",
            "dialled": "33334444",
            "extension": "2001",
            "raw": "smdr line",
        }
        fields.update(overrides)
        cdr = contracts.CollectedCdr(**fields)
        return Event(
            type=contracts.CDR_COLLECTED,
            source="tarifa/collector",
            tenant=tenant,
            subject=record,
            id=event_id or deterministic_id(tenant, cdr.source_id, record),
            data=cdr.model_dump(mode="json"),
        )

    return make


@pytest.fixture
def price_list() -> str:
    return PRICE_LIST


@pytest.fixture
def rater_settings_factory() -> Callable[..., RaterSettings]:
    return rater_settings
