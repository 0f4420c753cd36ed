"""The outbox and its relay on the real broker, SQLite and PostgreSQL: order, hand-off, nothing lost or doubled."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from tally import create_tables  # from tests/processes, put on sys.path by conftest

from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.db import make_engine, session_factory
from tarifa_common.events import Event, decode, dumps, encode, utcnow
from tarifa_common.kafka import OutboxRelay, Publisher, ensure_topics
from tarifa_common.messaging import (
    OutboxEntry,
    headers_text,
    outbox_message,
    parse_headers,
    stage_messages,
)
from tarifa_common.testing import read_all, unique
from tarifa_common.topics import Topic
from tarifa_common.unit_of_work import UnitOfWorkFactory

pytestmark = pytest.mark.broker
TYPE = "tarifa.test.happened.v1"


def events(n: int, note: str) -> list[Event]:
    return [
        Event(type=TYPE, source="tarifa/test", tenant="acme", subject=f"s-{i}", data={"note": note, "n": i})
        for i in range(n)
    ]


async def make_topic(broker: EmbeddedBroker) -> str:
    name = unique("outbox")
    await ensure_topics(broker.bootstrap_servers, [Topic(name, "s", 1, 1, (TYPE,), "test")])
    return name


@pytest.fixture
async def publisher(broker: EmbeddedBroker) -> AsyncIterator[Publisher]:
    instance = Publisher(broker.bootstrap_servers, "test")
    await instance.start()
    yield instance
    await instance.stop()


async def emit(units: UnitOfWorkFactory, batch: list[Event], topic: str) -> None:
    async with units() as uow:
        for event in batch:
            uow.emit(event, topic, event.subject)


async def outbox_ids(engine: AsyncEngine) -> list[tuple[int, str]]:
    async with engine.connect() as connection:
        table = OutboxEntry.__table__  # type: ignore[attr-defined]
        rows = await connection.execute(sa.select(table.c.id, table.c.event_id).order_by(table.c.id))
        return [(row[0], row[1]) for row in rows]


async def test_staged_rows_get_the_ids_returned_in_the_order_of_the_messages(engine: AsyncEngine) -> None:
    units = UnitOfWorkFactory(session_factory(engine))
    first, second = events(3, "first"), events(4, "second")
    async with units() as uow:
        for event in first:
            uow.emit(event, "t", event.subject)
        await uow.flush()
        for event in second:
            uow.emit(event, "t", event.subject)
    rows = await outbox_ids(engine)
    assert [event_id for _, event_id in rows] == [e.id for e in first + second]
    # And the ids stage_messages returns are those rows' ids, message by message.
    third = events(5, "third")
    async with units() as uow:
        ids = await stage_messages(uow.session, [outbox_message(e, "t", e.subject) for e in third])
    assert [(id_, e.id) for id_, e in zip(ids, third, strict=True)] == (await outbox_ids(engine))[-5:]


async def test_the_relay_publishes_in_id_order_rows_it_holds_and_rows_it_must_read(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic = await make_topic(broker)
    elsewhere = UnitOfWorkFactory(session_factory(engine))  # another process: hands nothing to this relay
    here = UnitOfWorkFactory(session_factory(engine))
    relay = OutboxRelay(here, publisher, batch_size=7)
    a, b, c, d = events(5, "a"), events(6, "b"), events(4, "c"), events(3, "d")
    await emit(elsewhere, a, topic)
    await emit(here, b, topic)
    await emit(elsewhere, c, topic)
    await emit(here, d, topic)
    assert len(relay.handoff) == len(b) + len(d)

    await relay.drain()

    records = await read_all(broker.bootstrap_servers, topic, 18)
    sent = [decode(r.headers, r.key, r.value) for r in records]
    assert [e.id for e in sent] == [e.id for e in a + b + c + d]
    assert [(e.subject, e.data) for e in sent] == [(e.subject, e.data) for e in a + b + c + d]
    assert [r.key for r in records] == [e.subject.encode() for e in a + b + c + d if e.subject]
    assert relay.published == 18
    assert relay.read_back == len(a) + len(c)  # the others came from the hand-off
    assert len(relay.handoff) == 0
    assert await outbox_ids(engine) == []


async def test_rows_committed_between_two_batches_are_published_after_those_already_read(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic = await make_topic(broker)
    units = UnitOfWorkFactory(session_factory(engine))
    relay = OutboxRelay(units, publisher, batch_size=4)
    a, b, c = events(6, "a"), events(5, "b"), events(3, "c")
    await emit(units, a, topic)
    assert await relay.publish_batch() == 4  # on SQLite the next batch (a's last two) is read with the delete
    await emit(units, b, topic)
    await emit(UnitOfWorkFactory(session_factory(engine)), c, topic)
    await relay.drain()
    records = await read_all(broker.bootstrap_servers, topic, 15, timeout=3)
    assert [decode(r.headers, r.key, r.value).id for r in records] == [e.id for e in a + b + c]
    assert (relay.published, relay.read_back) == (14, 3)


async def test_a_rolled_back_unit_of_work_hands_off_nothing_and_publishes_nothing(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic = await make_topic(broker)
    units = UnitOfWorkFactory(session_factory(engine))
    relay = OutboxRelay(units, publisher)
    with pytest.raises(RuntimeError):
        async with units() as uow:
            for event in events(3, "rolled back"):
                uow.emit(event, topic, event.subject)
            await uow.flush()
            assert len(relay.handoff) == 3  # held as soon as inserted...
            raise RuntimeError("the change failed")
    assert len(relay.handoff) == 0  # ...and withdrawn with the transaction
    assert await outbox_ids(engine) == []
    kept = events(1, "committed")
    await emit(units, kept, topic)
    await relay.drain()
    [record] = await read_all(broker.bootstrap_servers, topic, 2, timeout=3)
    assert decode(record.headers, record.key, record.value).id == kept[0].id
    assert relay.published == 1


async def test_rows_whose_hand_off_was_lost_are_published_from_the_table_once(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic = await make_topic(broker)
    before = UnitOfWorkFactory(session_factory(engine))
    crashed = OutboxRelay(before, publisher)  # held the records, never published them
    batch = events(12, "before the restart")
    await emit(before, batch, topic)
    assert len(crashed.handoff) == 12

    restarted = OutboxRelay(UnitOfWorkFactory(session_factory(engine)), publisher, batch_size=5)
    await restarted.drain()
    assert (restarted.published, restarted.read_back) == (12, 12)
    # The old relay's entries are of rows that are gone: it sends nothing again.
    await crashed.drain()
    assert crashed.published == 0

    records = await read_all(broker.bootstrap_servers, topic, 13, timeout=3)
    assert [decode(r.headers, r.key, r.value).id for r in records] == [e.id for e in batch]
    assert [list(r.headers) for r in records] == [encode(e, e.subject).headers for e in batch]


async def test_a_row_written_in_the_old_json_form_is_published_with_its_headers(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic = await make_topic(broker)
    [event] = events(1, "written before the upgrade")
    record = encode(event, "s-0")
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(OutboxEntry.__table__),  # type: ignore[attr-defined]
            [
                {
                    "topic": topic,
                    "event_id": event.id,
                    "key": record.key,
                    "value": record.value,
                    "headers": json.dumps([[n, v.decode()] for n, v in record.headers]),
                    "created_at": utcnow(),
                }
            ],
        )
    relay = OutboxRelay(UnitOfWorkFactory(session_factory(engine)), publisher)
    await relay.drain()
    [sent] = await read_all(broker.bootstrap_servers, topic, 1)
    assert list(sent.headers) == record.headers
    assert (sent.key, sent.value) == (record.key, record.value)


async def test_while_the_broker_is_down_rows_and_hand_off_wait_then_all_go_once_in_order(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    down = EmbeddedBroker(free_port(), log_file=tmp_path / "broker.log")
    publisher = Publisher(down.bootstrap_servers, "test")  # not connected: every send fails
    units = UnitOfWorkFactory(session_factory(engine))
    relay = OutboxRelay(units, publisher, batch_size=4)
    first, second = events(6, "first"), events(5, "second")
    await emit(units, first, "waiting")
    with pytest.raises(ConnectionError):
        await relay.publish_batch()
    await emit(units, second, "waiting")
    with pytest.raises(ConnectionError):
        await relay.publish_batch()
    assert [event_id for _, event_id in await outbox_ids(engine)] == [e.id for e in first + second]
    assert len(relay.handoff) == 11

    await down.start()
    try:
        await ensure_topics(down.bootstrap_servers, [Topic("waiting", "s", 1, 1, (TYPE,), "test")])
        await publisher.start()
        await relay.drain()
        records = await read_all(down.bootstrap_servers, "waiting", 12, timeout=3)
        assert [decode(r.headers, r.key, r.value).id for r in records] == [e.id for e in first + second]
        assert (relay.published, relay.read_back) == (11, 0)
        assert await outbox_ids(engine) == []
    finally:
        await publisher.stop()
        await down.stop()


async def test_the_hand_off_stays_bounded_and_the_rest_is_read_from_the_table(
    broker: EmbeddedBroker, engine: AsyncEngine, publisher: Publisher
) -> None:
    topic = await make_topic(broker)
    units = UnitOfWorkFactory(session_factory(engine))
    relay = OutboxRelay(units, publisher, batch_size=3, handoff_limit=5)
    batches = [events(4, f"batch {i}") for i in range(3)]
    for batch in batches:
        await emit(units, batch, topic)
        assert len(relay.handoff) <= 5
    assert len(relay.handoff) == 5
    await relay.drain()
    everything = [e for batch in batches for e in batch]
    records = await read_all(broker.bootstrap_servers, topic, 13, timeout=3)
    assert [decode(r.headers, r.key, r.value).id for r in records] == [e.id for e in everything]
    assert (relay.published, relay.read_back) == (12, 7)
    assert len(relay.handoff) == 0


@pytest.mark.postgres
async def test_two_relays_on_postgresql_never_send_the_same_row(
    broker: EmbeddedBroker, database_url: str, publisher: Publisher
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share an outbox on PostgreSQL only")
    topic = await make_topic(broker)
    engines = [make_engine(database_url), make_engine(database_url)]
    try:
        await create_tables(engines[0])
        replicas = [UnitOfWorkFactory(session_factory(e)) for e in engines]
        relays = [OutboxRelay(units, publisher, batch_size=10) for units in replicas]
        written: list[Event] = []
        for i in range(20):
            batch = events(10, f"uow {i}")
            await emit(replicas[i % 2], batch, topic)
            written += batch
        await asyncio.gather(*(relay.drain() for relay in relays))
        assert sum(relay.published for relay in relays) == 200
        records = await read_all(broker.bootstrap_servers, topic, 201, timeout=3)
        assert sorted(decode(r.headers, r.key, r.value).id for r in records) == sorted(e.id for e in written)
        assert await outbox_ids(engines[0]) == []
    finally:
        for e in engines:
            await e.dispose()


def test_headers_are_written_in_the_cheap_form_and_read_back_in_either_form() -> None:
    [event] = events(1, "headers")
    headers = encode(event.with_trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), "k").headers
    text = headers_text(headers)
    assert not text.startswith("[")
    assert parse_headers(text) == headers
    assert parse_headers(json.dumps([[n, v.decode()] for n, v in headers])) == headers
    assert parse_headers(headers_text([])) == []


@pytest.mark.parametrize("value", ["a\x1fb", "nul\x00inside", "ünïcode ☎"])
def test_a_header_the_cheap_form_cannot_hold_is_written_as_json_and_read_back(value: str) -> None:
    headers = [("ce_subject", value.encode()), ("ce_id", b"1")]
    text = headers_text(headers)
    assert "\x00" not in text  # PostgreSQL's text refuses NUL
    assert parse_headers(text) == headers


_HEADER_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)


@given(
    source=_HEADER_TEXT.filter(bool),
    tenant=_HEADER_TEXT.filter(bool),
    event_id=_HEADER_TEXT.filter(bool),
    subject=st.none() | _HEADER_TEXT,
    traceparent=st.none() | _HEADER_TEXT,
    tracestate=st.none() | _HEADER_TEXT,
    offset_minutes=st.sampled_from([0, 90, -300]),
)
def test_an_outbox_message_carries_the_record_encode_writes_and_the_header_text_of_its_headers(
    source: str,
    tenant: str,
    event_id: str,
    subject: str | None,
    traceparent: str | None,
    tracestate: str | None,
    offset_minutes: int,
) -> None:
    event = Event(
        type="tarifa.bench.happened.v1",
        source=source,
        tenant=tenant,
        subject=subject,
        id=event_id,
        time=datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=timezone(timedelta(minutes=offset_minutes))),
        data={"n": 1},
        traceparent=traceparent,
        tracestate=tracestate,
    )
    for data in (None, dumps(event.data)):
        message = outbox_message(event, "t", subject, data)
        assert message.item == ("t", encode(event, subject))
        assert message.headers_column == headers_text(message.record.headers)
        assert parse_headers(message.headers_column) == message.record.headers
