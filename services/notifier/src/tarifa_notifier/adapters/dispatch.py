"""Delivers the notification log: claim pending rows, send with retries, record the outcome.

Intent, then outcome: a row is written `pending` with the decision that made it (flush or
event handler). Delivery marks it `sending` and counts the attempt in one committed
transaction, sends, then marks it `sent` (or `pending` again with a later `next_attempt_at`,
or `failed` after the last round) in another. A restart therefore never drops a message and
never re-sends one that is `sent`. The only window is a crash during the network call itself
(the row stays `sending`): once its claim expires (`claimed_until`), any replica claims it again
and sends it with the same Message-ID / Idempotency-Key, which mail clients and HTTP gateways use
to drop the copy; over SMPP a copy may arrive (SMPP has no idempotency key).

Replicas share the queue: a claim takes rows with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so two
replicas never claim the same row, and stamps them with the claimer and an expiry, so a replica
that restarts leaves the rows another replica is sending alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential

from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier.adapters.channels import DeliveryFailed, OutgoingMessage, Sender
from tarifa_notifier.adapters.tables import AttachmentRow, NotificationRow, TenantSettingsRow
from tarifa_notifier.domain.reports import Attachment

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts_per_round: int = 3  # tenacity attempts inside one delivery round
    wait_seconds: float = 1.0  # first wait between those attempts, doubling
    rounds: int = 10  # rounds before a message is marked failed
    round_backoff: timedelta = timedelta(seconds=30)  # wait between rounds, doubling


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    tenant: str
    channel: str
    message: OutgoingMessage
    attempts: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    id: int
    provider: str
    attempts: int
    reference: str | None
    error: str | None


class Dispatcher:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        email: Sender | None,
        sms: Mapping[str, Sender],
        default_sms_provider: str,
        policy: RetryPolicy,
        *,
        batch_size: int = 200,
        concurrency: int = 20,
        instance: str = "",
        claim_for: timedelta = timedelta(minutes=2),
    ) -> None:
        self.units = units
        self.email = email
        self.sms = dict(sms)
        self.default_sms_provider = default_sms_provider
        self.policy = policy
        self.batch_size = batch_size
        self.instance = instance
        self.claim_for = claim_for
        self._gate = asyncio.Semaphore(concurrency)

    async def recover(self, now: datetime | None = None) -> int:
        """After a restart: rows left `sending` whose claim has expired go back to `pending`.

        A claim that has not expired belongs to a replica that may be sending right now: left alone.
        (`_claim` takes expired claims too; this only makes them visible as `pending` at once.)
        """
        now = now or datetime.now(UTC)
        async with self.units() as uow:
            result = await uow.session.exec(
                update(NotificationRow)
                .where(col(NotificationRow.status) == "sending", self._claim_expired(now))
                .values(status="pending", claimed_by=None, claimed_until=None)
            )
            return int(result.rowcount or 0)

    @staticmethod
    def _claim_expired(now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(col(NotificationRow.claimed_until).is_(None), col(NotificationRow.claimed_until) < now)

    async def dispatch_once(self, now: datetime) -> int:
        """Send what is due at `now`; returns how many rows were handled."""
        claimed = await self._claim(now)
        if not claimed:
            return 0
        providers = await self._sms_providers({c.tenant for c in claimed if c.channel == "sms"})
        outcomes = await asyncio.gather(*(self._deliver(c, providers) for c in claimed))
        await self._record(outcomes, now)
        return len(outcomes)

    async def _claim(self, now: datetime) -> list[_Claimed]:
        """Mark due rows `sending` under a claim of this replica; rows another replica claimed are skipped.

        The claim is one UPDATE of the first claimable rows, stamped with a token of its own, then
        a read of the rows that carry the token: atomic on SQLite too, where a SELECT takes no row
        lock. On PostgreSQL the candidates are read first `FOR UPDATE SKIP LOCKED`, the usual
        queue pattern, so two replicas take different rows rather than queueing behind each other.
        """
        claimable = sa.or_(
            sa.and_(col(NotificationRow.status) == "pending", col(NotificationRow.next_attempt_at) <= now),
            # a replica that died mid-send: its claim expired, the row is anyone's again
            sa.and_(col(NotificationRow.status) == "sending", self._claim_expired(now)),
        )
        token = f"{self.instance}/{uuid.uuid4().hex[:8]}"
        async with self.units() as uow:
            candidates = (
                select(NotificationRow.id)
                .where(claimable)
                .order_by(col(NotificationRow.id))
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            bind = uow.session.bind
            if bind is not None and bind.dialect.name == "postgresql":
                # The candidates are locked as they are read; another replica skips them.
                chosen: Any = list((await uow.session.exec(candidates)).all())
            else:
                # SQLite has no row locks: choose the candidates inside the UPDATE, under the write
                # lock, so a replica waiting for the lock then picks the next rows, not the same.
                chosen = candidates.scalar_subquery()
            result = await uow.session.exec(
                update(NotificationRow)
                .where(col(NotificationRow.id).in_(chosen), claimable)
                .values(status="sending", claimed_by=token, claimed_until=now + self.claim_for)
            )
            if not result.rowcount:
                return []
            rows = (
                await uow.session.exec(
                    select(NotificationRow)
                    .where(col(NotificationRow.claimed_by) == token)
                    .order_by(col(NotificationRow.id))
                    .execution_options(populate_existing=True)
                )
            ).all()
            files = await self._attachments(uow.session, {r.attachment_id for r in rows if r.attachment_id})
            claimed = []
            for row in rows:
                assert row.id is not None
                claimed.append(
                    _Claimed(
                        row.id,
                        row.tenant,
                        row.channel,
                        OutgoingMessage(
                            str(row.id),
                            row.address,
                            row.subject,
                            row.body,
                            (files[row.attachment_id],) if row.attachment_id else (),
                        ),
                        row.attempts,
                    )
                )
            return claimed

    async def _attachments(self, session: AsyncSession, ids: set[str]) -> dict[str, Attachment]:
        if not ids:
            return {}
        rows = (await session.exec(select(AttachmentRow).where(col(AttachmentRow.id).in_(ids)))).all()
        return {r.id: Attachment(r.filename, r.media_type, r.content) for r in rows}

    async def _sms_providers(self, tenants: set[str]) -> dict[str, str]:
        if not tenants:
            return {}
        async with self.units() as uow:
            rows = (
                await uow.session.exec(select(TenantSettingsRow).where(col(TenantSettingsRow.tenant).in_(tenants)))
            ).all()
            return {r.tenant: r.sms_provider for r in rows}

    def _sender(self, claimed: _Claimed, providers: Mapping[str, str]) -> Sender | None:
        if claimed.channel == "email":
            return self.email
        return self.sms.get(providers.get(claimed.tenant, self.default_sms_provider))

    async def _deliver(self, claimed: _Claimed, providers: Mapping[str, str]) -> _Outcome:
        sender = self._sender(claimed, providers)
        if sender is None:
            return _Outcome(claimed.id, "none", 0, None, f"no {claimed.channel} provider is configured")
        tries = 0

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "notification %s via %s failed (attempt %d), retrying: %s",
                claimed.id,
                sender.name,
                state.attempt_number,
                error,
            )

        async with self._gate:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.policy.attempts_per_round),
                    wait=wait_exponential(multiplier=self.policy.wait_seconds, max=30),
                    retry=retry_if_exception_type(DeliveryFailed),
                    before_sleep=before_sleep,
                    reraise=True,
                ):
                    with attempt:
                        tries += 1
                        reference = await sender.send(claimed.message)
            except DeliveryFailed as error:
                return _Outcome(claimed.id, sender.name, tries, None, str(error))
        log.info("notification %s sent via %s to %s", claimed.id, sender.name, claimed.message.address)
        return _Outcome(claimed.id, sender.name, tries, reference, None)

    async def _record(self, outcomes: list[_Outcome], now: datetime) -> None:
        async with self.units() as uow:
            for outcome in outcomes:
                row = await uow.session.get(NotificationRow, outcome.id)
                if row is None:
                    continue
                row.attempts += outcome.attempts
                row.provider = outcome.provider
                rounds = self._rounds(row.attempts)
                row.claimed_by = row.claimed_until = None
                if outcome.error is None:
                    row.status, row.sent_at, row.last_error = "sent", now, None
                elif rounds >= self.policy.rounds:
                    row.status, row.last_error = "failed", outcome.error
                    log.error(
                        "notification %s failed for good after %d attempts: %s", row.id, row.attempts, outcome.error
                    )
                else:
                    row.status, row.last_error = "pending", outcome.error
                    row.next_attempt_at = now + self.policy.round_backoff * (2 ** max(rounds - 1, 0))
                    log.warning("notification %s will be retried at %s: %s", row.id, row.next_attempt_at, outcome.error)

    def _rounds(self, attempts: int) -> int:
        return -(-attempts // max(self.policy.attempts_per_round, 1))


async def set_sms_provider(session: AsyncSession, tenant: str, provider: str) -> None:
    row = await session.get(TenantSettingsRow, tenant)
    if row is None:
        session.add(TenantSettingsRow(tenant=tenant, sms_provider=provider))
    else:
        row.sms_provider = provider


Clock = Callable[[], datetime]
