"""Delivery over the real embedded broker: nothing lost, nothing doubled, poison set aside."""

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import Link
from sqlalchemy.ext.asyncio import AsyncEngine
from tally import count, record  # from tests/processes, put on sys.path by conftest

from tarifa_common.broker import EmbeddedBroker
from tarifa_common.db import session_factory
from tarifa_common.dead_letters import replay
from tarifa_common.events import Event, KafkaRecord, decode, encode
from tarifa_common.kafka import (
    BatchHandler,
    EventConsumer,
    Handler,
    Publisher,
    Subscription,
    _links,
    _trace_context,
    ensure_topics,
)
from tarifa_common.testing import eventually, read_all, unique
from tarifa_common.topics import Topic, dead_letter_topic
from tarifa_common.unit_of_work import UnitOfWork, UnitOfWorkFactory

PROCESSES = Path(__file__).parent / "processes"

pytestmark = pytest.mark.broker
TYPE = "tarifa.test.happened.v1"


def an_event(tenant: str = "acme", **data: object) -> Event:
    return Event(type=TYPE, source="tarifa/test", tenant=tenant, subject="s-1", data=dict(data))


async def make_topic(broker: EmbeddedBroker, partitions: int = 1) -> str:
    name = unique("t")
    await ensure_topics(broker.bootstrap_servers, [Topic(name, "s", partitions, 1, (TYPE,), "test")])
    return name


@pytest.fixture
async def publisher(broker: EmbeddedBroker) -> AsyncIterator[Publisher]:
    instance = Publisher(broker.bootstrap_servers, "test")
    await instance.start()
    yield instance
    await instance.stop()


RunConsumer = Callable[..., Awaitable[EventConsumer]]


@pytest.fixture
async def run_consumer(broker: EmbeddedBroker, publisher: Publisher) -> AsyncIterator[RunConsumer]:
    """Start EventConsumers in this process; stop them all at the end of the test."""
    running: list[tuple[EventConsumer, asyncio.Task[None]]] = []

    async def start(
        engine: AsyncEngine,
        topic: str,
        group: str,
        handler: Handler = record,
        max_attempts: int = 3,
        batch_handler: BatchHandler | None = None,
    ) -> EventConsumer:
        handlers = {} if batch_handler else {TYPE: handler}
        batch_handlers = {TYPE: batch_handler} if batch_handler else {}
        consumer = EventConsumer(
            Subscription(group=group, topics=(topic,), handlers=handlers, batch_handlers=batch_handlers),
            UnitOfWorkFactory(session_factory(engine)),
            publisher,
            bootstrap_servers=broker.bootstrap_servers,
            client_id=group,
            session_timeout_ms=3000,
            rebalance_timeout_ms=3000,
            max_attempts=max_attempts,
        )
        await consumer.start()
        running.append((consumer, asyncio.create_task(consumer.run())))
        return consumer

    yield start
    for consumer, task in running:
        consumer.stop()
        await asyncio.wait_for(task, 20)


