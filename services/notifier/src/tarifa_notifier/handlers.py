"""One async function per command or event; each works through a `NotifierStore` inside one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tarifa_common import contracts
from tarifa_common.alerts import AlertObject, AlertRaised, AlertResolved, Severity, SourceKind
from tarifa_notifier.domain.alerts import (
    Alert,
    AlertGroup,
    Channel,
    Flush,
    GroupPolicy,
    Recipient,
    Silence,
    deliveries_for,
    plan_flush,
    render,
)
from tarifa_notifier.domain.watchdogs import (
    ConsumerSample,
    DeadLetterWatch,
    RatingWatch,
    ServiceBeat,
    Verdict,
    heartbeat_verdicts,
    lag_verdicts,
)

PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class NotificationDraft:
    """A decided message, written to the notification log in the transaction that decided it."""

    tenant: str
    dedup_key: str
    group_key: str
    kind: str
    channel: Channel
    address: str
    recipient_id: str | None
    subject: str
    body: str
    created_at: datetime


class NotifierStore(Protocol):
    """What the handlers need from the database (the adapter is `SqlNotifierStore`)."""

    async def get_alert(self, tenant: str, fingerprint: str) -> Alert | None: ...
    async def save_alert(self, alert: Alert) -> None: ...
    async def get_group(self, tenant: str, key: str) -> AlertGroup: ...
    async def save_group(self, group: AlertGroup) -> None: ...
    async def active_groups(self) -> list[AlertGroup]: ...
    async def alerts_of_group(self, tenant: str, key: str) -> list[Alert]: ...
    async def firing_alerts(self, tenant: str) -> list[Alert]: ...
    async def active_silences(self, tenant: str, now: datetime) -> list[Silence]: ...
    async def responsible_recipients(self, tenant: str, object_kind: str, object_id: str) -> list[Recipient]: ...
    async def add_notifications(self, drafts: Sequence[NotificationDraft]) -> int: ...
    async def record_heartbeat(self, beat: ServiceBeat) -> None: ...
    async def heartbeats(self) -> list[ServiceBeat]: ...
    async def load_watch(self, name: str) -> dict[str, Any] | None: ...
    async def save_watch(self, name: str, data: dict[str, Any]) -> None: ...


# --- alerts in ------------------------------------------------------------------------------------


async def raise_alert(store: NotifierStore, tenant: str, raised: AlertRaised, now: datetime, **extra: Any) -> Alert:
    """Record a raised alert; one with a known fingerprint updates the existing alert (dedup)."""
    alert = await store.get_alert(tenant, raised.fingerprint)
    starts_episode = False
    if alert is None:
        alert = Alert(
            tenant=tenant,
            fingerprint=raised.fingerprint,
            severity=raised.severity,
            source_kind=raised.source_kind,
            object_kind=raised.object.kind,
            object_id=raised.object.id,
            summary=raised.summary,
            details=dict(raised.details),
            starts_at=now,
            updated_at=now,
            **extra,
        )
        starts_episode = True
    else:
        starts_episode = alert.raise_again(raised.severity, raised.summary, dict(raised.details), now)
    await store.save_alert(alert)
    if starts_episode:
        group = await store.get_group(tenant, alert.group_key)
        group.touch(now)
        await store.save_group(group)
    return alert


async def resolve_alert(store: NotifierStore, tenant: str, resolved: AlertResolved, now: datetime) -> Alert | None:
    """End an alert; unknown fingerprints and repeated resolutions change nothing."""
    alert = await store.get_alert(tenant, resolved.fingerprint)
    if alert is None or not alert.resolve(now):
        return alert
    await store.save_alert(alert)
    return alert


async def acknowledge_alert(store: NotifierStore, alert: Alert, who: str, now: datetime) -> Alert:
    alert.acknowledge(who, now)
    await store.save_alert(alert)
    return alert


# --- the Alertmanager loop: decide messages --------------------------------------------------------


async def flush_groups(
    store: NotifierStore, policy: GroupPolicy, now: datetime, extra_emails: Sequence[str] = ()
) -> list[Flush]:
    """Decide every group's message that is due and write it to the notification log, in one transaction.

    The decision (the group's new state) and the messages it implies commit together: a crash
    before the commit decides again after the restart; after it, the log holds the messages.
    """
    flushes: list[Flush] = []
    silences: dict[str, list[Silence]] = {}
    firing: dict[str, list[Alert]] = {}
    for group in await store.active_groups():
        if group.tenant not in silences:
            silences[group.tenant] = await store.active_silences(group.tenant, now)
            firing[group.tenant] = await store.firing_alerts(group.tenant)
        alerts = await store.alerts_of_group(group.tenant, group.key)
        flush = plan_flush(group, alerts, silences[group.tenant], firing[group.tenant], policy, now)
        await store.save_group(group)
        if flush is None:
            continue
        flushes.append(flush)
        first = (flush.firing or flush.resolved)[0]
        recipients = await store.responsible_recipients(flush.tenant, first.object_kind, first.object_id)
        extras = {e for a in (*flush.firing, *flush.resolved) for e in a.extra_emails}
        drafts = []
        for delivery in deliveries_for(flush.severity, recipients, sorted(extras)):
            subject, body = render(flush, delivery.channel)
            drafts.append(
                NotificationDraft(
                    tenant=flush.tenant,
                    dedup_key=f"{flush.tenant}|{flush.group_key}|{now.isoformat()}|{delivery.channel}|{delivery.address}",
                    group_key=flush.group_key,
                    kind=f"alert.{flush.kind}",
                    channel=delivery.channel,
                    address=delivery.address,
                    recipient_id=delivery.recipient_id,
                    subject=subject,
                    body=body,
                    created_at=now,
                )
            )
        await store.add_notifications(drafts)
    return flushes


# --- watchdogs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    rating_every: timedelta
    watch_emails: tuple[str, ...]
    lag_threshold: int
    heartbeat_misses: int = 3
    severity: Severity = Severity.IMPORTANT


async def record_heartbeat(store: NotifierStore, data: dict[str, Any], seen_at: datetime) -> None:
    consumers = {
        group: ConsumerSample(int(s.get("processed", 0)), int(s.get("lag", 0)), int(s.get("dead_lettered", 0)))
        for group, s in (data.get("consumers") or {}).items()
        if isinstance(s, dict)
    }
    await store.record_heartbeat(
        ServiceBeat(
            service=str(data["service"]),
            instance=str(data.get("instance", "")),
            seen_at=seen_at,
            interval_seconds=float(data.get("interval_seconds", 10.0)),
            consumers=consumers,
        )
    )


async def _apply_verdict(store: NotifierStore, verdict: Verdict, settings: WatchdogSettings, now: datetime) -> None:
    if verdict.firing:
        await raise_alert(
            store,
            PLATFORM,
            AlertRaised(
                fingerprint=verdict.fingerprint,
                severity=settings.severity,
                source_kind=SourceKind.AUTOMATION,
                object=AlertObject(kind=verdict.object_kind, id=verdict.object_id),
                summary=verdict.summary,
            ),
            now,
            repeat_seconds=int(settings.rating_every.total_seconds()),
            extra_emails=settings.watch_emails,
        )
    else:
        existing = await store.get_alert(PLATFORM, verdict.fingerprint)
        if existing is not None and existing.firing:
            existing.summary = verdict.summary  # the resolved message says what happened: "rating resumed"
            existing.resolve(now)
            await store.save_alert(existing)


async def run_watchdogs(
    store: NotifierStore, settings: WatchdogSettings, now: datetime, dead_letter_ends: dict[str, int] | None = None
) -> list[Verdict]:
    """Run every watchdog once at `now`; fires and resolves the notifier's own alerts (tenant `platform`)."""
    beats = await store.heartbeats()
    state = await store.load_watch("rating") or {}
    last = state.get("last_check_at")
    watch = RatingWatch(
        every=settings.rating_every,
        last_check_at=datetime.fromisoformat(last) if last else None,
        processed={k: int(v) for k, v in (state.get("processed") or {}).items()},
    )
    verdicts: list[Verdict] = []
    rating = watch.check(beats, now)
    if rating is not None:
        verdicts.append(rating)
        await store.save_watch(
            "rating",
            {"last_check_at": now.isoformat(), "processed": watch.processed},
        )
    verdicts += heartbeat_verdicts(beats, now, settings.heartbeat_misses)
    verdicts += lag_verdicts(beats, now, settings.lag_threshold, settings.rating_every)
    if dead_letter_ends is not None:
        dlq_state = await store.load_watch("dead-letters") or {}
        dlq = DeadLetterWatch({k: int(v) for k, v in dlq_state.items()})
        verdicts += dlq.check(dead_letter_ends)
        await store.save_watch("dead-letters", dict(dlq.ends))
    for verdict in verdicts:
        await _apply_verdict(store, verdict, settings, now)
    return verdicts


# --- invoices and usage: tell the customer -------------------------------------------------------


async def tell_invoice_issued(store: NotifierStore, invoice: contracts.InvoiceIssued, now: datetime) -> int:
    """E-mail the people responsible for the customer that an invoice (or credit note) was issued."""
    recipients = await store.responsible_recipients(invoice.tenant, "customer", invoice.customer_id)
    what = "Credit note" if invoice.kind == "credit_note" else "Invoice"
    subject = f"{what} {invoice.series}-{invoice.number}: {invoice.total} {invoice.currency}, due {invoice.due_date}"
    lines = [
        f"{what} {invoice.series}-{invoice.number} for {invoice.period_start} to {invoice.period_end}.",
        f"Net {invoice.net} {invoice.currency}, tax {invoice.tax}, total {invoice.total}; due {invoice.due_date}.",
        *[f"{name}: {url}" for name, url in sorted(invoice.links.items())],
    ]
    drafts = [
        NotificationDraft(
            tenant=invoice.tenant,
            dedup_key=f"{invoice.tenant}|invoice|{invoice.invoice_id}|{d.channel}|{d.address}",
            group_key=f"customer:{invoice.customer_id}",
            kind="invoice.issued",
            channel=d.channel,
            address=d.address,
            recipient_id=d.recipient_id,
            subject=subject,
            body="\n".join(lines) + "\n",
            created_at=now,
        )
        for d in deliveries_for(Severity.IMPORTANT, recipients)
    ]
    return await store.add_notifications(drafts)


async def raise_usage_alert(
    store: NotifierStore, usage: contracts.UsageThresholdReached | contracts.CreditLimitExceeded, now: datetime
) -> Alert:
    """A line's threshold or credit limit becomes an alert on the line: its people (customer, operator) hear of it."""
    if isinstance(usage, contracts.UsageThresholdReached):
        raised = AlertRaised(
            fingerprint=f"rater/usage-threshold/{usage.line_id}/{usage.cycle_start}/{usage.threshold_percent}",
            severity=Severity.IMPORTANT,
            object=AlertObject(kind="line", id=usage.line_id),
            summary=(
                f"Line {usage.line_id} used {usage.threshold_percent}% of its allowance "
                f"({usage.used_seconds} of {usage.included_seconds} s) this cycle"
            ),
            details=usage.model_dump(mode="json"),
        )
    else:
        raised = AlertRaised(
            fingerprint=f"rater/credit-exceeded/{usage.line_id}/{usage.cycle_start}",
            severity=Severity.URGENT,
            object=AlertObject(kind="line", id=usage.line_id),
            summary=(
                f"Line {usage.line_id} spent {usage.spent} {usage.currency}, over its credit limit "
                f"of {usage.credit_limit}"
            ),
            details=usage.model_dump(mode="json"),
        )
    return await raise_alert(store, usage.tenant, raised, now)
