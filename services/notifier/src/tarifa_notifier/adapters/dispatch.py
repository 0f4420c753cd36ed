"""Delivers the notification log: claim pending rows, send with retries, record the outcome.

Intent, then outcome: a row is written `pending` with the decision that made it (flush or
event handler). Delivery marks it `sending` and counts the attempt in one committed
transaction, sends, then marks it `sent` (or `pending` again with a later `next_attempt_at`,
or `failed` after the last round) in another. A restart therefore never drops a message and
never re-sends one that is `sent`. The only window is a crash during the network call itself
(the row stays `sending`): on start-up such rows go back to `pending` and are sent again with
the same Message-ID / Idempotency-Key, which mail clients and HTTP gateways use to drop the
copy; over SMPP a copy may arrive (SMPP has no idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    ) -> None:
        self.units = units
        self.email = email
        self.sms = dict(sms)
        self.default_sms_provider = default_sms_provider
        self.policy = policy
        self.batch_size = batch_size
        self._gate = asyncio.Semaphore(concurrency)

    async def recover(self) -> int:
        """After a restart: rows left `sending` by a crash mid-send go back to `pending`."""
        async with self.units() as uow:
            result = await uow.session.exec(
                update(NotificationRow).where(col(NotificationRow.status) == "sending").values(status="pending")
            )
            return int(result.rowcount or 0)

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
        async with self.units() as uow:
            statement = (
                select(NotificationRow)
                .where(col(NotificationRow.status) == "pending", col(NotificationRow.next_attempt_at) <= now)
                .order_by(col(NotificationRow.id))
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = (await uow.session.exec(statement)).all()
            files = await self._attachments(uow.session, {r.attachment_id for r in rows if r.attachment_id})
            claimed = []
            for row in rows:
                row.status = "sending"
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
