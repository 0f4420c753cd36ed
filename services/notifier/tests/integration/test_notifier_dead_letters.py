"""The dead-letter watchdog reads real end offsets from the broker and fires when a dlq topic grows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer

from tarifa_common.broker import EmbeddedBroker
from tarifa_common.testing import eventually, unique
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.offsets import dead_letter_ends
from tarifa_notifier.adapters.repository import SqlNotifierStore

pytestmark = pytest.mark.broker
WATCH = handlers.WatchdogSettings(rating_every=timedelta(minutes=5), watch_emails=(), lag_threshold=10_000)


async def test_a_growing_dead_letter_topic_raises_an_alert(
    broker: EmbeddedBroker, units: UnitOfWorkFactory, clock
) -> None:  # type: ignore[no-untyped-def]
    topic = f"dlq.{unique('group')}"
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()

    async def ends_are(count: int) -> dict[str, int]:
        ends = await dead_letter_ends(broker.bootstrap_servers)
        assert ends.get(topic) == count
        return ends

    try:
        await producer.send_and_wait(topic, b"poison")
        first = await eventually(lambda: ends_are(1))
        async with units() as uow:
            await handlers.run_watchdogs(SqlNotifierStore(uow.session), WATCH, clock(), first)
        await producer.send_and_wait(topic, b"poison")
        await producer.send_and_wait(topic, b"poison")
        grown = await eventually(lambda: ends_are(3))
    finally:
        await producer.stop()
    clock.advance(minutes=5)
    async with units() as uow:
        await handlers.run_watchdogs(SqlNotifierStore(uow.session), WATCH, clock(), grown)
    async with units() as uow:
        alert = await SqlNotifierStore(uow.session).get_alert("platform", f"notifier/dead-letters/{topic}")
    assert alert is not None and alert.firing
    assert alert.summary == f"Dead-letter topic {topic} grew by 2 message(s) to 3"
