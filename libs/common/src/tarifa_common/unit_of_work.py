"""A unit of work: one database transaction, and the events it emits through the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.events import Event
from tarifa_common.messaging import OutboxHandoff, OutboxMessage, outbox_message, stage_messages
from tarifa_common.topics import Topic


@dataclass(slots=True)
class UnitOfWork:
    """What a handler gets: the session of the transaction, and `emit` to publish after commit."""

    session: AsyncSession
    emitted: list[Event] = field(default_factory=list)
    handoff: OutboxHandoff | None = None
    _outbox: list[OutboxMessage] = field(default_factory=list)
    _held: list[int] = field(default_factory=list)

    def emit(self, event: Event, topic: Topic | str, key: str | None, *, data: bytes | None = None) -> None:
        """Publish `event` on `topic` if, and only if, this transaction commits.

        `data`: the event's data already serialised with `events.dumps` (a hot path that keeps it).
        """
        self._outbox.append(outbox_message(event, topic.name if isinstance(topic, Topic) else topic, key, data))
        self.emitted.append(event)

    async def flush(self) -> None:
        """Write the emitted events to the outbox now (done for you before the commit)."""
        messages, self._outbox = self._outbox, []
        if messages:
            ids = await stage_messages(self.session, messages)
            if self.handoff is not None:
                self._held += self.handoff.hold(ids, messages)

    def withdraw(self) -> None:
        """The transaction did not commit: take back what was handed to the relay."""
        if self.handoff is not None and self._held:
            self.handoff.forget(self._held)
        self._held = []


class UnitOfWorkFactory:
    """Opens units of work on one database; wakes the outbox relay after each commit that emitted.

    A relay built on this factory (`OutboxRelay`) calls `hand_off_to`: from then on every unit of
    work hands it the records it wrote, and it need not read them back from the table.
    """

    def __init__(self, sessions: Callable[[], AsyncSession], on_emitted: Callable[[], None] | None = None) -> None:
        self._sessions = sessions
        self._on_emitted = on_emitted
        self.handoff: OutboxHandoff | None = None

    def hand_off_to(self, handoff: OutboxHandoff) -> None:
        self.handoff = handoff

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[UnitOfWork]:
        async with self._sessions() as session:
            uow = UnitOfWork(session, handoff=self.handoff)
            try:
                async with session.begin():
                    yield uow
                    await uow.flush()
            except BaseException:
                uow.withdraw()  # rolled back, or the commit failed: the rows are not there
                raise
        if uow.emitted and self._on_emitted is not None:
            self._on_emitted()
            await asyncio.sleep(0)

    def sessions(self) -> AsyncSession:
        return self._sessions()
