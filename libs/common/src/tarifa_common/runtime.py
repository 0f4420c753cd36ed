"""The life of one service process: database, migrations, producer, outbox relay, consumers, heartbeat.

Each service builds one `ServiceRuntime` in its bootstrap and hands it to the HTTP app, whose
lifespan starts and stops it. Start-up never waits for Kafka: the HTTP API and the outbox keep
accepting work while the broker is away, `/readyz` says so, and a background task connects (and
reconnects) with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from tarifa_common import topics
from tarifa_common.config import ServiceSettings
from tarifa_common.db import make_engine, migrate, ping, session_factory, wait_for_database
from tarifa_common.events import Event
from tarifa_common.kafka import EventConsumer, OutboxRelay, Publisher, Subscription, ensure_topics
from tarifa_common.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

PLATFORM_TENANT = "platform"
HEARTBEAT_TYPE = "tarifa.service.heartbeat.v1"

BackgroundTask = Callable[["ServiceRuntime"], Awaitable[None]]


class ServiceRuntime:
    """Owns the process's connections and tasks; `start()` once, `stop()` once."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Path | None,
        subscriptions: Sequence[Subscription] = (),
        background: Sequence[BackgroundTask] = (),
        create_topics: bool = True,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.instance_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.engine = make_engine(settings.database_url)
        self.publisher = Publisher(settings.kafka_bootstrap_servers, settings.kafka_client_id)
        self.relay: OutboxRelay
        self.units = UnitOfWorkFactory(session_factory(self.engine), on_emitted=lambda: self.relay.wake())
        self.relay = OutboxRelay(self.units, self.publisher, poll_seconds=settings.outbox_poll_seconds)
        self.consumers = [
            EventConsumer(
                subscription,
                self.units,
                self.publisher,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                client_id=f"{settings.kafka_client_id}-{subscription.group}",
                batch_size=settings.consumer_batch_size,
                max_attempts=settings.consumer_max_attempts,
                session_timeout_ms=settings.consumer_session_timeout_ms,
                rebalance_timeout_ms=settings.consumer_rebalance_timeout_ms,
            )
            for subscription in subscriptions
        ]
        self._migrations = migrations
        self._background = background
        self._create_topics = create_topics
        self._tasks: list[asyncio.Task[Any]] = []
        self.kafka_error: str | None = "not connected yet"

    async def start(self) -> None:
        await wait_for_database(self.engine)
        if self._migrations is not None:
            await migrate(self.engine, self._migrations, self.service)
        self._spawn(self._connect_kafka(), "kafka")
        self._spawn(self.relay.run(), "outbox-relay")
        self._spawn(self._heartbeat(), "heartbeat")
        for task in self._background:
            self._spawn(task(self), getattr(task, "__name__", "background"))
        log.info("service started", extra={"service": self.service, "instance": self.instance_id})

    async def stop(self) -> None:
        """Stop consuming, finish and commit the batch in hand, flush the outbox, disconnect."""
        for consumer in self.consumers:
            consumer.stop()
        self.relay.stop()
        # A consumer still joining its group has nothing in hand: cancel it rather than wait for the join.
        by_group = {c.group: c for c in self.consumers}
        consuming = []
        for task in self._tasks:
            name = task.get_name()
            if name.startswith("consumer:"):
                if by_group[name.removeprefix("consumer:")].started.is_set():
                    consuming.append(task)
                else:
                    task.cancel()
        if consuming:
            await asyncio.wait(consuming, timeout=20)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.publisher.ready.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.drain(), timeout=5)
        await self.publisher.stop()
        await self.engine.dispose()
        log.info("service stopped", extra={"service": self.service})

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def _connect_kafka(self) -> None:
        backoff = 0.25
        while True:
            try:
                if self._create_topics:
                    await ensure_topics(
                        self.settings.kafka_bootstrap_servers,
                        topics.ALL,
                        dead_letter_groups=[c.group for c in self.consumers],
                    )
                await self.publisher.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.kafka_error = f"{type(error).__name__}: {error}"
                log.warning(
                    "Kafka not reachable at %s; retrying in %.1fs",
                    self.settings.kafka_bootstrap_servers,
                    backoff,
                    extra={"error": self.kafka_error},
                )
                await self.publisher.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self.kafka_error = None
        for consumer in self.consumers:
            self._spawn(self._consume(consumer), f"consumer:{consumer.group}")

    async def _consume(self, consumer: EventConsumer) -> None:
        """Join the group and run the consumer; if it dies (broker lost), join again with backoff."""
        backoff = 0.5
        while not consumer.stopping:
            try:
                await consumer.start()
                backoff = 0.5
                await consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("consumer %s failed (%r); joining again in %.1fs", consumer.group, error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                if self._create_topics:
                    # An embedded broker that restarted has forgotten every topic; commits to a
                    # forgotten topic never succeed, so create them again before rejoining.
                    with contextlib.suppress(Exception):
                        await ensure_topics(
                            self.settings.kafka_bootstrap_servers,
                            topics.ALL,
                            dead_letter_groups=[c.group for c in self.consumers],
                        )

    async def _heartbeat(self) -> None:
        while True:
            if self.publisher.ready.is_set():
                try:
                    await self.publisher.publish(self.heartbeat_event(), topics.HEARTBEAT, key=self.service)
                except Exception as error:
                    log.warning("heartbeat not published: %s", error)
            await asyncio.sleep(self.settings.heartbeat_interval_seconds)

    def heartbeat_event(self) -> Event:
        return Event(
            type=HEARTBEAT_TYPE,
            source=f"tarifa/{self.service}",
            tenant=PLATFORM_TENANT,
            subject=self.instance_id,
            data={
                "service": self.service,
                "instance": self.instance_id,
                "interval_seconds": self.settings.heartbeat_interval_seconds,
                "consumers": {
                    c.group: {
                        "processed": c.stats.processed,
                        "dead_lettered": c.stats.dead_lettered,
                        "lag": sum(c.stats.lag.values()),
                    }
                    for c in self.consumers
                },
            },
        )

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """What `/readyz` reports: ready when the database and the broker answer, and each check.

        Consumers are reported but do not gate readiness: joining a group can take seconds
        (a rebalance), and the API and the outbox work meanwhile.
        """
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(self.engine), timeout=3)
            checks["database"] = "ok"
        except Exception as error:
            checks["database"] = f"unreachable: {type(error).__name__}: {error}"
        try:
            await self.publisher.check()
            checks["broker"] = "ok"
        except Exception as error:
            checks["broker"] = f"unreachable: {self.kafka_error or type(error).__name__}"
        for consumer in self.consumers:
            checks[f"consumer:{consumer.group}"] = "consuming" if consumer.started.is_set() else "joining"
        return checks["database"] == "ok" and checks["broker"] == "ok", checks
