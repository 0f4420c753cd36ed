"""A unit of work: one database transaction, and the events it emits through the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.events import Event
from tarifa_common.messaging import outbox_row, stage_many
from tarifa_common.topics import Topic


@dataclass(slots=True)
class UnitOfWork:
    """What a handler gets: the session of the transaction, and `emit` to publish after commit."""

    session: AsyncSession
    emitted: list[Event] = field(default_factory=list)
    _outbox: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, event: Event, topic: Topic | str, key: str | None, *, data: bytes | None = None) -> None:
        """Publish `event` on `topic` if, and only if, this transaction commits.

        `data`: the event's data already serialised with `events.dumps` (a hot path that keeps it).
        """
        self._outbox.append(outbox_row(event, topic.name if isinstance(topic, Topic) else topic, key, data))
        self.emitted.append(event)

    async def flush(self) -> None:
        """Write the emitted events to the outbox now (done for you before the commit)."""
        rows, self._outbox = self._outbox, []
        if rows:
            await stage_many(self.session, rows)

    async def emit_many(self, items: Sequence[tuple[Event, Topic | str, str | None]]) -> None:
        """`emit` for many events at once (written with the rest of the outbox, in one executemany)."""
        for event, topic, key in items:
            self.emit(event, topic, key)


class UnitOfWorkFactory:
    """Opens units of work on one database; wakes the outbox relay after each commit that emitted."""

    def __init__(self, sessions: Callable[[], AsyncSession], on_emitted: Callable[[], None] | None = None) -> None:
        self._sessions = sessions
        self._on_emitted = on_emitted

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[UnitOfWork]:
        async with self._sessions() as session:
            async with session.begin():
                uow = UnitOfWork(session)
                yield uow
                await uow.flush()
            if uow.emitted and self._on_emitted is not None:
                self._on_emitted()

    def sessions(self) -> AsyncSession:
        return self._sessions()
