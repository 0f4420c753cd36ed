"""The collector under test: started on a real broker and database, driven through its API; topic snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from tarifa_collector.config import CollectorSettings
from tarifa_collector.entrypoints.api import create_app
from tarifa_common import auth
from tarifa_common.events import Event, decode
from tarifa_common.runtime import ServiceRuntime

SECRET = "c" * 48


@dataclass
class Collector:
    api: httpx.AsyncClient
    runtime: ServiceRuntime
    settings: CollectorSettings
    tenant: str
    bootstrap: str

    def headers(self, *roles: str) -> dict[str, str]:
        token = auth.mint(SECRET, subject="test", tenant=self.tenant, roles=list(roles or ["operator"]))
        return {"Authorization": f"Bearer {token}"}

    async def add_source(self, **body: Any) -> dict[str, Any]:
        answer = await self.api.post("/v1/sources", json=body, headers=self.headers("operator"))
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def source(self, source_id: str) -> dict[str, Any]:
        answer = await self.api.get(f"/v1/sources/{source_id}", headers=self.headers("viewer"))
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def events(self, topic: str) -> list[Event]:
        """Every event of this test's tenant on `topic`, read to the end as a plain Kafka client would."""
        return [e for e in await snapshot(self.bootstrap, topic) if e.tenant == self.tenant]


async def snapshot(bootstrap: str, topic: str) -> list[Event]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in partitions]
        if not assigned:
            return []
        consumer.assign(assigned)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(assigned)
        events: list[Event] = []
        while True:
            behind = [tp for tp in assigned if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                events += [decode(list(r.headers), r.key, r.value) for r in batch]
        return events
    finally:
        await consumer.stop()


def collector_settings(bootstrap: str, database_url: str, **overrides: Any) -> CollectorSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "database_url": database_url,
        "jwt_secret": SECRET,
        "outbox_poll_seconds": 0.1,
        "reconcile_seconds": 0.1,
        "watchdog_seconds": 0.2,
        "link_grace_seconds": 0.5,
        "directory_poll_seconds": 0.1,
        "directory_settle_seconds": 0.0,
        "smdr_bind_host": "127.0.0.1",
        "client_max_backoff_seconds": 0.5,
    }
    values.update(overrides)
    return CollectorSettings(**values)


async def start_collector(
    settings: CollectorSettings, *, wait_for_broker: bool = True
) -> tuple[ServiceRuntime, httpx.AsyncClient]:
    app = create_app(settings)
    runtime: ServiceRuntime = app.state.runtime
    await runtime.start()
    if wait_for_broker:
        await runtime.publisher.ready.wait()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://c")
    return runtime, client
