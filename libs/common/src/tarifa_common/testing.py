"""Pytest fixtures every package's tests share: the real embedded broker and real databases.

Loaded as a pytest plugin (entry point `pytest11`). Databases come in two kinds, SQLite and
PostgreSQL at 127.0.0.1:5432 (user postgres, database test); each test that asks for
`database_url` runs on both. PostgreSQL tests are skipped when no server answers, unless
`TARIFA_TEST_REQUIRE_POSTGRES=1` (CI sets it), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.events import KafkaRecord
from tarifa_common.service import discover

T = TypeVar("T")
POSTGRES_ADMIN_DSN = os.environ.get("TARIFA_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# The embedded broker holds a group join for about the session timeout: keep tests quick.
FAST_CONSUMER_ENV = {
    "TARIFA_CONSUMER_SESSION_TIMEOUT_MS": "3000",
    "TARIFA_CONSUMER_REBALANCE_TIMEOUT_MS": "3000",
}


class NotYet(AssertionError):
    """Raised by a polled check that has not come true yet."""


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll `check` until it stops raising AssertionError, with a deadline; return its value."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_exception_type(AssertionError),
        reraise=True,
    ):
        with attempt:
            return await check()
    raise AssertionError("unreachable")  # pragma: no cover


@pytest_asyncio.fixture(scope="session")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedBroker]:
    """A real Tansu broker on a free port, shared by the session."""
    instance = EmbeddedBroker(free_port(), log_file=tmp_path_factory.mktemp("broker") / "broker.log")
    await instance.start()
    yield instance
    await instance.stop()


def _postgres_required() -> bool:
    return os.environ.get("TARIFA_TEST_REQUIRE_POSTGRES") == "1"


async def _create_postgres_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    import asyncpg

    name = f"tarifa_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        message = f"PostgreSQL at {POSTGRES_ADMIN_DSN} is not reachable: {error}"
        if _postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", drop


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    url, drop = await _create_postgres_database()
    yield url
    await drop()


@pytest.fixture
def fast_consumers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Short consumer-group timeouts for services started in this test."""
    for key, value in FAST_CONSUMER_ENV.items():
        monkeypatch.setenv(key, value)
    yield FAST_CONSUMER_ENV


def unique(prefix: str) -> str:
    """A name no other test uses (topics, groups, tenants), since the broker is shared."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[KafkaRecord]:
    """Read a topic from the start as a plain Kafka client would (no group, no Tarifa code)."""
    records = await read_records(bootstrap, topic, expected, timeout)
    return [KafkaRecord(r.key, r.value or b"", list(r.headers)) for r in records]


async def read_records(
    bootstrap: str, topic: str, expected: int, timeout: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """`read_all` with aiokafka's own records, for tests that look at partitions and offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = None
        for _ in range(100):
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        assert partitions, f"topic {topic} has no partitions"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        records: list[ConsumerRecord[bytes, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


@dataclass
class ServedService:
    """A Tarifa service's app served by uvicorn on a real loopback port (cross-service tests)."""

    url: str
    app: Any  # the FastAPI app: `app.state.runtime` reaches the service's runtime
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        if not self.task.done():
            self.server.should_exit = True
            await self.task


async def serve_service(
    name: str, tmp_path: Path, broker: EmbeddedBroker, *, jwt_secret: str, **settings: Any
) -> ServedService:
    """Serve the service `name` (its own SQLite file under `tmp_path`) until its `/readyz` answers 200."""
    spec = discover()[name]
    port = free_port()
    config = spec.settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        jwt_secret=jwt_secret,
        http_port=port,
        **settings,
    )
    app = spec.create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    served = ServedService(f"http://127.0.0.1:{port}", app, server, asyncio.create_task(server.serve()))

    async def ready() -> None:
        assert not served.task.done(), f"{name} stopped while starting"
        async with httpx.AsyncClient() as client:
            try:
                answer = await client.get(f"{served.url}/readyz")
            except httpx.TransportError as error:
                raise AssertionError(f"{name} is not listening yet: {error}") from error
            assert answer.status_code == 200, answer.text

    await eventually(ready, timeout=60)
    return served
