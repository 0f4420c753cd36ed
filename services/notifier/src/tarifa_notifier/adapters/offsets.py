"""Reads the end offsets of the dead-letter topics (`dlq.*`) with a plain aiokafka client, no group."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from tarifa_common.kafka import client_options


async def dead_letter_ends(bootstrap_servers: str) -> dict[str, int]:
    """Total end offset (messages ever written) of every `dlq.*` topic."""
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap_servers, "tarifa-notifier-dlq-watch"), enable_auto_commit=False
    )
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith("dlq.")]
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        totals: dict[str, int] = dict.fromkeys(topics, 0)
        for tp, end in ends.items():
            totals[tp.topic] += int(end)
        return totals
    finally:
        await consumer.stop()
