"""Kafka through aiokafka: the publisher, the outbox relay, the consumer loop and the dead-letter topics.

Delivery rules (DESIGN.md): at-least-once everywhere; a consumer commits its offsets only after
its database transaction committed; the inbox makes a redelivery a no-op; a message that cannot
be decoded, or whose handler keeps failing, goes to the group's dead-letter topic with the
reason and never blocks its partition. No Kafka transactions and no idempotent producer: the
embedded broker has neither, so idempotency lives in the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from tarifa_common import telemetry
from tarifa_common.events import Event, EventDecodeError, KafkaRecord, decode, encode, utcnow
from tarifa_common.messaging import OutboxEntry, OutboxHandoff, claim_many, parse_headers
from tarifa_common.topics import (
    ALL,
    DEAD_LETTER_PARTITIONS,
    DEAD_LETTER_RETENTION_HOURS,
    Topic,
    dead_letter_topic,
)
from tarifa_common.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

Handler = Callable[[Event, UnitOfWork], Awaitable[None]]
BatchHandler = Callable[[list[Event], UnitOfWork], Awaitable[None]]

# Errors that say the infrastructure is unwell, not the message: retried without end, never
# dead-lettered, offsets not committed.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    ConnectionError,
    OSError,
    TimeoutError,
    KafkaError,
)

_meter = telemetry.meter()
_consumed = _meter.create_counter("tarifa.messages.consumed", description="messages consumed, by outcome")
_published = _meter.create_counter("tarifa.messages.published", description="messages published")
_handler_seconds = _meter.create_histogram("tarifa.handler.duration", unit="s", description="handler latency")
_live_consumers: weakref.WeakSet[EventConsumer] = weakref.WeakSet()


def _observe_lag(_: CallbackOptions) -> Iterable[Observation]:
    for consumer in list(_live_consumers):
        for partition, lag in consumer.stats.lag.items():
            yield Observation(lag, {"group": consumer.group, "partition": partition})


_meter.create_observable_gauge(
    "tarifa.consumer.lag", callbacks=[_observe_lag], description="messages behind the partition's end"
)


# Producer limits: a batch is sent once it holds this much; no record may exceed a request.
MAX_BATCH_BYTES = 512 * 1024
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# Consumer fetches: aiokafka's default of 1 MiB per partition left the rater's loop waiting on
# the next fetch for a third of a second per batch under a backlog (measured: 4,500 → 6,000
# calls/s); 8 MiB per partition, at most 32 MiB a fetch, keeps a backlog flowing, memory bounded.
CONSUMER_PARTITION_FETCH_BYTES = 8 * 1024 * 1024
CONSUMER_FETCH_BYTES = 32 * 1024 * 1024
_PARTITIONER = DefaultPartitioner()


def client_options(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "retry_backoff_ms": 200,
        "metadata_max_age_ms": 30_000,
    }


class Publisher:
    """Publishes records; the one producer of a process."""

    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self._options = client_options(bootstrap_servers, client_id)
        self._producer: AIOKafkaProducer | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **self._options,
            request_timeout_ms=15_000,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self.ready.set()

    async def stop(self) -> None:
        self.ready.clear()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def check(self, timeout: float = 3.0) -> None:
        """Raise unless the broker answers a metadata request now."""
        await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout)

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise ConnectionError("the Kafka producer is not connected yet")
        return self._producer

    async def send_many(self, items: Sequence[tuple[str, KafkaRecord]]) -> None:
        """Send records and wait until the broker acknowledged every one of them.

        Records are packed into batches per partition (`create_batch` / `send_batch`), so the
        wait is on one future per batch, not one per record. A key goes to the partition `send`
        would choose, by aiokafka's default partitioner (murmur2, as Java's client), computed
        once per key; a record without a key goes to a random partition. Within a partition
        the records keep their order in `items`.
        """
        producer = self.producer
        filling: dict[tuple[str, int], BatchBuilder] = {}
        futures: list[asyncio.Future[Any]] = []
        layouts: dict[str, tuple[list[int], list[int]]] = {}
        partitions: dict[tuple[str, bytes | None], int] = {}
        counts: dict[str, int] = {}
        for topic, record in items:
            key = record.key
            partition = partitions.get((topic, key))
            if partition is None:
                layout = layouts.get(topic)
                if layout is None:
                    layout = layouts[topic] = await self._layout(topic)
                partition = int(_PARTITIONER(key, *layout))
                if key is not None:
                    partitions[(topic, key)] = partition
            batch = filling.get((topic, partition))
            if batch is None:
                batch = filling[(topic, partition)] = producer.create_batch()
            metadata = batch.append(key=key, value=record.value, timestamp=None, headers=record.headers)
            if metadata is None:  # full: send it, start the next one
                futures.append(await self._submit(batch, topic, partition))
                batch = filling[(topic, partition)] = producer.create_batch()
                metadata = batch.append(key=key, value=record.value, timestamp=None, headers=record.headers)
            if metadata.size > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(
                    f"a record for {topic} is {metadata.size} bytes, over the {MAX_REQUEST_BYTES} bytes of a request"
                )
            counts[topic] = counts.get(topic, 0) + 1
        for (topic, partition), batch in filling.items():
            futures.append(await self._submit(batch, topic, partition))
        await asyncio.gather(*futures)
        for topic, n in counts.items():
            _published.add(n, {"topic": topic})

    async def _layout(self, topic: str) -> tuple[list[int], list[int]]:
        """Every partition of `topic` and those with a leader: what aiokafka's `send` gives its partitioner."""
        producer = self.producer
        every = sorted(await producer.partitions_for(topic))
        return every, list(producer.client.cluster.available_partitions_for_topic(topic))

    async def _submit(self, batch: BatchBuilder, topic: str, partition: int) -> asyncio.Future[Any]:
        batch.close()  # nothing else may join it: its records are ours and in our order
        future: asyncio.Future[Any] = await self.producer.send_batch(batch, topic, partition=partition)
        return future

    async def publish(self, event: Event, topic: Topic | str, key: str | None) -> None:
        """Publish now, outside any transaction (heartbeats, dead letters); traces the send."""
        name = topic.name if isinstance(topic, Topic) else topic
        with telemetry.tracer().start_as_current_span(f"publish {name}", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", name)
            span.set_attribute("messaging.message.id", event.id)
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            traced = event.with_trace(carrier.get("traceparent"), carrier.get("tracestate"))
            await self.send_many([(name, encode(traced, key))])


@dataclass(slots=True)
class _Batch:
    """Rows of the outbox to publish: their ids, and (topic, record) of each, in id order."""

    ids: list[int] = field(default_factory=list)
    items: list[tuple[str, KafkaRecord]] = field(default_factory=list)


class OutboxRelay:
    """Publishes outbox rows in id order, deleting each batch once the broker acknowledged it.

    On PostgreSQL, rows are taken with FOR UPDATE SKIP LOCKED so that replicas share the work.
    While the broker is down the rows wait; the relay retries with backoff.

    The relay hands `units` its `OutboxHandoff`: the units of work of this process leave in it the
    records they wrote, so that a batch reads only the ids, topics and event ids of its rows, takes
    the records it holds, and reads key, value and headers only for the others (rows of another
    process, or left from before a restart). At most `handoff_limit` records are held.
    """

    def __init__(
        self,
        units: UnitOfWorkFactory,
        publisher: Publisher,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 10_000,
        handoff_limit: int = 20_000,
    ) -> None:
        self._units = units
        self._publisher = publisher
        self._poll_seconds = poll_seconds
        # An `IN` of a batch's ids binds one parameter per id: stay under SQLite's and asyncpg's 32,766.
        self._batch_size = min(batch_size, 30_000)
        self._wake = asyncio.Event()
        self._stopping = False
        self.handoff = OutboxHandoff(handoff_limit)
        units.hand_off_to(self.handoff)
        self._next = _Batch()  # SQLite: read with the last delete
        self.published = 0
        self.read_back = 0  # rows whose record was read from the table, not taken from the hand-off
        self.last_error: str | None = None

    def wake(self) -> None:
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publish at most one batch; return how many rows went out.

        On PostgreSQL the rows stay locked (FOR UPDATE SKIP LOCKED) until the broker acknowledged
        them, so that replicas never send the same rows. On SQLite the process has one connection,
        shared with its consumers and its API: holding it while the broker acknowledges would stall
        them, so the rows are read, the connection is released during the send, and the rows are
        deleted after it. A crash in between sends them again: at-least-once, as everywhere. The
        transaction that deletes a batch also reads the next one: a busy process lends the relay its
        connection about once per transaction of its own, and the relay then needs it once per batch.
        """
        async with self._units.sessions() as session:
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                async with session.begin():
                    connection = await session.connection()
                    batch = await self._take(connection, locking=True)
                    if not batch.ids:
                        return 0
                    await self._send(batch)
                    await _delete_outbox_rows(connection, batch.ids)
            else:
                batch, self._next = self._next, _Batch()
                if not batch.ids:
                    async with session.begin():
                        batch = await self._take(await session.connection(), locking=False)
                    if not batch.ids:
                        return 0
                await self._send(batch)
                async with session.begin():
                    connection = await session.connection()
                    await _delete_outbox_rows(connection, batch.ids)
                    # The lowest ids left: rows inserted meanwhile get higher ones (SQLite gives
                    # max(id) + 1, and the rows read here are still in the table).
                    self._next = await self._take(connection, locking=False)
        self.published += len(batch.ids)
        return len(batch.ids)

    async def _take(self, connection: AsyncConnection, *, locking: bool) -> _Batch:
        """The next batch, in id order."""
        table = OutboxEntry.__table__  # type: ignore[attr-defined]
        handoff = self.handoff
        if not handoff:  # nothing held: read every column at once
            query = sa.select(table.c.id, table.c.topic, table.c.key, table.c.value, table.c.headers)
            query = query.order_by(table.c.id).limit(self._batch_size)
            if locking:
                query = query.with_for_update(skip_locked=True)
            rows = (await connection.execute(query)).all()
            self.read_back += len(rows)
            return _Batch(
                [row[0] for row in rows],
                [(row[1], KafkaRecord(row[2], row[3], parse_headers(row[4]))) for row in rows],
            )
        query = sa.select(table.c.id, table.c.topic, table.c.event_id).order_by(table.c.id).limit(self._batch_size)
        if locking:
            query = query.with_for_update(skip_locked=True)
        rows = (await connection.execute(query)).all()
        if not rows:
            if not locking:
                # One connection per SQLite process: no unit of work is between its insert and its
                # commit now, so whatever is held belongs to rows that are gone.
                handoff.clear()
            return _Batch()
        handoff.forget_below(rows[0][0])
        ids: list[int] = []
        items: list[tuple[str, KafkaRecord] | None] = []
        missing: dict[int, int] = {}  # id -> its place in the batch
        for id_, topic, event_id in rows:
            item = handoff.item(id_, topic, event_id)
            if item is None:
                missing[id_] = len(items)
            ids.append(id_)
            items.append(item)
        if missing:
            query = sa.select(table.c.id, table.c.topic, table.c.key, table.c.value, table.c.headers)
            for row in await connection.execute(query.where(_ids_are(table, list(missing)))):
                items[missing.pop(row[0])] = (row[1], KafkaRecord(row[2], row[3], parse_headers(row[4])))
                self.read_back += 1
            # Every row listed above is still there (locked on PostgreSQL; one snapshot on SQLite);
            # one that was not would be left out rather than sent empty.
            if missing:
                kept = [i for i, item in enumerate(items) if item is not None]
                ids, items = [ids[i] for i in kept], [items[i] for i in kept]
        return _Batch(ids, items)  # type: ignore[arg-type]  # no None left

    async def _send(self, batch: _Batch) -> None:
        await self._publisher.send_many(batch.items)
        self.handoff.forget(batch.ids)

    async def drain(self) -> None:
        """Publish until the outbox is empty (raises if the broker is unreachable)."""
        while await self.publish_batch():
            pass

    async def run(self) -> None:
        backoff = self._poll_seconds
        while not self._stopping:
            try:
                await self._publisher.ready.wait()
                sent = await self.publish_batch()
                self.last_error = None
                backoff = self._poll_seconds
                if sent == self._batch_size or self._next.ids:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning(
                    "outbox relay could not publish; will retry",
                    extra={"error": self.last_error, "retry_in_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


@dataclass(frozen=True, slots=True)
class Subscription:
    """A consumer group: the topics it reads and the handlers of the event types it understands.

    `handlers` take one event; `batch_handlers` take every fresh event of their type in a batch
    at once (for services that must go fast: one query per batch, not per event). A type has
    one or the other. Event types it does not know (a newer version, another service's type on
    a shared topic) are acknowledged and counted as `ignored`, never dead-lettered.

    `deduplicated_by_handler` names batch-handled types whose handler itself makes a redelivered
    event a no-op through a unique key (DESIGN.md: "an inbox … or a unique key"): the inbox is
    not written for them, which saves a row per event on the hottest paths. Copies within one
    batch are still dropped here; a redelivered copy reaches the handler, which must ignore it
    (the consumer counts it as `processed`: its `duplicates` cannot see it).
    """

    group: str
    topics: tuple[str, ...]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    deduplicated_by_handler: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        stray = self.deduplicated_by_handler - set(self.batch_handlers)
        if stray:
            raise ValueError(f"deduplicated_by_handler names types without a batch handler: {sorted(stray)}")

    def handles(self, event_type: str) -> bool:
        return event_type in self.handlers or event_type in self.batch_handlers


@dataclass(slots=True)
class _Delivery:
    record: ConsumerRecord[bytes, bytes]
    event: Event | None = None
    error: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    lag: dict[str, int] = field(default_factory=dict)


class EventConsumer:
    """Consumes one subscription: batch, one transaction, inbox, handlers, offsets after commit."""

    def __init__(
        self,
        subscription: Subscription,
        units: UnitOfWorkFactory,
        publisher: Publisher,
        *,
        bootstrap_servers: str,
        client_id: str,
        batch_size: int = 500,
        max_attempts: int = 3,
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int = 10_000,
        commit_timeout: float = 15.0,
    ) -> None:
        self.subscription = subscription
        self._units = units
        self._publisher = publisher
        self._options = client_options(bootstrap_servers, client_id)
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._session_timeout_ms = session_timeout_ms
        self._rebalance_timeout_ms = rebalance_timeout_ms
        self._commit_timeout = commit_timeout
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._stopping = False
        self.stats = ConsumerStats()
        self.started = asyncio.Event()
        self.assigned = asyncio.Event()
        _live_consumers.add(self)

    @property
    def group(self) -> str:
        return self.subscription.group

    async def start(self) -> None:
        """Join the group (returns once partitions are assigned)."""
        consumer = AIOKafkaConsumer(
            *self.subscription.topics,
            **self._options,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_size,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(self._session_timeout_ms // 3, 300),
            rebalance_timeout_ms=self._rebalance_timeout_ms,
            max_poll_interval_ms=600_000,
            max_partition_fetch_bytes=CONSUMER_PARTITION_FETCH_BYTES,
            fetch_max_bytes=CONSUMER_FETCH_BYTES,
            request_timeout_ms=max(self._rebalance_timeout_ms + 10_000, 15_000),
        )
        try:
            await consumer.start()
        except BaseException:
            await _close(consumer)
            raise
        self._consumer = consumer
        self.started.set()

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and leave the group."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("start() the consumer before run()")
        try:
            while not self._stopping:
                batches = await consumer.getmany(timeout_ms=500, max_records=self._batch_size)
                if consumer.assignment():
                    self.assigned.set()
                records = [record for batch in batches.values() for record in batch]
                # Top the batch up with what the fetcher already holds (never waiting): under a
                # backlog one transaction and one offset commit then cover a whole batch.
                while records and len(records) < self._batch_size:
                    more = await consumer.getmany(timeout_ms=0, max_records=self._batch_size - len(records))
                    if not more:
                        break
                    records += [record for batch in more.values() for record in batch]
                if records:
                    await self._process(records)
                    self._update_lag(consumer)
        finally:
            self.started.clear()
            self.assigned.clear()
            self._consumer = None
            await _close(consumer)

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        # highwater comes with fetch responses; Tansu's end_offsets() is wrong for batched writes.
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._positions.get(tp)
            if highwater is not None and position is not None:
                self.stats.lag[f"{tp.topic}/{tp.partition}"] = max(highwater - position, 0)

    async def _process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        deliveries = [self._decode(record) for record in records]
        good = [d for d in deliveries if d.event is not None]
        if good:
            await self._handle_with_retry(good)
        dead = [d for d in deliveries if d.error is not None]
        if dead:
            await self._dead_letter(dead)
        ends: dict[tuple[str, int], int] = {}  # a TopicPartition per partition, not per record
        for record in records:
            where, end = (record.topic, record.partition), record.offset + 1
            if end > ends.get(where, -1):
                ends[where] = end
        offsets = {TopicPartition(topic, partition): end for (topic, partition), end in ends.items()}
        assert self._consumer is not None
        # A commit on a topic the broker forgot (an embedded broker restart) would retry forever.
        await asyncio.wait_for(self._consumer.commit(offsets), self._commit_timeout)
        self._positions.update(offsets)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> _Delivery:
        try:
            return _Delivery(record, event=decode(record.headers, record.key, record.value))
        except EventDecodeError as error:
            _consumed.add(1, {"group": self.group, "topic": record.topic, "outcome": "undecodable"})
            log.warning("undecodable message sent to the dead-letter topic", extra=_where(record, str(error)))
            return _Delivery(record, error=f"undecodable: {error}")

    async def _handle_with_retry(self, deliveries: list[_Delivery]) -> None:
        """The whole batch in one transaction; if a handler fails, each message alone, with retries."""
        backoff = 0.2
        while True:
            try:
                async with self._units() as uow:
                    outcomes = await self._handle(deliveries, uow)
                break
            except INFRASTRUCTURE_ERRORS as error:
                log.warning(
                    "infrastructure error while handling a batch; retrying",
                    extra={"group": self.group, "error": repr(error), "retry_in_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as error:
                log.info(
                    "a handler failed in a batch; handling its %d messages one by one",
                    len(deliveries),
                    extra={"group": self.group, "error": repr(error)},
                )
                for delivery in deliveries:
                    await self._handle_alone(delivery)
                return
        self._count_all(outcomes)

    async def _handle_alone(self, delivery: _Delivery) -> None:
        backoff = 0.2
        while True:
            delivery.attempts += 1
            try:
                async with self._units() as uow:
                    [(_, outcome)] = await self._handle([delivery], uow)
                self._count(delivery, outcome)
                return
            except INFRASTRUCTURE_ERRORS as error:
                delivery.attempts -= 1
                log.warning(
                    "infrastructure error while handling a message; retrying",
                    extra={**_where(delivery.record, repr(error)), "retry_in_s": backoff},
                )
            except Exception as error:
                if delivery.attempts >= self._max_attempts:
                    delivery.error = f"handler failed {delivery.attempts} times: {type(error).__name__}: {error}"
                    log.exception(
                        "message sent to the dead-letter topic", extra=_where(delivery.record, delivery.error)
                    )
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _handle(self, deliveries: list[_Delivery], uow: UnitOfWork) -> list[tuple[_Delivery, str]]:
        """Claim the batch in the inbox, then handle the fresh events.

        Per-event handlers run in offset order; batch handlers run after them, once per type. A
        service that needs order across types keeps those types on per-event handlers.
        """
        subscription = self.subscription
        known = [d for d in deliveries if d.event is not None and subscription.handles(d.event.type)]
        unclaimed = subscription.deduplicated_by_handler
        fresh = await claim_many(
            uow.session, self.group, [d.event for d in known if d.event is not None and d.event.type not in unclaimed]
        )
        fresh.update(d.event.id for d in known if d.event is not None and d.event.type in unclaimed)
        outcomes: list[tuple[_Delivery, str]] = []
        batches: dict[str, list[_Delivery]] = {}
        for delivery in deliveries:
            event = delivery.event
            assert event is not None
            if not subscription.handles(event.type):
                outcomes.append((delivery, "ignored"))
            elif event.id not in fresh:
                outcomes.append((delivery, "duplicate"))
            else:
                fresh.discard(event.id)  # a second copy in the same batch is a duplicate
                outcomes.append((delivery, "processed"))
                if event.type in subscription.batch_handlers:
                    batches.setdefault(event.type, []).append(delivery)
                else:
                    await self._run_handler(subscription.handlers[event.type], delivery, uow)
        for event_type, group in batches.items():
            await self._run_batch_handler(subscription.batch_handlers[event_type], group, uow)
        return outcomes

    async def _run_handler(self, handler: Handler, delivery: _Delivery, uow: UnitOfWork) -> None:
        event, record = delivery.event, delivery.record
        assert event is not None
        token = otel_context.attach(_trace_context(event))
        started = time.perf_counter()
        try:
            with telemetry.tracer().start_as_current_span(f"process {record.topic}", kind=SpanKind.CONSUMER) as span:
                _describe(span, self.group, record, event)
                try:
                    await handler(event, uow)
                except Exception as error:
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    raise
        finally:
            otel_context.detach(token)
            _handler_seconds.record(time.perf_counter() - started, {"group": self.group, "topic": record.topic})

    async def _run_batch_handler(self, handler: BatchHandler, deliveries: list[_Delivery], uow: UnitOfWork) -> None:
        """One span for the batch, linked to the trace of every event in it."""
        events = [d.event for d in deliveries if d.event is not None]
        links = _links(events)
        record = deliveries[0].record
        started = time.perf_counter()
        with telemetry.tracer().start_as_current_span(
            f"process {record.topic} batch", kind=SpanKind.CONSUMER, links=links
        ) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.consumer.group.name", self.group)
            span.set_attribute("messaging.batch.message_count", len(events))
            try:
                await handler(events, uow)
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                raise
            finally:
                _handler_seconds.record(time.perf_counter() - started, {"group": self.group, "topic": record.topic})

    def _count_all(self, outcomes: list[tuple[_Delivery, str]]) -> None:
        """`_count` for a batch: one counter add per topic and outcome, not one per message."""
        tally: dict[tuple[str, str], int] = {}
        for delivery, outcome in outcomes:
            key = (delivery.record.topic, outcome)
            tally[key] = tally.get(key, 0) + 1
        for (topic, outcome), n in tally.items():
            if outcome == "processed":
                self.stats.processed += n
            elif outcome == "duplicate":
                self.stats.duplicates += n
            else:
                self.stats.ignored += n
            _consumed.add(n, {"group": self.group, "topic": topic, "outcome": outcome})

    def _count(self, delivery: _Delivery, outcome: str) -> None:
        self._count_all([(delivery, outcome)])

    async def _dead_letter(self, deliveries: list[_Delivery]) -> None:
        """Send to the group's dead-letter topic and wait for the broker; offsets are committed only after."""
        topic = dead_letter_topic(self.group)
        items = []
        for delivery in deliveries:
            record = delivery.record
            headers = [
                *(record.headers or ()),
                ("dlq_reason", (delivery.error or "").encode()),
                ("dlq_consumer", self.group.encode()),
                ("dlq_original_topic", record.topic.encode()),
                ("dlq_original_partition", str(record.partition).encode()),
                ("dlq_original_offset", str(record.offset).encode()),
                ("dlq_failed_at", utcnow().isoformat().encode()),
            ]
            items.append((topic, KafkaRecord(record.key, record.value or b"", headers)))
        backoff = 0.5
        while True:
            try:
                await self._publisher.send_many(items)
                break
            except INFRASTRUCTURE_ERRORS as error:
                log.warning("dead-letter topic unreachable; retrying", extra={"error": repr(error)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self.stats.dead_lettered += len(deliveries)
        for delivery in deliveries:
            _consumed.add(1, {"group": self.group, "topic": delivery.record.topic, "outcome": "dead_lettered"})


def _ids_are(table: sa.Table, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """`id IN ids`, as a range when the ids are consecutive: the same rows, with two parameters, not one per id."""
    first, last = min(ids), max(ids)
    if last - first + 1 == len(ids):  # distinct integers filling [first, last]: exactly that range
        return table.c.id.between(first, last)
    return table.c.id.in_(ids)


async def _delete_outbox_rows(connection: AsyncConnection, ids: Sequence[int]) -> None:
    table = OutboxEntry.__table__  # type: ignore[attr-defined]
    await connection.execute(sa.delete(table).where(_ids_are(table, ids)))


def _links(events: list[Event]) -> list[Link]:
    """A link to the trace of each event that carries one, in order.

    The context is extracted once per distinct trace context: the events of a batch mostly share
    a handful (the collector gives every record of a read the same one). An event without a
    `traceparent` has no valid span context, so it is not extracted at all.
    """
    links: list[Link] = []
    contexts: dict[tuple[str, str | None], trace.SpanContext | None] = {}
    for event in events:
        if not event.traceparent:
            continue
        where = (event.traceparent, event.tracestate)
        if where in contexts:
            span_context = contexts[where]
        else:
            span_context = trace.get_current_span(_trace_context(event)).get_span_context()
            span_context = contexts[where] = span_context if span_context.is_valid else None
        if span_context is not None:
            links.append(Link(span_context))
    return links


def _trace_context(event: Event) -> otel_context.Context:
    return propagate.extract({"traceparent": event.traceparent or "", "tracestate": event.tracestate or ""})


def _describe(span: trace.Span, group: str, record: ConsumerRecord[bytes, bytes], event: Event) -> None:
    span.set_attribute("messaging.system", "kafka")
    span.set_attribute("messaging.destination.name", record.topic)
    span.set_attribute("messaging.consumer.group.name", group)
    span.set_attribute("messaging.kafka.offset", record.offset)
    span.set_attribute("messaging.destination.partition.id", str(record.partition))
    span.set_attribute("messaging.message.id", event.id)
    span.set_attribute("tarifa.tenant", event.tenant)


async def _close(consumer: AIOKafkaConsumer) -> None:
    """Leave the group and close, tolerating a broker that is already gone.

    Tansu numbers the first generation 0 and aiokafka sends LeaveGroup only for generation > 0,
    so the next member would wait a whole session timeout; pretend generation 1 to leave properly.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and getattr(coordinator, "generation", None) == 0:
        coordinator.generation = 1
    try:
        await consumer.stop()
    except (Exception, asyncio.CancelledError) as error:  # aiokafka's fetcher may raise CancelledError here
        log.debug("consumer closed with %r", error)


def _where(record: ConsumerRecord[bytes, bytes], error: str) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset, "error": error}


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[Topic] = ALL, dead_letter_groups: Iterable[str] = ()
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    wanted = [
        NewTopic(
            t.name,
            num_partitions=t.partitions,
            replication_factor=1,
            topic_configs={"retention.ms": str(t.retention_hours * 3_600_000)},
        )
        for t in topics
    ] + [
        NewTopic(
            dead_letter_topic(group),
            num_partitions=DEAD_LETTER_PARTITIONS,
            replication_factor=1,
            topic_configs={"retention.ms": str(DEAD_LETTER_RETENTION_HOURS * 3_600_000)},
        )
        for group in dead_letter_groups
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tarifa-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                response = await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                return []
            # Some brokers answer a duplicate with error code 36 instead of raising: it is fine.
            failed = [(name, code) for name, code, *_ in response.topic_errors if code not in (0, 36)]
            if failed:
                raise KafkaError(f"could not create topics: {failed}")
        return [t.name for t in missing]
    finally:
        await admin.close()


async def broker_reachable(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """True when a Kafka broker answers a metadata request at `bootstrap_servers`."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="tarifa-probe", request_timeout_ms=int(timeout * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
