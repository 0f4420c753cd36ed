"""The collector and the rater together: after the embedded broker lost its topics, a starting collector
re-publishes exactly the calls the rater has not accounted for.

Real apps: the rater serves its API on a real port (uvicorn) and consumes from a real embedded
broker; the collector asks it over HTTP. The broker is replaced by a fresh one, as `tarifa up`
does after a restart (Tansu keeps topics in memory).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition

from tarifa_collector.config import CollectorSettings
from tarifa_collector.entrypoints.api import create_app as create_collector
from tarifa_collector.fake_ipoffice import smdr_line
from tarifa_common import auth
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.contracts import CDR_COLLECTED
from tarifa_common.events import Event, decode
from tarifa_common.service import discover
from tarifa_common.supervisor import Supervisor
from tarifa_common.testing import eventually, unique
from tarifa_rater.config import RaterSettings
from tarifa_rater.entrypoints.api import create_app as create_rater

pytestmark = pytest.mark.broker
SECRET = "s" * 48


@asynccontextmanager
async def rater_serving(bootstrap: str, database: Path, port: int) -> AsyncIterator[str]:
    settings = RaterSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        kafka_bootstrap_servers=bootstrap,
        jwt_secret=SECRET,
        outbox_poll_seconds=0.05,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=3000,
    )
    server = uvicorn.Server(uvicorn.Config(create_rater(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.ensure_future(server.serve())
    try:
        await eventually(lambda: _started(server), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> None:
    assert server.started, "rater not serving yet"


@asynccontextmanager
async def collector_running(bootstrap: str, database: Path, rater_url: str = "") -> AsyncIterator[httpx.AsyncClient]:
    settings = CollectorSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=f"sqlite+aiosqlite:///{database}",
        jwt_secret=SECRET,
        outbox_poll_seconds=0.05,
        reconcile_seconds=0.1,
        rater_url=rater_url,
    )
    app = create_collector(settings)
    runtime = app.state.runtime
    await runtime.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector")
    try:
        yield client
    finally:
        await client.aclose()
        await runtime.stop()


async def raw_events(bootstrap: str, tenant: str) -> list[Event]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        assigned = [TopicPartition("cdr.raw", p) for p in consumer.partitions_for_topic("cdr.raw") or set()]
        if not assigned:
            return []
        consumer.assign(assigned)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(assigned)
        events: list[Event] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                events += [decode(list(r.headers), r.key, r.value) for r in batch]
        return [e for e in events if e.tenant == tenant and e.type == CDR_COLLECTED]
    finally:
        await consumer.stop()


async def accounted(rater_url: str, tenant: str, ids: list[str]) -> set[str]:
    token = auth.mint(SECRET, subject="test", tenant=tenant, roles=["viewer"])
    async with httpx.AsyncClient(base_url=rater_url) as client:
        answer = await client.post(
            "/v1/accounted-calls", json={"record_ids": ids}, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    return set(answer.json()["accounted"])


async def post_lines(collector: httpx.AsyncClient, tenant: str, lines: list[bytes]) -> None:
    token = auth.mint(SECRET, subject="test", tenant=tenant, roles=["operator"])
    answer = await collector.post(
        "/v1/cdrs",
        params={"source_id": "pbx"},
        content=b"".join(lines),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )
    assert answer.json()["accepted"] == len(lines), answer.text


async def test_a_starting_collector_republishes_only_what_the_rater_never_accounted_for(tmp_path: Path) -> None:
    tenant = unique("tenant")
    collector_db, rater_db = tmp_path / "collector.db", tmp_path / "rater.db"
    rater_port = free_port()
    operator = {"Authorization": f"Bearer {auth.mint(SECRET, subject='t', tenant=tenant, roles=['operator'])}"}

    first_broker = EmbeddedBroker(free_port(), log_file=tmp_path / "broker-1.log")
    await first_broker.start()
    try:
        async with (
            rater_serving(first_broker.bootstrap_servers, rater_db, rater_port) as rater_url,
            collector_running(first_broker.bootstrap_servers, collector_db) as collector,
        ):
            created = await collector.post(
                "/v1/sources", json={"id": "pbx", "kind": "http", "format": "avaya_smdr"}, headers=operator
            )
            assert created.status_code == 201, created.text
            await post_lines(collector, tenant, [smdr_line(5001), smdr_line(5002)])
            events = await eventually(lambda: _count(first_broker.bootstrap_servers, tenant, 2))
            rated = [event.id for event in events]

            async def rater_has_both() -> None:
                assert await accounted(rater_url, tenant, rated) == set(rated)

            await eventually(rater_has_both, timeout=60)
        # The rater is down: this call reaches the broker but never the rater.
        async with collector_running(first_broker.bootstrap_servers, collector_db) as collector:
            await post_lines(collector, tenant, [smdr_line(5003)])
            events = await eventually(lambda: _count(first_broker.bootstrap_servers, tenant, 3))
            [missed] = [event.id for event in events if event.id not in rated]
    finally:
        await first_broker.stop()

    # A restarted embedded platform: a fresh broker that knows nothing, the same databases.
    second_broker = EmbeddedBroker(free_port(), log_file=tmp_path / "broker-2.log")
    await second_broker.start()
    try:
        async with (
            rater_serving(second_broker.bootstrap_servers, rater_db, rater_port) as rater_url,
            collector_running(second_broker.bootstrap_servers, collector_db, rater_url=rater_url),
        ):
            republished = await eventually(lambda: _count(second_broker.bootstrap_servers, tenant, 1), timeout=60)
            assert [event.id for event in republished] == [missed]

            async def rater_has_all() -> None:
                assert await accounted(rater_url, tenant, [*rated, missed]) == {*rated, missed}

            await eventually(rater_has_all, timeout=60)
            # Nothing else follows: the accounted calls are not sent again.
            assert [event.id for event in await raw_events(second_broker.bootstrap_servers, tenant)] == [missed]
    finally:
        await second_broker.stop()


async def _count(bootstrap: str, tenant: str, expected: int) -> list[Event]:
    events = await raw_events(bootstrap, tenant)
    assert len(events) >= expected, f"{len(events)} of {expected} calls on cdr.raw"
    return events


def test_tarifa_up_tells_the_collector_where_the_rater_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = Supervisor(list(discover().values()), data_dir=tmp_path, broker_port=free_port(), port_offset=10)
    services = {service.spec.name: service for service in supervisor.services}
    collector_env = services["collector"].env
    assert collector_env["TARIFA_COLLECTOR_RATER_URL"] == services["rater"].url == "http://127.0.0.1:8112"
    for name, value in collector_env.items():
        if name.startswith("TARIFA_"):
            monkeypatch.setenv(name, value)
    assert CollectorSettings().rater_url == "http://127.0.0.1:8112"
