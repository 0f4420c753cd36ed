"""The notifier's HTTP API: alert intake, the inbox, silences, recipients, responsibilities, the notification log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from sqlmodel import col, select

from tarifa_common import auth
from tarifa_common.alerts import AlertObject, AlertRaised, AlertResolved, Severity, SourceKind
from tarifa_common.config import ServiceSettings
from tarifa_common.errors import InvalidInput, NotFound
from tarifa_common.http import create_app as create_service_app
from tarifa_common.http import require, runtime_of
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_notifier import __doc__ as summary
from tarifa_notifier import handlers
from tarifa_notifier.adapters.dispatch import set_sms_provider
from tarifa_notifier.adapters.repository import SqlNotifierStore, alert_of, inhibit_rule_of, must_utc
from tarifa_notifier.adapters.tables import (
    AlertRow,
    GroupMemberRow,
    InhibitRuleRow,
    NotificationRow,
    RecipientRow,
    ReportScheduleRow,
    ResponsibilityRow,
    SilenceRow,
    TenantSettingsRow,
    TenantWatchdogRow,
)
from tarifa_notifier.bootstrap import Notifier, build
from tarifa_notifier.config import NotifierSettings, SmsProvider
from tarifa_notifier.domain.alerts import DEFAULT_INHIBIT_RULES, InhibitRule, Matcher, MatchOp, Silence
from tarifa_notifier.domain.reports import ReportFormat, ReportKind, ReportSchedule
from tarifa_notifier.domain.watchdogs import TenantWatchdog
from tarifa_notifier.entrypoints.schemas import (
    AlertOut,
    GroupMemberIn,
    InhibitRuleIn,
    InhibitRuleOut,
    NotificationOut,
    RecipientIn,
    RecipientOut,
    ReportScheduleIn,
    ReportScheduleOut,
    ResponsibilityIn,
    ResponsibilityOut,
    SilenceIn,
    SilenceMatcherIn,
    SilenceOut,
    SmsProviderIn,
    WatchdogSettingsIn,
)

Reader = Annotated[auth.Principal, require(auth.VIEWER, auth.OPERATOR)]
Operator = Annotated[auth.Principal, require(auth.OPERATOR)]
Ingest = Annotated[auth.Principal, require(auth.INGEST, auth.OPERATOR, auth.SERVICE)]


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with runtime_of(request).units() as uow:
        yield uow


def notifier_of(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


# scope="function": the transaction commits before the answer is sent, so a client that gets a
# 201 can read what it created at once (with the default scope it commits after the response).
Uow = Annotated[UnitOfWork, Depends(unit_of_work, scope="function")]
NotifierDep = Annotated[Notifier, Depends(notifier_of)]

ALERT_EXAMPLE = {
    "fingerprint": "erp/backup-failed/srv-main",
    "severity": "urgent",
    "source_kind": "client_system",
    "object": {"kind": "service", "id": "srv-main"},
    "summary": "Nightly backup of srv-main failed",
    "details": {"exit_code": 3},
}


def alert_out(row: AlertRow) -> AlertOut:
    a = alert_of(row)
    return AlertOut(
        id=row.id,
        fingerprint=a.fingerprint,
        severity=a.severity,
        source_kind=a.source_kind,
        object_kind=a.object_kind,
        object_id=a.object_id,
        summary=a.summary,
        details=a.details,
        status=a.status.value,
        starts_at=a.starts_at,
        updated_at=a.updated_at,
        resolved_at=a.resolved_at,
        acknowledged_by=a.acknowledged_by,
        raised_count=a.raised_count,
    )


async def _alert_row(uow: UnitOfWork, tenant: str, alert_id: str) -> AlertRow:
    row = await uow.session.get(AlertRow, alert_id)
    if row is None or row.tenant != tenant:
        raise NotFound(f"no alert {alert_id} in tenant {tenant}")
    return row


alerts_router = APIRouter(prefix="/alerts", tags=["alerts"])


@alerts_router.post("", status_code=202, summary="Register an alert (clients' systems register failures)")
async def post_alert(
    principal: Ingest,
    uow: Uow,
    notifier: NotifierDep,
    alert: Annotated[AlertRaised, Body(openapi_examples={"client system": {"value": ALERT_EXAMPLE}})],
) -> AlertOut:
    """One fingerprint is one alert: posting it again updates it and counts the raise."""
    saved = await handlers.raise_alert(notifier.store(uow.session), principal.tenant, alert, notifier.clock())
    await uow.session.flush()
    return alert_out(await _alert_row(uow, principal.tenant, notifier.store(uow.session).id_of(saved)))


@alerts_router.get("", summary="The inbox: alerts, newest first, with filters")
async def list_alerts(
    principal: Reader,
    uow: Uow,
    status: Annotated[str | None, Query(examples=["firing"], description="firing, acknowledged, resolved")] = None,
    severity: Severity | None = None,
    source_kind: SourceKind | None = None,
    object_kind: Annotated[str | None, Query(examples=["source"])] = None,
    object_id: Annotated[str | None, Query(examples=["pbx-hq"])] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    statement = select(AlertRow).where(AlertRow.tenant == principal.tenant)
    for column, value in (
        (AlertRow.status, status),
        (AlertRow.severity, severity.value if severity else None),
        (AlertRow.source_kind, source_kind.value if source_kind else None),
        (AlertRow.object_kind, object_kind),
        (AlertRow.object_id, object_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    statement = statement.order_by(col(AlertRow.updated_at).desc()).limit(limit)
    return [alert_out(r) for r in (await uow.session.exec(statement)).all()]


@alerts_router.get("/{alert_id}", summary="One alert")
async def get_alert(principal: Reader, uow: Uow, alert_id: str) -> AlertOut:
    return alert_out(await _alert_row(uow, principal.tenant, alert_id))


@alerts_router.post("/{alert_id}/acknowledge", summary="Someone is on it: stop repeating, still tell the end")
async def acknowledge(principal: Operator, uow: Uow, notifier: NotifierDep, alert_id: str) -> AlertOut:
    row = await _alert_row(uow, principal.tenant, alert_id)
    store = notifier.store(uow.session)
    alert = await store.get_alert(row.tenant, row.fingerprint)
    assert alert is not None
    await handlers.acknowledge_alert(store, alert, principal.subject, notifier.clock())
    await uow.session.flush()
    return alert_out(row)


@alerts_router.post("/{alert_id}/resolve", summary="End an alert by hand; the people told are told it ended")
async def resolve(principal: Operator, uow: Uow, notifier: NotifierDep, alert_id: str) -> AlertOut:
    row = await _alert_row(uow, principal.tenant, alert_id)
    await handlers.resolve_alert(
        notifier.store(uow.session),
        principal.tenant,
        AlertResolved(fingerprint=row.fingerprint, object=AlertObject(kind=row.object_kind, id=row.object_id)),
        notifier.clock(),
    )
    await uow.session.flush()
    return alert_out(row)


silences_router = APIRouter(prefix="/silences", tags=["silences"])


def silence_out(row: SilenceRow) -> SilenceOut:
    return SilenceOut(
        id=row.id,
        matchers=[SilenceMatcherIn(**m) for m in row.matchers],
        starts_at=must_utc(row.starts_at),
        ends_at=must_utc(row.ends_at),
        created_by=row.created_by,
        comment=row.comment,
    )


@silences_router.post("", status_code=201, summary="Mute matching alerts for a time range")
async def create_silence(principal: Operator, uow: Uow, notifier: NotifierDep, body: SilenceIn) -> SilenceOut:
    ops = {op.value for op in MatchOp}
    for index, m in enumerate(body.matchers):
        if m.op not in ops:
            raise InvalidInput(f"matchers.{index}.op", f"{m.op!r} is not one of {', '.join(sorted(ops))}")
    starts_at = body.starts_at or notifier.clock()
    if starts_at.tzinfo is None or body.ends_at.tzinfo is None:
        raise InvalidInput("ends_at", "times need a UTC offset, e.g. 2026-11-22T22:00:00Z")
    silence = Silence(
        id=str(uuid.uuid4()),
        tenant=principal.tenant,
        matchers=tuple(Matcher(m.label, MatchOp(m.op), m.value) for m in body.matchers),
        starts_at=starts_at,
        ends_at=body.ends_at,
        created_by=principal.subject,
        comment=body.comment,
    )
    row = SilenceRow(
        id=silence.id,
        tenant=silence.tenant,
        matchers=[{"label": m.label, "op": m.op.value, "value": m.value} for m in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        created_by=silence.created_by,
        comment=silence.comment,
    )
    uow.session.add(row)
    return silence_out(row)


@silences_router.get("", summary="Silences, active and expired")
async def list_silences(
    principal: Reader, uow: Uow, notifier: NotifierDep, active: bool | None = None
) -> list[SilenceOut]:
    rows = (await uow.session.exec(select(SilenceRow).where(SilenceRow.tenant == principal.tenant))).all()
    now = notifier.clock()
    return [
        silence_out(r) for r in rows if active is None or (must_utc(r.starts_at) <= now < must_utc(r.ends_at)) == active
    ]


@silences_router.delete("/{silence_id}", summary="Expire a silence now")
async def expire_silence(principal: Operator, uow: Uow, notifier: NotifierDep, silence_id: str) -> SilenceOut:
    row = await uow.session.get(SilenceRow, silence_id)
    if row is None or row.tenant != principal.tenant:
        raise NotFound(f"no silence {silence_id}")
    now = notifier.clock()
    if must_utc(row.ends_at) > now:
        row.ends_at = max(now, must_utc(row.starts_at))
    return silence_out(row)


recipients_router = APIRouter(prefix="/recipients", tags=["recipients"])


def recipient_out(row: RecipientRow) -> RecipientOut:
    return RecipientOut(id=row.id, name=row.name, email=row.email, phone=row.phone, active=row.active)


@recipients_router.post("", status_code=201, summary="Add a person who can be told (e-mail, phone)")
async def create_recipient(principal: Operator, uow: Uow, body: RecipientIn) -> RecipientOut:
    if body.email is not None and "@" not in body.email:
        raise InvalidInput("email", f"{body.email!r} is not an e-mail address")
    if body.phone is not None and not (body.phone.startswith("+") and body.phone[1:].isdigit()):
        raise InvalidInput("phone", f"{body.phone!r} must be E.164, e.g. +5511999990001")
    row = RecipientRow(
        id=str(uuid.uuid4()), tenant=principal.tenant, name=body.name, email=body.email, phone=body.phone
    )
    uow.session.add(row)
    return recipient_out(row)


@recipients_router.get("", summary="People who can be told")
async def list_recipients(principal: Reader, uow: Uow) -> list[RecipientOut]:
    rows = await uow.session.exec(select(RecipientRow).where(RecipientRow.tenant == principal.tenant))
    return [recipient_out(r) for r in rows.all()]


async def _recipient(uow: UnitOfWork, tenant: str, recipient_id: str) -> RecipientRow:
    row = await uow.session.get(RecipientRow, recipient_id)
    if row is None or row.tenant != tenant:
        raise NotFound(f"no recipient {recipient_id}")
    return row


@recipients_router.delete("/{recipient_id}", summary="Stop telling a person (kept in the log, marked inactive)")
async def deactivate_recipient(principal: Operator, uow: Uow, recipient_id: str) -> RecipientOut:
    row = await _recipient(uow, principal.tenant, recipient_id)
    row.active = False
    return recipient_out(row)


@recipients_router.post(
    "/{recipient_id}/responsibilities", status_code=201, summary="Make a person answer for an object or a group"
)
async def add_responsibility(
    principal: Operator, uow: Uow, recipient_id: str, body: ResponsibilityIn
) -> ResponsibilityOut:
    await _recipient(uow, principal.tenant, recipient_id)
    existing = await uow.session.exec(
        select(ResponsibilityRow).where(
            ResponsibilityRow.tenant == principal.tenant,
            ResponsibilityRow.recipient_id == recipient_id,
            ResponsibilityRow.object_kind == body.object_kind,
            ResponsibilityRow.object_id == body.object_id,
        )
    )
    if existing.first() is None:
        uow.session.add(
            ResponsibilityRow(
                tenant=principal.tenant,
                recipient_id=recipient_id,
                object_kind=body.object_kind,
                object_id=body.object_id,
            )
        )
    return ResponsibilityOut(recipient_id=recipient_id, object_kind=body.object_kind, object_id=body.object_id)


@recipients_router.get("/{recipient_id}/responsibilities", summary="What a person answers for")
async def list_responsibilities(principal: Reader, uow: Uow, recipient_id: str) -> list[ResponsibilityOut]:
    rows = await uow.session.exec(
        select(ResponsibilityRow).where(
            ResponsibilityRow.tenant == principal.tenant, ResponsibilityRow.recipient_id == recipient_id
        )
    )
    return [
        ResponsibilityOut(recipient_id=r.recipient_id, object_kind=r.object_kind, object_id=r.object_id) for r in rows
    ]


groups_router = APIRouter(prefix="/object-groups", tags=["recipients"])


@groups_router.post("/{group}/members", status_code=201, summary="Put an object in a group of objects")
async def add_member(principal: Operator, uow: Uow, group: str, body: GroupMemberIn) -> GroupMemberIn:
    existing = await uow.session.exec(
        select(GroupMemberRow).where(
            GroupMemberRow.tenant == principal.tenant,
            GroupMemberRow.group_name == group,
            GroupMemberRow.object_kind == body.object_kind,
            GroupMemberRow.object_id == body.object_id,
        )
    )
    if existing.first() is None:
        uow.session.add(
            GroupMemberRow(
                tenant=principal.tenant, group_name=group, object_kind=body.object_kind, object_id=body.object_id
            )
        )
    return body


@groups_router.get("/{group}/members", summary="The objects of a group")
async def list_members(principal: Reader, uow: Uow, group: str) -> list[GroupMemberIn]:
    rows = await uow.session.exec(
        select(GroupMemberRow).where(GroupMemberRow.tenant == principal.tenant, GroupMemberRow.group_name == group)
    )
    return [GroupMemberIn(object_kind=r.object_kind, object_id=r.object_id) for r in rows]


log_router = APIRouter(tags=["notification log"])


@log_router.get("/notifications", summary="The notification log: every message decided, and what became of it")
async def list_notifications(
    principal: Reader,
    uow: Uow,
    status: Annotated[str | None, Query(examples=["failed"], description="pending, sending, sent, failed")] = None,
    channel: Annotated[str | None, Query(examples=["email"])] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationOut]:
    statement = select(NotificationRow).where(NotificationRow.tenant == principal.tenant)
    if status is not None:
        statement = statement.where(NotificationRow.status == status)
    if channel is not None:
        statement = statement.where(NotificationRow.channel == channel)
    if since is not None:
        statement = statement.where(col(NotificationRow.created_at) >= since)
    rows = (await uow.session.exec(statement.order_by(col(NotificationRow.id).desc()).limit(limit))).all()
    return [
        NotificationOut(
            id=r.id or 0,
            kind=r.kind,
            channel=r.channel,
            address=r.address,
            subject=r.subject,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            provider=r.provider,
            created_at=must_utc(r.created_at),
            sent_at=must_utc(r.sent_at) if r.sent_at else None,
        )
        for r in rows
    ]


@log_router.put("/sms-provider", tags=["channels"], summary="Choose this tenant's SMS provider (smpp or http)")
async def put_sms_provider(principal: Operator, uow: Uow, body: SmsProviderIn) -> SmsProviderIn:
    if body.provider not in {p.value for p in SmsProvider}:
        raise InvalidInput("provider", f"{body.provider!r} is not one of smpp, http")
    await set_sms_provider(uow.session, principal.tenant, body.provider)
    return body


@log_router.get("/sms-provider", tags=["channels"], summary="This tenant's SMS provider")
async def get_sms_provider(principal: Reader, uow: Uow, notifier: NotifierDep) -> SmsProviderIn:
    row = await uow.session.get(TenantSettingsRow, principal.tenant)
    return SmsProviderIn(provider=row.sms_provider if row else notifier.settings.default_sms_provider.value)


reports_router = APIRouter(prefix="/report-schedules", tags=["reports"])


def schedule_out(row: ReportScheduleRow) -> ReportScheduleOut:
    return ReportScheduleOut(
        id=row.id,
        name=row.name,
        cron=row.cron,
        time_zone=row.time_zone,
        recipients=list(row.recipients),
        kind=row.kind,
        format=row.format,
        next_run_at=must_utc(row.next_run_at),
        last_run_at=must_utc(row.last_run_at) if row.last_run_at else None,
        active=row.active,
        failures=row.failures,
        retry_at=must_utc(row.retry_at) if row.retry_at else None,
        last_error=row.last_error,
    )


@reports_router.post("", status_code=201, summary="E-mail a report on a cron schedule")
async def create_report_schedule(
    principal: Operator, uow: Uow, notifier: NotifierDep, body: ReportScheduleIn
) -> ReportScheduleOut:
    if body.kind not in {k.value for k in ReportKind}:
        raise InvalidInput("kind", f"{body.kind!r} is not one of {', '.join(k.value for k in ReportKind)}")
    if body.format not in {f.value for f in ReportFormat}:
        raise InvalidInput("format", f"{body.format!r} is not one of {', '.join(f.value for f in ReportFormat)}")
    schedule = ReportSchedule(
        id=str(uuid.uuid4()),
        tenant=principal.tenant,
        name=body.name,
        cron=body.cron,
        time_zone=body.time_zone,
        recipients=tuple(body.recipients),
        kind=ReportKind(body.kind),
        format=ReportFormat(body.format),
    )
    row = ReportScheduleRow(
        id=schedule.id,
        tenant=schedule.tenant,
        name=schedule.name,
        cron=schedule.cron,
        time_zone=schedule.time_zone,
        recipients=list(schedule.recipients),
        kind=schedule.kind.value,
        format=schedule.format.value,
        next_run_at=schedule.next_run(notifier.clock()),
    )
    uow.session.add(row)
    return schedule_out(row)


@reports_router.get("", summary="Report schedules")
async def list_report_schedules(principal: Reader, uow: Uow) -> list[ReportScheduleOut]:
    rows = await uow.session.exec(select(ReportScheduleRow).where(ReportScheduleRow.tenant == principal.tenant))
    return [schedule_out(r) for r in rows.all()]


@reports_router.delete("/{schedule_id}", summary="Stop a report (kept, marked inactive)")
async def stop_report_schedule(
    principal: Operator, uow: Uow, notifier: NotifierDep, schedule_id: str
) -> ReportScheduleOut:
    row = await uow.session.get(ReportScheduleRow, schedule_id)
    if row is None or row.tenant != principal.tenant:
        raise NotFound(f"no report schedule {schedule_id}")
    row.active = False
    # A stopped report is no longer late: its "not sent" alert, if any, ends with it.
    await handlers.resolve_alert(
        notifier.store(uow.session),
        principal.tenant,
        AlertResolved(
            fingerprint=handlers.report_failed_fingerprint(schedule_id),
            object=AlertObject(kind="report", id=schedule_id),
        ),
        notifier.clock(),
    )
    return schedule_out(row)


watchdog_router = APIRouter(tags=["watchdogs"])


@watchdog_router.put("/watchdog-settings", summary="This tenant's rating watchdog: its interval and its e-mails")
async def put_watchdog_settings(principal: Operator, uow: Uow, body: WatchdogSettingsIn) -> WatchdogSettingsIn:
    row = await uow.session.get(TenantWatchdogRow, principal.tenant)
    if body.rating_check_minutes is None:
        if row is not None:
            await uow.session.delete(row)
        return WatchdogSettingsIn(rating_check_minutes=None, emails=[])
    watchdog = TenantWatchdog(principal.tenant, timedelta(minutes=body.rating_check_minutes), tuple(body.emails))
    if not watchdog.emails:
        raise InvalidInput("emails", "give at least one address to tell while rating is stopped")
    if row is None:
        row = TenantWatchdogRow(tenant=principal.tenant, rating_check_minutes=body.rating_check_minutes)
        uow.session.add(row)
    row.rating_check_minutes, row.emails = body.rating_check_minutes, list(watchdog.emails)
    return WatchdogSettingsIn(rating_check_minutes=row.rating_check_minutes, emails=list(row.emails))


@watchdog_router.get("/watchdog-settings", summary="This tenant's rating watchdog")
async def get_watchdog_settings(principal: Reader, uow: Uow) -> WatchdogSettingsIn:
    row = await uow.session.get(TenantWatchdogRow, principal.tenant)
    if row is None:
        return WatchdogSettingsIn(rating_check_minutes=None, emails=[])
    return WatchdogSettingsIn(rating_check_minutes=row.rating_check_minutes, emails=list(row.emails))


def _matchers(field: str, given: list[SilenceMatcherIn]) -> tuple[Matcher, ...]:
    ops = {op.value for op in MatchOp}
    for index, m in enumerate(given):
        if m.op not in ops:
            raise InvalidInput(f"{field}.{index}.op", f"{m.op!r} is not one of {', '.join(sorted(ops))}")
    return tuple(Matcher(m.label, MatchOp(m.op), m.value) for m in given)


def _stored(matchers: tuple[Matcher, ...]) -> list[dict[str, str]]:
    return [{"label": m.label, "op": m.op.value, "value": m.value} for m in matchers]


def rule_out(rule: InhibitRule, built_in: bool = False) -> InhibitRuleOut:
    return InhibitRuleOut(
        id=rule.id,
        source_matchers=[SilenceMatcherIn(**m) for m in _stored(rule.source)],
        target_matchers=[SilenceMatcherIn(**m) for m in _stored(rule.target)],
        equal=list(rule.equal),
        comment=rule.comment,
        built_in=built_in,
    )


@watchdog_router.post("/inhibit-rules", status_code=201, summary="Mute alerts while another alert explains them")
async def create_inhibit_rule(principal: Operator, uow: Uow, body: InhibitRuleIn) -> InhibitRuleOut:
    rule = InhibitRule(
        source=_matchers("source_matchers", body.source_matchers),
        target=_matchers("target_matchers", body.target_matchers),
        equal=tuple(body.equal),
        id=str(uuid.uuid4()),
        comment=body.comment,
    )
    uow.session.add(
        InhibitRuleRow(
            id=rule.id,
            tenant=principal.tenant,
            source=_stored(rule.source),
            target=_stored(rule.target),
            equal=list(rule.equal),
            comment=rule.comment,
            created_by=principal.subject,
        )
    )
    return rule_out(rule)


@watchdog_router.get("/inhibit-rules", summary="The built-in inhibition rules, then this tenant's")
async def list_inhibit_rules(principal: Reader, uow: Uow) -> list[InhibitRuleOut]:
    own = await SqlNotifierStore(uow.session).inhibit_rules(principal.tenant)
    return [rule_out(r, built_in=True) for r in DEFAULT_INHIBIT_RULES] + [rule_out(r) for r in own]


@watchdog_router.delete("/inhibit-rules/{rule_id}", summary="Delete one of this tenant's inhibition rules")
async def delete_inhibit_rule(principal: Operator, uow: Uow, rule_id: str) -> InhibitRuleOut:
    if rule_id in {r.id for r in DEFAULT_INHIBIT_RULES}:
        raise InvalidInput("rule_id", "a built-in rule applies to every tenant and cannot be deleted")
    row = await uow.session.get(InhibitRuleRow, rule_id)
    if row is None or row.tenant != principal.tenant:
        raise NotFound(f"no inhibition rule {rule_id}")
    await uow.session.delete(row)
    return rule_out(inhibit_rule_of(row))


ROUTERS = (
    alerts_router,
    silences_router,
    recipients_router,
    groups_router,
    log_router,
    reports_router,
    watchdog_router,
)


def create_app(settings: ServiceSettings, **build_options: object) -> FastAPI:
    assert isinstance(settings, NotifierSettings)
    runtime, notifier = build(settings, **build_options)  # type: ignore[arg-type]
    app = create_service_app(
        runtime,
        title="Tarifa notifier",
        description=summary or "",
        version="0.1.0",
        routers=ROUTERS,
        openapi_tags=[
            {"name": "alerts", "description": "Alert intake and the inbox"},
            {"name": "silences", "description": "Mute alerts for a time range"},
            {"name": "recipients", "description": "People, and the objects they answer for"},
            {"name": "notification log", "description": "Every message decided and its outcome"},
            {"name": "channels", "description": "E-mail and SMS providers"},
            {"name": "reports", "description": "Scheduled e-mail reports"},
            {"name": "watchdogs", "description": "A tenant's rating watchdog and inhibition rules"},
        ],
    )
    app.state.notifier = notifier
    return app