async def test_an_event_from_another_process_arrives_with_its_headers_and_trace(
    broker: EmbeddedBroker, engine: AsyncEngine, run_consumer: RunConsumer
) -> None:
    topic = await make_topic(broker)
    seen: list[tuple[Event, str]] = []

    async def remember(event: Event, uow: UnitOfWork) -> None:
        seen.append((event, format(trace.get_current_span().get_span_context().trace_id, "032x")))

    await run_consumer(engine, topic, unique("g"), handler=remember)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROCESSES / "publish.py"),
        broker.bootstrap_servers,
        topic,
        "acme",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    published = json.loads(stdout)

    async def delivered() -> None:
        assert seen

    await eventually(delivered)
    event, consumer_trace_id = seen[0]
    assert event.id == published["event_id"]
    assert event.tenant == "acme"
    assert event.data == {"note": "from another process"}
    # The consumer's span continues the publisher's trace.
    assert consumer_trace_id == published["trace_id"]
    # And a plain Kafka client sees the CloudEvents binary-mode headers.
    [raw] = await read_all(broker.bootstrap_servers, topic, 1)
    headers = dict(raw.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"].decode() == published["event_id"]
    assert headers["ce_type"] == TYPE.encode()
    assert headers["ce_tenant"] == b"acme"
    assert headers["traceparent"].decode().split("-")[1] == published["trace_id"]


async def test_a_consumer_killed_between_db_commit_and_offset_commit_gets_the_event_again_as_a_no_op(
    broker: EmbeddedBroker, engine: AsyncEngine, database_url: str, publisher: Publisher, run_consumer: RunConsumer
) -> None:
    topic, group = await make_topic(broker), unique("g")
    event = an_event(note="once")
    await publisher.publish(event, topic, key="s-1")

    dying = await asyncio.create_subprocess_exec(
        sys.executable, str(PROCESSES / "consume_and_die.py"), broker.bootstrap_servers, topic, group, database_url
    )
    assert await asyncio.wait_for(dying.wait(), 60) == 3, "the consumer should die right after its DB commit"
    assert await count(engine, event.id) == 1

    consumer = await run_consumer(engine, topic, group)

    async def redelivered() -> None:
        assert consumer.stats.duplicates == 1

    await eventually(redelivered, timeout=40)
    assert consumer.stats.processed == 0
    assert await count(engine, event.id) == 1


async def test_an_undecodable_message_is_dead_lettered_and_does_not_block_its_partition(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher, run_consumer: RunConsumer
) -> None:
    topic, group = await make_topic(broker), unique("g")
    await publisher.send_many([(topic, KafkaRecord(b"s-1", b"\x00garbage from an old PBX", []))])
    good = an_event(note="after the garbage")
    await publisher.publish(good, topic, key="s-1")
    consumer = await run_consumer(engine, topic, group)

    async def handled() -> None:
        assert await count(engine, good.id) == 1

    await eventually(handled)
    [dead] = await read_all(broker.bootstrap_servers, dead_letter_topic(group), 1)
    headers = dict(dead.headers)
    assert dead.value == b"\x00garbage from an old PBX"
    assert headers["dlq_reason"] == b"undecodable: header ce_specversion is missing"
    assert headers["dlq_original_topic"] == topic.encode()
    assert headers["dlq_original_offset"] == b"0"
    assert consumer.stats.dead_lettered == 1


async def test_a_message_whose_handler_keeps_failing_is_dead_lettered_then_replayed_after_the_fix(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher, run_consumer: RunConsumer
) -> None:
    topic, group = await make_topic(broker), unique("g")
    fixed = False
    attempts = 0

    async def picky(event: Event, uow: UnitOfWork) -> None:
        nonlocal attempts
        if event.data.get("poison") and not fixed:
            attempts += 1
            raise ValueError("tariff table has no row for this call")
        await record(event, uow)

    poison, healthy = an_event(poison=True), an_event(note="healthy")
    await publisher.publish(poison, topic, key="s-1")
    await publisher.publish(healthy, topic, key="s-1")
    consumer = await run_consumer(engine, topic, group, handler=picky, max_attempts=2)

    async def settled() -> None:
        assert consumer.stats.dead_lettered == 1
        assert await count(engine, healthy.id) == 1

    await eventually(settled)
    assert attempts == 3  # once in the batch, then twice alone
    assert await count(engine, poison.id) == 0
    [dead] = await read_all(broker.bootstrap_servers, dead_letter_topic(group), 1)
    assert b"handler failed 2 times: ValueError: tariff table has no row" in dict(dead.headers)["dlq_reason"]
    assert decode(dead.headers, dead.key, dead.value).id == poison.id

    fixed = True
    assert await replay(broker.bootstrap_servers, group) == 1

    async def replayed() -> None:
        assert await count(engine, poison.id) == 1

    await eventually(replayed)
    # Replaying again sends nothing: the replay group remembers where it stopped.
    assert await replay(broker.bootstrap_servers, group) == 0


async def test_the_same_event_delivered_twice_is_handled_once(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher, run_consumer: RunConsumer
) -> None:
    topic, group = await make_topic(broker), unique("g")
    event = an_event(note="re-sent")
    record_ = encode(event, "s-1")
    await publisher.send_many([(topic, record_), (topic, record_)])
    consumer = await run_consumer(engine, topic, group)

    async def both_seen() -> None:
        assert consumer.stats.processed + consumer.stats.duplicates == 2

    await eventually(both_seen)
    assert (consumer.stats.processed, consumer.stats.duplicates) == (1, 1)
    assert await count(engine, event.id) == 1


async def test_a_batch_handler_gets_each_fresh_event_once_and_a_failing_batch_falls_back_to_one_by_one(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher, run_consumer: RunConsumer
) -> None:
    topic, group = await make_topic(broker), unique("g")
    calls: list[list[str]] = []

    async def tally_all(events: list[Event], uow: UnitOfWork) -> None:
        calls.append([e.id for e in events])
        if any(e.data.get("poison") for e in events):
            raise ValueError("cannot rate this one")
        for event in events:
            await record(event, uow)

    first, second, poison = an_event(note="1"), an_event(note="2"), an_event(poison=True)
    await publisher.send_many([(topic, encode(e, "s-1")) for e in (first, second, first, poison)])
    consumer = await run_consumer(engine, topic, group, batch_handler=tally_all, max_attempts=1)

    async def settled() -> None:
        assert consumer.stats.dead_lettered == 1
        assert consumer.stats.processed == 2

    await eventually(settled)
    assert consumer.stats.duplicates == 1
    assert await count(engine, first.id) == 1
    assert await count(engine, second.id) == 1
    assert await count(engine, poison.id) == 0
    # The whole batch first (the copy of `first` left out), then each message alone.
    assert calls[0] == [first.id, second.id, poison.id]
    assert [first.id] in calls[1:] and [poison.id] in calls[1:]


async def test_a_type_deduplicated_by_its_handler_writes_no_inbox_row_and_its_handler_sees_redeliveries(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic, group = await make_topic(broker), unique("g")
    seen: list[str] = []

    async def keep_once(events: list[Event], uow: UnitOfWork) -> None:
        for event in events:
            seen.append(event.id)
            kept = await (await uow.session.connection()).execute(
                sa.text("SELECT count(*) FROM test_tally WHERE event_id = :id"), {"id": event.id}
            )
            if kept.scalar_one() == 0:  # the handler's own unique key, as the rater's calls
                await record(event, uow)

    subscription = Subscription(
        group=group, topics=(topic,), batch_handlers={TYPE: keep_once}, deduplicated_by_handler=frozenset({TYPE})
    )
    first, second = an_event(note="1"), an_event(note="2")
    # `first` twice in one batch (dropped before the handler), then again later (reaches the handler).
    await publisher.send_many([(topic, encode(e, "s-1")) for e in (first, second, first)])
    units = UnitOfWorkFactory(session_factory(engine))
    consumer = EventConsumer(
        subscription, units, publisher, bootstrap_servers=broker.bootstrap_servers, client_id=unique("c")
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:

        async def first_batch() -> None:
            assert consumer.stats.processed + consumer.stats.duplicates == 3

        await eventually(first_batch)
        await publisher.send_many([(topic, encode(first, "s-1"))])

        async def redelivered() -> None:
            assert consumer.stats.processed + consumer.stats.duplicates == 4

        await eventually(redelivered)
    finally:
        consumer.stop()
        await task
    assert seen.count(first.id) == 2 and seen.count(second.id) == 1
    assert await count(engine, first.id) == 1 and await count(engine, second.id) == 1
    async with engine.connect() as connection:
        inbox = (
            await connection.execute(
                sa.text("SELECT count(*) FROM tarifa_inbox WHERE consumer = :group"), {"group": group}
            )
        ).scalar_one()
    assert inbox == 0


def test_only_batch_handled_types_may_be_deduplicated_by_their_handler() -> None:
    with pytest.raises(ValueError, match="without a batch handler"):
        Subscription(group="g", topics=("t",), deduplicated_by_handler=frozenset({TYPE}))


@pytest.fixture(scope="module")
def metrics() -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, object], float]]:
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]
    return found


