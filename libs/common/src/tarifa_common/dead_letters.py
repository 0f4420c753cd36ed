"""Replay a consumer group's dead-letter topic into the topics its messages came from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from tarifa_common.events import KafkaRecord
from tarifa_common.kafka import Publisher, client_options
from tarifa_common.topics import dead_letter_topic

DLQ_HEADER_PREFIX = "dlq_"


async def replay(
    bootstrap_servers: str, group: str, *, dry_run: bool = False, report: Callable[[str], Any] = lambda _: None
) -> int:
    """Re-publish every dead letter not replayed before; returns how many. Progress goes to `report`."""
    topic = dead_letter_topic(group)
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap_servers, f"tarifa-dlq-replay-{group}"),
        group_id=f"tarifa-dlq-replay.{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    publisher = Publisher(bootstrap_servers, f"tarifa-dlq-replay-{group}")
    await consumer.start()
    await publisher.start()
    count = 0
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        if not partitions:
            report(f"{topic} does not exist: nothing was dead-lettered by {group}")
            return 0
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        remaining = {tp for tp in partitions if await consumer.position(tp) < end[tp]}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            items: list[tuple[str, KafkaRecord]] = []
            for tp, records in batches.items():
                for record in records:
                    headers = {name: value for name, value in record.headers}
                    original = headers.get("dlq_original_topic", b"").decode()
                    reason = headers.get("dlq_reason", b"").decode(errors="replace")
                    report(f"offset {record.offset}: {original or '?'} ← {reason}")
                    if original:
                        kept = [(n, v) for n, v in record.headers if not n.startswith(DLQ_HEADER_PREFIX)]
                        items.append((original, KafkaRecord(record.key, record.value or b"", kept)))
                    if record.offset + 1 >= end[tp]:
                        remaining.discard(tp)
            if not dry_run and items:
                await publisher.send_many(items)
            count += len(items)
            if not dry_run:
                await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
        return count
    finally:
        await consumer.stop()
        await publisher.stop()
