"""Publisher.send_many on the real embedded broker: keys keep aiokafka's partitions, order and size limits hold."""

from collections.abc import AsyncIterator

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import MessageSizeTooLargeError

from tarifa_common.broker import EmbeddedBroker
from tarifa_common.events import KafkaRecord
from tarifa_common.kafka import MAX_BATCH_BYTES, MAX_REQUEST_BYTES, Publisher, ensure_topics
from tarifa_common.testing import read_records, unique
from tarifa_common.topics import Topic

pytestmark = pytest.mark.broker


@pytest.fixture
async def publisher(broker: EmbeddedBroker) -> AsyncIterator[Publisher]:
    instance = Publisher(broker.bootstrap_servers, "test")
    await instance.start()
    yield instance
    await instance.stop()


async def make_topic(broker: EmbeddedBroker, partitions: int) -> str:
    name = unique("pub")
    await ensure_topics(broker.bootstrap_servers, [Topic(name, "s", partitions, 1, ("t",), "test")])
    return name


async def test_a_key_lands_on_the_partition_aiokafka_send_chooses(broker: EmbeddedBroker, publisher: Publisher) -> None:
    topic = await make_topic(broker, partitions=6)
    keys = [f"pbx-{i}".encode() for i in range(60)]
    by_send = {}
    for key in keys:
        metadata = await publisher.producer.send_and_wait(topic, value=b"by send", key=key)
        by_send[key] = metadata.partition
    assert len(set(by_send.values())) == 6  # the keys spread over every partition

    await publisher.send_many([(topic, KafkaRecord(key, b"by send_many", [("h", b"v")])) for key in keys])

    records = await read_records(broker.bootstrap_servers, topic, 2 * len(keys))
    batched = {r.key: r.partition for r in records if r.value == b"by send_many"}
    assert batched == by_send
    assert all(list(r.headers) == [("h", b"v")] for r in records if r.value == b"by send_many")


async def test_records_keep_their_order_per_key_across_batches(broker: EmbeddedBroker, publisher: Publisher) -> None:
    topic = await make_topic(broker, partitions=3)
    value = b"x" * 1000
    count = 3 * MAX_BATCH_BYTES // len(value)  # several full batches per partition
    items = [(topic, KafkaRecord(f"k-{i % 5}".encode(), b"%d:" % i + value, [])) for i in range(count)]
    items += [(topic, KafkaRecord(None, b"%d:no key" % i, [])) for i in range(count, count + 10)]

    await publisher.send_many(items)

    records = await read_records(broker.bootstrap_servers, topic, len(items))
    assert len(records) == len(items)
    by_partition: dict[int, list[ConsumerRecord[bytes, bytes]]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    for key in {r.key for r in records if r.key is not None}:
        sequence = [
            int(r.value.split(b":")[0])
            for p in sorted(by_partition)
            for r in sorted(by_partition[p], key=lambda r: r.offset)
            if r.key == key and r.value is not None
        ]
        assert sequence == sorted(sequence)
        assert len({r.partition for r in records if r.key == key}) == 1


async def test_a_record_over_the_request_size_is_refused_before_sending(
    broker: EmbeddedBroker, publisher: Publisher
) -> None:
    topic = await make_topic(broker, partitions=1)
    with pytest.raises(MessageSizeTooLargeError, match=topic):
        await publisher.send_many([(topic, KafkaRecord(b"k", b"x" * (MAX_REQUEST_BYTES + 1), []))])
