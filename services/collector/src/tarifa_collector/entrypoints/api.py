"""The collector's HTTP API: sources and their health, batch ingest, watermarks, replays."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status

from tarifa_collector import __doc__ as summary
from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.links import skip_header
from tarifa_collector.adapters.replay import ReplayJob, ReplayJobs
from tarifa_collector.adapters.repository import (
    SqlSourceRepository,
    mapping_to_json,
    numbering_to_json,
    settings_of,
)
from tarifa_collector.adapters.summit import summit_imports
from tarifa_collector.adapters.tables import SourceRow, SourceStateRow, SummitImportRow
from tarifa_collector.bootstrap import bootstrap
from tarifa_collector.config import CollectorSettings
from tarifa_collector.domain.json_records import canonical_line
from tarifa_collector.domain.numbering import NumberingPlan
from tarifa_collector.domain.operator_csv import ColumnMapping
from tarifa_collector.domain.sources import (
    AfterImport,
    Connection,
    RecordFormat,
    SourceKind,
    SourceSettings,
    watermark_reached,
)
from tarifa_collector.entrypoints.schemas import (
    BatchResult,
    ColumnMappingModel,
    NumberingModel,
    PostedBatch,
    RecordError,
    ReplayRequest,
    ReplayStatus,
    SourceCreate,
    SourceHealth,
    SourcePublic,
    SourceUpdate,
    SourceWatermark,
    SummitImportPublic,
    Watermark,
)
from tarifa_common import auth
from tarifa_common.config import ServiceSettings
from tarifa_common.errors import InvalidInput, NotFound
from tarifa_common.events import utcnow
from tarifa_common.http import create_app as create_service_app
from tarifa_common.http import require, runtime_of

Reader = Annotated[auth.Principal, require(auth.VIEWER, auth.OPERATOR, auth.SERVICE)]
Operator = Annotated[auth.Principal, require(auth.OPERATOR)]
Ingester = Annotated[auth.Principal, require(auth.INGEST, auth.OPERATOR)]


def _intake(request: Request) -> Intake:
    return Intake(runtime_of(request).units)


def _replays(request: Request) -> ReplayJobs:
    jobs: ReplayJobs = request.app.state.replays
    return jobs


def _settings(request: Request) -> CollectorSettings:
    settings = runtime_of(request).settings
    assert isinstance(settings, CollectorSettings)
    return settings


IntakeDep = Annotated[Intake, Depends(_intake)]
ReplaysDep = Annotated[ReplayJobs, Depends(_replays)]
SettingsDep = Annotated[CollectorSettings, Depends(_settings)]


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=utcnow().tzinfo) if value is not None and value.tzinfo is None else value


def _summit_public(row: SummitImportRow | None, integration_id: str | None) -> SummitImportPublic | None:
    if integration_id is None:
        return None
    if row is None:  # not read yet
        return SummitImportPublic(integration_id=integration_id, stale=True, error="not read from voip-summit yet")
    return SummitImportPublic(
        integration_id=row.integration_id,
        directory=row.directory,
        schedule=row.cron,
        import_period=row.period,
        delete_cdr_files=row.delete_files,
        active=row.active,
        fetched_at=_aware(row.fetched_at),
        stale=row.error is not None,
        error=row.error,
        error_since=_aware(row.error_since),
    )


def _public(row: SourceRow, state: SourceStateRow | None, summit: SummitImportRow | None = None) -> SourcePublic:
    health = SourceHealth(connection=Connection.IDLE)
    # "today" is the source's day, as the counters roll over at the PBX's midnight
    today = utcnow().astimezone(ZoneInfo(row.time_zone)).date().isoformat()
    if state is not None:
        health = SourceHealth(
            connection=Connection(state.connection),
            peer=state.peer,
            connection_changed_at=_aware(state.connection_changed_at),
            last_record_at=_aware(state.last_record_at),
            last_call_start=_aware(state.last_call_start),
            records_today=state.records_today if state.day == today else 0,
            rejects_today=state.rejects_today if state.day == today else 0,
            records_total=state.records_total,
            rejects_total=state.rejects_total,
            silent=state.silent_alert,
            link_down=state.link_alert,
            last_error=state.last_error,
        )
    return SourcePublic(
        id=row.id,
        tenant=row.tenant,
        kind=SourceKind(row.kind),
        format=RecordFormat(row.format),
        time_zone=row.time_zone,
        host=row.host,
        port=row.port,
        directory=row.directory,
        after_import=AfterImport(row.after_import),
        quiet_minutes=row.quiet_minutes,
        enabled=row.enabled,
        schedule=row.schedule,
        column_mapping=_mapping_model(row),
        numbering=_numbering_model(row),
        integration_id=row.integration_id,
        created_at=_aware(row.created_at) or row.created_at,
        updated_at=_aware(row.updated_at) or row.updated_at,
        health=health,
        summit=_summit_public(summit, row.integration_id),
    )


def _mapping_model(row: SourceRow) -> ColumnMappingModel | None:
    mapping = settings_of(row).column_mapping
    if mapping is None:
        return None
    return ColumnMappingModel(
        columns=mapping.columns,
        delimiter=mapping.delimiter,
        date_format=mapping.date_format,
        header=mapping.header,
        default_direction=mapping.default_direction,
    )


def _numbering_model(row: SourceRow) -> NumberingModel | None:
    plan = settings_of(row).numbering
    if plan is None:
        return None
    values = dataclasses.asdict(plan)
    values["subscriber_digits"] = list(plan.subscriber_digits)
    return NumberingModel(**values)


def _plan_of(body: SourceCreate | SourceUpdate) -> NumberingPlan | None:
    if body.numbering is None:
        return None
    values = body.numbering.model_dump()
    values["subscriber_digits"] = tuple(values["subscriber_digits"])
    return NumberingPlan(**values)


def _settings_of(source_id: str, body: SourceCreate | SourceUpdate) -> SourceSettings:
    settings = SourceSettings(
        id=source_id,
        kind=body.kind,
        format=body.format,
        time_zone=body.time_zone,
        host=body.host,
        port=body.port,
        directory=body.directory,
        after_import=body.after_import,
        quiet_minutes=body.quiet_minutes,
        enabled=body.enabled,
        schedule=body.schedule,
        column_mapping=ColumnMapping(**body.column_mapping.model_dump()) if body.column_mapping else None,
        numbering=_plan_of(body),
        integration_id=body.integration_id,
    )
    settings.validate()
    return settings


sources = APIRouter(prefix="/sources", tags=["sources"])


@sources.post("", status_code=status.HTTP_201_CREATED, summary="Configure a source of call records")
async def create_source(body: SourceCreate, principal: Operator, intake: IntakeDep) -> SourcePublic:
    settings = _settings_of(body.id, body)
    async with intake.units() as uow:
        row = await SqlSourceRepository(uow.session).add(principal.tenant, settings, utcnow())
    return _public(row, None)


@sources.get("", summary="Every source of the tenant with its health")
async def list_sources(principal: Reader, intake: IntakeDep) -> list[SourcePublic]:
    async with intake.units() as uow:
        repository = SqlSourceRepository(uow.session)
        rows = await repository.list(principal.tenant)
        states = await repository.states(principal.tenant)
        summits = await summit_imports(uow.session, principal.tenant)
    return [_public(row, states.get(row.id), summits.get(row.id)) for row in rows]


@sources.get("/{source_id}", summary="One source with its health")
async def get_source(source_id: str, principal: Reader, intake: IntakeDep) -> SourcePublic:
    async with intake.units() as uow:
        repository = SqlSourceRepository(uow.session)
        row = await repository.get(principal.tenant, source_id)
        states = await repository.states(principal.tenant)
        summits = await summit_imports(uow.session, principal.tenant)
    return _public(row, states.get(source_id), summits.get(source_id))


@sources.put("/{source_id}", summary="Change a source (a running link restarts with the new settings)")
async def update_source(source_id: str, body: SourceUpdate, principal: Operator, intake: IntakeDep) -> SourcePublic:
    settings = _settings_of(source_id, body)
    async with intake.units() as uow:
        repository = SqlSourceRepository(uow.session)
        row = await repository.get(principal.tenant, source_id)
        for name in (
            "time_zone",
            "host",
            "port",
            "directory",
            "quiet_minutes",
            "enabled",
            "schedule",
            "integration_id",
        ):
            setattr(row, name, getattr(settings, name))
        row.kind, row.format, row.after_import = settings.kind.value, settings.format.value, settings.after_import.value
        row.column_mapping = mapping_to_json(settings.column_mapping)
        row.numbering = numbering_to_json(settings.numbering)
        row.updated_at = utcnow()
        states = await repository.states(principal.tenant)
        summits = await summit_imports(uow.session, principal.tenant)
    return _public(row, states.get(source_id), summits.get(source_id))


@sources.delete(
    "/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a source; its archive and calls are kept",
    description="A running link stops within seconds. SMDR legs still waiting for the rest of their call are "
    "published first as incomplete calls, open alerts are resolved. Re-creating the same id finds the archive "
    "again (records seen before stay duplicates). To pause a source instead, PUT it with `enabled: false`.",
)
async def delete_source(source_id: str, principal: Operator, intake: IntakeDep) -> None:
    await intake.delete_source(principal.tenant, source_id)


@sources.post(
    "/{source_id}/replays",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Re-publish the source's calls that started in a time range",
    description="Consumers see the same event ids again, so a replay is harmless; follow it at /v1/replays/{id}.",
)
async def start_replay(source_id: str, body: ReplayRequest, principal: Operator, jobs: ReplaysDep) -> ReplayStatus:
    if body.start.tzinfo is None or body.end.tzinfo is None:
        raise InvalidInput("start", "give start and end with a time zone offset, e.g. 2026-11-01T00:00:00Z")
    if body.end <= body.start:
        raise InvalidInput("end", "must be after start")
    job = await jobs.start(principal.tenant, source_id, body.start, body.end)
    return _status(job)


def _status(job: ReplayJob) -> ReplayStatus:
    return ReplayStatus(
        id=job.id,
        source_id=job.source_id,
        start=job.start,
        end=job.end,
        state=job.state,
        total=job.total,
        published=job.published,
        error=job.error,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


replays = APIRouter(prefix="/replays", tags=["sources"])


@replays.get("/{job_id}", summary="Progress of a replay")
async def get_replay(job_id: str, principal: Reader, jobs: ReplaysDep) -> ReplayStatus:
    job = jobs.jobs.get(job_id)
    if job is None or job.tenant != principal.tenant:
        raise NotFound(f"replay {job_id} is unknown (replays are forgotten when the collector restarts)")
    return _status(job)


cdrs = APIRouter(prefix="/cdrs", tags=["cdrs"])


@cdrs.post(
    "",
    summary="Post a batch of call records to an http source",
    description=(
        "JSON (`application/json`, a PostedBatch) or the source's own format as text "
        "(`text/csv`: Asterisk Master.csv rows, FreeSWITCH rows, SMDR lines). Each record is accepted, "
        "a duplicate of one accepted before, or rejected with its index and reason; the batch commits as one."
    ),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PostedBatch"}},
                "text/csv": {"schema": {"type": "string"}, "example": '"","203","01133334444","default",...'},
            }
        }
    },
)
async def post_cdrs(
    request: Request,
    principal: Ingester,
    intake: IntakeDep,
    settings: SettingsDep,
    source_id: Annotated[str, Query(description="the http source the records belong to", examples=["operator-api"])],
) -> BatchResult:
    async with intake.units() as uow:
        row = await SqlSourceRepository(uow.session).get(principal.tenant, source_id)
    source = settings_of(row)
    if source.kind is not SourceKind.HTTP:
        raise InvalidInput("source_id", f"source {source_id!r} is a {source.kind.value} source; post to an http source")
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if content_type == "application/json":
        try:
            batch = PostedBatch.model_validate_json(body)
        except ValueError as error:
            raise InvalidInput("body", f"not a PostedBatch: {str(error).splitlines()[0]}") from error
        lines = [canonical_line(item) if isinstance(item, dict) else item.encode() for item in batch.records]
        objects = sum(isinstance(item, dict) for item in batch.records)
        if objects not in (0, len(batch.records)):
            raise InvalidInput("records", "send either JSON objects or lines of the source's format, not both")
        record_format = RecordFormat.TARIFA_JSON if objects else source.format
    elif content_type in ("text/csv", "text/plain"):
        lines = skip_header(source, [line for line in body.split(b"\n") if line.strip()])
        record_format = source.format
    else:
        raise InvalidInput("content-type", "send application/json or text/csv")
    if len(lines) > settings.http_max_batch:
        raise InvalidInput("records", f"{len(lines)} records; a batch holds at most {settings.http_max_batch}")
    if not lines:
        raise InvalidInput("records", "the batch is empty")
    effective = dataclasses.replace(source, format=record_format)
    outcome = await intake.ingest(principal.tenant, effective, lines, location="http batch")
    return BatchResult(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        rejected=outcome.rejected,
        errors=[RecordError(index=number - 1, reason=reason) for number, reason in outcome.rejections],
    )


watermarks = APIRouter(prefix="/watermark", tags=["sources"])


@watermarks.get("", summary="Has every source of the tenant delivered its calls up to a moment?")
async def get_watermark(
    principal: Reader,
    intake: IntakeDep,
    until: Annotated[datetime, Query(description="with an offset", examples=["2026-12-01T00:00:00-03:00"])],
) -> Watermark:
    if until.tzinfo is None:
        raise InvalidInput("until", "give a time zone offset, e.g. 2026-12-01T00:00:00-03:00")
    async with intake.units() as uow:
        repository = SqlSourceRepository(uow.session)
        rows = [row for row in await repository.list(principal.tenant) if row.enabled]
        states = await repository.states(principal.tenant)
    answers = []
    for row in rows:
        state = states.get(row.id)
        last_call = _aware(state.last_call_start) if state else None
        last_record = _aware(state.last_record_at) if state else None
        answers.append(
            SourceWatermark(
                source_id=row.id,
                reached=watermark_reached(last_call, last_record, until),
                last_call_start=last_call,
                last_record_at=last_record,
            )
        )
    return Watermark(until=until, reached=all(a.reached for a in answers), sources=answers)


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, CollectorSettings)
    runtime = bootstrap(settings)
    app = create_service_app(
        runtime,
        title="Tarifa collector",
        description=summary or "",
        version="0.1.0",
        routers=[sources, replays, cdrs, watermarks],
        openapi_tags=[
            {"name": "sources", "description": "PBX links, directories and feeds; their health, watermarks, replays"},
            {"name": "cdrs", "description": "Call records pushed over HTTP"},
        ],
    )
    app.state.replays = ReplayJobs(runtime.units)
    return app