async def test_consumption_is_measured_by_outcome_and_lag_per_partition(
    metrics: InMemoryMetricReader,
    broker: EmbeddedBroker,
    engine: AsyncEngine,
    publisher: Publisher,
    run_consumer: RunConsumer,
) -> None:
    topic, group = await make_topic(broker, partitions=2), unique("g")
    sent = [an_event(note=str(i)) for i in range(7)]
    await publisher.send_many([(topic, encode(e, f"s-{i}")) for i, e in enumerate(sent)])
    consumer = await run_consumer(engine, topic, group)

    async def all_processed() -> None:
        assert consumer.stats.processed == 7

    await eventually(all_processed)
    consumed = [
        value
        for attrs, value in points(metrics, "tarifa.messages.consumed")
        if attrs == {"group": group, "topic": topic, "outcome": "processed"}
    ]
    assert consumed == [7]
    lags = {
        attrs["partition"]: value for attrs, value in points(metrics, "tarifa.consumer.lag") if attrs["group"] == group
    }
    assert set(lags) <= {f"{topic}/0", f"{topic}/1"} and lags
    assert all(value == 0 for value in lags.values())


def test_a_batch_span_links_the_trace_of_every_event_that_carries_a_valid_one_in_order() -> None:
    first = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    second = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parents = [first, None, first, "not a traceparent", second, first, ""]
    events = [
        Event(type="tarifa.test.happened.v1", source="tarifa/test", tenant="acme", data={}, traceparent=parent)
        for parent in parents
    ]
    expected = [
        Link(context)
        for e in events
        if (context := trace.get_current_span(_trace_context(e)).get_span_context()).is_valid
    ]
    links = _links(events)
    assert [link.context for link in links] == [link.context for link in expected]
    assert [format(link.context.trace_id, "032x") for link in links] == [
        first[3:35],
        first[3:35],
        second[3:35],
        first[3:35],
    ]
