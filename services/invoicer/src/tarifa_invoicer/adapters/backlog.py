"""How far the invoicer's consumer group has stored `cdr.rated`: committed offsets against the topic's ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tarifa_common import topics
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.checks import BacklogUnavailable

log = logging.getLogger(__name__)
GROUP = "invoicer"
T = TypeVar("T")


class KafkaRatedCallBacklog:
    """The `RatedCallBacklog` port on the broker, read by a consumer outside any group and an admin client.

    The topic's ends are read as the high watermarks of fetch responses, not with ListOffsets
    (`end_offsets()`): the embedded broker (Tansu) answers that one below the real end after
    batched writes. The group's position is what it committed (OffsetFetch, partitions named:
    Tansu cannot decode the "every partition" form); a partition it never committed starts at
    the log's start, where the consumer starts too (`auto_offset_reset="earliest"`).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        group: str = GROUP,
        wait_seconds: float = 60.0,
        client_id: str = "tarifa-invoicer-backlog",
        timeout: float = 10.0,
    ) -> None:
        self.where, self.group, self.wait_seconds = bootstrap_servers, group, wait_seconds
        self._client_id, self._timeout = client_id, timeout
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._partitions: list[TopicPartition] = []
        self._starts: dict[TopicPartition, int] = {}

    @classmethod
    def from_settings(cls, settings: InvoicerSettings) -> KafkaRatedCallBacklog:
        return cls(
            settings.kafka_bootstrap_servers,
            wait_seconds=settings.rated_catch_up_seconds,
            client_id=f"{settings.kafka_client_id}-backlog",
        )

    async def ends(self) -> dict[int, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.where,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=64 * 1024,  # only the high watermark is wanted, not the records
            request_timeout_ms=int(self._timeout * 1000),
        )
        self._consumer = consumer
        await self._bounded(consumer.start(), "connect")
        await self._bounded(consumer.topics(), "read the topics")
        numbers = consumer.partitions_for_topic(topics.CDR_RATED.name)
        if not numbers:
            return {}  # no topic yet: nothing was rated
        self._partitions = [TopicPartition(topics.CDR_RATED.name, n) for n in sorted(numbers)]
        consumer.assign(self._partitions)
        self._starts = await self._bounded(consumer.beginning_offsets(self._partitions), "read the log starts")
        guesses = await self._bounded(consumer.end_offsets(self._partitions), "read the end offsets")
        for tp in self._partitions:
            # Near the end, so the fetch carries little; a guess past the end resets to the start.
            consumer.seek(tp, max(guesses[tp] - 1, self._starts[tp]))
        highwaters = await self._bounded(self._highwaters(consumer), "fetch the high watermarks")
        return {tp.partition: highwaters[tp] for tp in self._partitions}

    async def _highwaters(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        while True:
            await consumer.getmany(*self._partitions, timeout_ms=200)
            known = {tp: consumer.highwater(tp) for tp in self._partitions}
            if all(value is not None for value in known.values()):
                return {tp: int(value) for tp, value in known.items() if value is not None}

    async def stored(self) -> dict[int, int]:
        if not self._partitions:
            return {}
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(
                bootstrap_servers=self.where,
                client_id=self._client_id,
                request_timeout_ms=int(self._timeout * 1000),
            )
            await self._bounded(self._admin.start(), "connect")
        committed = await self._bounded(
            self._admin.list_consumer_group_offsets(self.group, partitions=self._partitions),
            f"read the committed offsets of group {self.group}",
        )
        return {
            tp.partition: max(committed[tp].offset, self._starts[tp]) if tp in committed else self._starts[tp]
            for tp in self._partitions
        }

    async def close(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        for client in (consumer, admin):
            if client is None:
                continue
            try:
                await (client.stop() if isinstance(client, AIOKafkaConsumer) else client.close())
            except (Exception, asyncio.CancelledError) as error:  # a broker already gone
                log.debug("backlog client closed with %r", error)

    async def _bounded(self, step: Awaitable[T], what: str) -> T:
        try:
            return await asyncio.wait_for(step, self._timeout)
        except TimeoutError as error:
            raise BacklogUnavailable(f"could not {what} within {self._timeout:g} s") from error
        except (KafkaError, OSError) as error:
            raise BacklogUnavailable(f"could not {what}: {type(error).__name__}: {error}") from error
