"""The rater's `/v1` routes: tariffs, settings, the extension directory, rated and unrated calls, re-rates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlmodel import col, select

from tarifa_common import auth
from tarifa_common.errors import InvalidInput, NotFound
from tarifa_common.http import require
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_rater import handlers
from tarifa_rater.adapters import reports, retries
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import AllowanceRow, CallRow, ExtensionRow, LineUsageRow, RetryRow, TariffPlanRow
from tarifa_rater.bootstrap import Rater
from tarifa_rater.domain.allowances import cycle_of
from tarifa_rater.domain.numbering import NumberingPlan
from tarifa_rater.domain.pricing import TimeBands
from tarifa_rater.domain.rating import DirectoryEntry, parse_extensions_csv
from tarifa_rater.domain.tariffs import parse_rates_csv, rates_csv
from tarifa_rater.entrypoints import schemas
from tarifa_rater.handlers import Allowance, RerateScope

Writer = Annotated[auth.Principal, require(auth.OPERATOR)]
Reader = Annotated[auth.Principal, require(auth.VIEWER, auth.OPERATOR, auth.SERVICE)]
SCOPES = ("tenant", "customer", "line")


def rater_of(request: Request) -> Rater:
    rater: Rater = request.app.state.rater
    return rater


RaterDep = Annotated[Rater, Depends(rater_of)]


def csv_body(example: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": example}},
        }
    }


async def read_text(request: Request) -> str:
    raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # spreadsheets in Brazil still save Windows-1252/Latin-1


def aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(field, "give a time zone, e.g. 2026-12-01T00:00:00-03:00")
    return value.astimezone(UTC)


async def queue_retry(
    rater: Rater, uow: UnitOfWork, tenant: str, waiting: handlers.Waiting | None
) -> schemas.RetryQueued:
    """Queue the retry a change calls for, in the change's own transaction (worked off by the runtime)."""
    row = await rater.request_retry(uow, tenant, waiting)
    waiting_calls = await retries.waiting_calls(uow.session, tenant)
    return schemas.RetryQueued(state=row.state, requests=row.requests, waiting_calls=waiting_calls)


tariffs = APIRouter(prefix="/tariffs", tags=["tariffs"])


@tariffs.put(
    "/{code}/versions/{valid_from}",
    summary="Load a plan version (CSV); it takes over at valid_from",
    openapi_extra=csv_body(schemas.PRICE_LIST_EXAMPLE),
)
async def import_plan_version(
    code: str,
    valid_from: datetime,
    request: Request,
    rater: RaterDep,
    principal: Writer,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$", examples=["BRL"])] = "BRL",
    normal_weekdays: Annotated[str, Query(pattern=r"^[0-6]{0,7}$", examples=["012345"])] = "012345",
    normal_from_hour: Annotated[int, Query(ge=0, le=24)] = 7,
    normal_until_hour: Annotated[int, Query(ge=0, le=24)] = 21,
) -> schemas.PlanImported:
    """Replace or create the version of plan `code` that activates at `valid_from`; waiting calls get a queued retry."""
    entries = parse_rates_csv(await read_text(request))
    bands = TimeBands(frozenset(int(d) for d in normal_weekdays), normal_from_hour, normal_until_hour)
    async with rater.runtime.units() as uow:
        plan = await sql.save_plan_version(
            uow.session,
            principal.tenant,
            code,
            aware(valid_from, "valid_from"),
            entries,
            currency=currency,
            bands=bands,
        )
        retry = await queue_retry(rater, uow, principal.tenant, handlers.FOR_TARIFF)
    rater.wake_retries()
    return schemas.PlanImported(**version_out(plan, len(entries)).model_dump(), retry=retry)


@tariffs.delete(
    "/{code}/versions/{valid_from}",
    status_code=204,
    summary="Remove a plan version; calls it priced keep their rating until a re-rate",
)
async def delete_plan_version(code: str, valid_from: datetime, rater: RaterDep, principal: Writer) -> Response:
    async with rater.runtime.units() as uow:
        removed = await sql.delete_plan_version(uow.session, principal.tenant, code, aware(valid_from, "valid_from"))
    if not removed:
        raise NotFound(f"plan {code} has no version from {valid_from.isoformat()}")
    return Response(status_code=204)


def version_out(plan: TariffPlanRow, rates: int) -> schemas.PlanVersionOut:
    return schemas.PlanVersionOut(
        code=plan.code,
        valid_from=plan.valid_from,
        currency=plan.currency,
        normal_weekdays=plan.normal_weekdays,
        normal_from_hour=plan.normal_from_hour,
        normal_until_hour=plan.normal_until_hour,
        rates=rates,
    )


@tariffs.get("", summary="Every plan version of the tenant")
async def list_plan_versions(rater: RaterDep, principal: Reader) -> list[schemas.PlanVersionOut]:
    async with rater.runtime.units() as uow:
        plans = await sql.load_plans(uow.session, principal.tenant)
    return sorted((version_out(p, len(r)) for p, r in plans), key=lambda v: (v.code, v.valid_from))


@tariffs.get(
    "/{code}/rates.csv",
    summary="The rates of the version in force at `at` (default: now), as CSV",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {"example": schemas.PRICE_LIST_EXAMPLE}}}},
)
async def export_rates(code: str, rater: RaterDep, principal: Reader, at: datetime | None = None) -> PlainTextResponse:
    moment = aware(at, "at") if at is not None else datetime.now(UTC)
    async with rater.runtime.units() as uow:
        plans = [
            (p, r)
            for p, r in await sql.load_plans(uow.session, principal.tenant)
            if p.code == code and p.valid_from <= moment
        ]
    if not plans:
        raise NotFound(f"plan {code} has no version in force at {moment.isoformat()}")
    plan, rates = max(plans, key=lambda pair: pair[0].valid_from)
    text = rates_csv(sql.plan_of(plan, rates).entries)
    return PlainTextResponse(
        text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{code}.csv"'}
    )


settings_router = APIRouter(tags=["rating settings"])


@settings_router.put(
    "/tariff-assignments/{scope}/{scope_id}", summary="Assign a plan to the tenant ('*'), a customer or a line"
)
async def assign_plan(
    scope: str, scope_id: str, body: schemas.AssignmentIn, rater: RaterDep, principal: Writer
) -> schemas.AssignmentOut:
    if scope not in SCOPES:
        raise InvalidInput("scope", f"must be one of {', '.join(SCOPES)}")
    async with rater.runtime.units() as uow:
        await sql.assign_plan(uow.session, principal.tenant, scope, scope_id, body.plan_code)
        retry = await queue_retry(rater, uow, principal.tenant, handlers.FOR_TARIFF)
    rater.wake_retries()
    return schemas.AssignmentOut(plan_code=body.plan_code, scope=scope, scope_id=scope_id, retry=retry)


@settings_router.delete(
    "/tariff-assignments/{scope}/{scope_id}", status_code=204, summary="Remove a plan assignment (fallback applies)"
)
async def delete_assignment(scope: str, scope_id: str, rater: RaterDep, principal: Writer) -> Response:
    if scope not in SCOPES:
        raise InvalidInput("scope", f"must be one of {', '.join(SCOPES)}")
    async with rater.runtime.units() as uow:
        removed = await sql.delete_assignment(uow.session, principal.tenant, scope, scope_id)
    if not removed:
        raise NotFound(f"no plan is assigned to {scope} {scope_id}")
    return Response(status_code=204)


@settings_router.delete("/holidays/{day}", status_code=204, summary="Remove a holiday")
async def delete_holiday(day: date, rater: RaterDep, principal: Writer) -> Response:
    async with rater.runtime.units() as uow:
        removed = await sql.delete_holiday(uow.session, principal.tenant, day)
    if not removed:
        raise NotFound(f"{day.isoformat()} is not a holiday")
    return Response(status_code=204)


@settings_router.put("/holidays/{day}", summary="Declare a holiday: the reduced band all day")
async def put_holiday(day: date, body: schemas.HolidayIn, rater: RaterDep, principal: Writer) -> dict[str, str]:
    async with rater.runtime.units() as uow:
        await sql.save_holiday(uow.session, principal.tenant, day, body.name)
    return {"day": day.isoformat(), "name": body.name}


@settings_router.put("/numbering/{source_id}", summary="The numbering context of a source ('*': the tenant's default)")
async def put_numbering(
    source_id: str, body: schemas.NumberingIn, rater: RaterDep, principal: Writer
) -> schemas.NumberingSaved:
    plan = NumberingPlan(country_code=body.country_code, home_area_code=body.home_area_code)
    async with rater.runtime.units() as uow:
        await sql.save_numbering(uow.session, principal.tenant, source_id, plan)
        # unreadable numbers may read now
        retry = await queue_retry(rater, uow, principal.tenant, handlers.FOR_NUMBERING)
    rater.wake_retries()
    return schemas.NumberingSaved(**body.model_dump(), retry=retry)


@settings_router.delete(
    "/numbering/{source_id}",
    status_code=204,
    summary="Remove a source's numbering context: it falls back to '*', '*' to the built-in default",
    responses={404: {"description": "the source has no numbering context of its own"}},
)
async def delete_numbering(
    source_id: Annotated[str, Path(examples=["pbx-rio", "*"])], rater: RaterDep, principal: Writer
) -> Response:
    """The calls of `source_id` read their numbers with the tenant's default ('*') from now on; removing
    '*' leaves the service's built-in plan (Brazil, `TARIFA_RATER_HOME_AREA_CODE`). Waiting calls get a queued retry."""
    async with rater.runtime.units() as uow:
        removed = await sql.delete_numbering(uow.session, principal.tenant, source_id)
        if removed:  # a number unreadable in the removed context may read in the fallback
            await queue_retry(rater, uow, principal.tenant, handlers.FOR_NUMBERING)
    if not removed:
        raise NotFound(f"source {source_id} has no numbering context")
    rater.wake_retries()
    return Response(status_code=204)


directory = APIRouter(tags=["extension directory"])


@directory.put("/extensions/{extension}", summary="Create or update an extension's attribution and class of service")
async def put_extension(
    extension: str, body: schemas.ExtensionIn, rater: RaterDep, principal: Writer
) -> schemas.ExtensionSaved:
    entry = DirectoryEntry(
        extension=extension,
        line_id=body.line_id,
        customer_id=body.customer_id,
        contract_id=body.contract_id,
        cost_centre=body.cost_centre,
        department=body.department,
        allowed_classes=frozenset(body.allowed_classes) if body.allowed_classes is not None else None,
    )
    async with rater.runtime.units() as uow:
        await sql.save_extension(uow.session, principal.tenant, entry)
        retry = await queue_retry(rater, uow, principal.tenant, handlers.for_extensions(extension))
    rater.wake_retries()
    return schemas.ExtensionSaved(extension=extension, **body.model_dump(), retry=retry)


@directory.delete(
    "/extensions/{extension}",
    status_code=204,
    summary="Remove an extension and its aliases; its rated calls keep their attribution",
)
async def delete_extension(extension: str, rater: RaterDep, principal: Writer) -> Response:
    async with rater.runtime.units() as uow:
        removed = await sql.delete_extension(uow.session, principal.tenant, extension)
    if not removed:
        raise NotFound(f"extension {extension} is not in the directory")
    return Response(status_code=204)


@directory.post(
    "/extensions/import",
    summary="Import an extension directory file (CSV)",
    openapi_extra=csv_body(schemas.EXTENSIONS_EXAMPLE),
)
async def import_extensions(request: Request, rater: RaterDep, principal: Writer) -> schemas.ExtensionsImported:
    entries = parse_extensions_csv(await read_text(request))
    async with rater.runtime.units() as uow:
        for entry in entries:
            await sql.save_extension(uow.session, principal.tenant, entry)
        retry = await queue_retry(
            rater, uow, principal.tenant, handlers.for_extensions(*(entry.extension for entry in entries))
        )
    rater.wake_retries()
    return schemas.ExtensionsImported(imported=len(entries), retry=retry)


@directory.get("/extensions", summary="The extension directory")
async def list_extensions(rater: RaterDep, principal: Reader) -> list[schemas.ExtensionOut]:
    async with rater.runtime.units() as uow:
        rows = (
            await uow.session.exec(
                select(ExtensionRow)
                .where(ExtensionRow.tenant == principal.tenant)
                .order_by(col(ExtensionRow.extension))
            )
        ).all()
    return [
        schemas.ExtensionOut(
            extension=row.extension,
            line_id=row.line_id,
            customer_id=row.customer_id,
            contract_id=row.contract_id,
            cost_centre=row.cost_centre,
            department=row.department,
            allowed_classes=sorted(sql.classes_of(row.allowed_classes) or [])
            if row.allowed_classes is not None
            else None,
        )
        for row in rows
    ]


@directory.put("/aliases/{number}", summary="Attribute calls of a DID or number to an extension")
async def put_alias(number: str, body: schemas.AliasIn, rater: RaterDep, principal: Writer) -> schemas.AliasSaved:
    if not any(ch.isdigit() for ch in number):
        raise InvalidInput("number", "must contain digits")
    async with rater.runtime.units() as uow:
        await sql.save_alias(uow.session, principal.tenant, number, body.extension)
        retry = await queue_retry(rater, uow, principal.tenant, handlers.for_extensions(body.extension))
    rater.wake_retries()
    digits = "".join(ch for ch in number if ch.isdigit())
    return schemas.AliasSaved(number=digits, extension=body.extension, retry=retry)


@directory.delete("/aliases/{number}", status_code=204, summary="Stop attributing calls of a number")
async def delete_alias(number: str, rater: RaterDep, principal: Writer) -> Response:
    async with rater.runtime.units() as uow:
        removed = await sql.delete_alias(uow.session, principal.tenant, number)
    if not removed:
        raise NotFound(f"{number} is not an alias")
    return Response(status_code=204)


allowances = APIRouter(prefix="/allowances", tags=["allowances"])


@allowances.put("/{line_id}", summary="Minutes included per cycle, due day and credit limit of a line")
async def put_allowance(
    line_id: str, body: schemas.AllowanceIn, rater: RaterDep, principal: Writer
) -> schemas.AllowanceIn:
    allowance = Allowance(line_id, body.included_minutes * 60, body.due_day, body.credit_limit, body.contract_id)
    async with rater.runtime.units() as uow:
        await sql.save_allowance(uow.session, principal.tenant, allowance)
    return body


@allowances.get(
    "/{line_id}/usage", summary="A line's use of its allowance in the cycle containing `day` (default today)"
)
async def get_usage(line_id: str, rater: RaterDep, principal: Reader, day: date | None = None) -> schemas.UsageOut:
    async with rater.runtime.units() as uow:
        allowance = await uow.session.get(AllowanceRow, (principal.tenant, line_id))
        if allowance is None:
            raise NotFound(f"line {line_id} has no allowance; set one with PUT /v1/allowances/{line_id}")
        start, end = cycle_of(day or datetime.now(UTC).date(), allowance.due_day)
        usage = await uow.session.get(LineUsageRow, (principal.tenant, line_id, start))
    return schemas.UsageOut(
        line_id=line_id,
        cycle_start=start,
        cycle_end=end,
        included_seconds=usage.included_seconds if usage else allowance.included_seconds,
        used_seconds=usage.used_seconds if usage else 0,
        spent=usage.spent if usage else Decimal(0),
        thresholds_announced=[int(x) for x in usage.announced.split(",") if x] if usage else [],
        credit_exceeded=usage.credit_announced if usage else False,
    )


calls = APIRouter(tags=["calls"])


def call_filter(
    principal: Reader,
    start: Annotated[
        datetime | None, Query(description="from (inclusive)", examples=["2026-11-01T00:00:00-03:00"])
    ] = None,
    end: Annotated[datetime | None, Query(description="until (exclusive)")] = None,
    extension: str | None = None,
    cost_centre: str | None = None,
    call_class: Annotated[str | None, Query(examples=["vc1"])] = None,
    number: Annotated[str | None, Query(description="part of the dialled or E.164 number")] = None,
    transferred: bool | None = None,
    answered_by: Annotated[str | None, Query(description="the extension that answered")] = None,
) -> reports.CallFilter:
    return reports.CallFilter(
        tenant=principal.tenant,
        start=aware(start, "start") if start else None,
        end=aware(end, "end") if end else None,
        extension=extension,
        cost_centre=cost_centre,
        call_class=call_class,
        number=number,
        transferred=transferred,
        answered_by=answered_by,
    )


Filter = Annotated[reports.CallFilter, Depends(call_filter)]


def rated_out(row: CallRow) -> schemas.RatedCallOut:
    return schemas.RatedCallOut.model_validate(row, from_attributes=True)


@calls.get("/rated-calls", summary="Rated calls, filtered, oldest first")
async def list_rated_calls(
    where: Filter,
    rater: RaterDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[schemas.RatedCallOut]:
    async with rater.runtime.units() as uow:
        rows = await reports.list_calls(uow.session, where, limit, offset)
    return [rated_out(row) for row in rows]


@calls.get("/rated-calls/totals", summary="Totals by extension, cost centre, class, day or month")
async def rated_call_totals(
    where: Filter,
    rater: RaterDep,
    group_by: Annotated[
        str, Query(description=f"one of {', '.join(reports.GROUPS)}", examples=["cost_centre"])
    ] = "extension",
) -> list[schemas.TotalOut]:
    if group_by not in reports.GROUPS:
        raise InvalidInput("group_by", f"must be one of {', '.join(reports.GROUPS)}")
    async with rater.runtime.units() as uow:
        found = await reports.totals(uow.session, where, group_by)
    return [schemas.TotalOut.model_validate(total, from_attributes=True) for total in found]


@calls.get(
    "/rated-calls.csv",
    summary="Rated calls, filtered, as CSV",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {"example": ",".join(reports.CSV_FIELDS) + "\n"}}}},
)
async def export_rated_calls(where: Filter, rater: RaterDep) -> PlainTextResponse:
    async with rater.runtime.units() as uow:
        text = await reports.calls_csv(uow.session, where)
    return PlainTextResponse(
        text, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="rated-calls.csv"'}
    )


@calls.get(
    "/rated-calls.xlsx",
    summary="Rated calls, filtered, and their totals, as an XLSX workbook",
    response_class=Response,
    responses={200: {"content": {reports.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def export_rated_calls_xlsx(
    where: Filter,
    rater: RaterDep,
    group_by: Annotated[str, Query(description=f"totals sheet: one of {', '.join(reports.GROUPS)}")] = "cost_centre",
) -> Response:
    if group_by not in reports.GROUPS:
        raise InvalidInput("group_by", f"must be one of {', '.join(reports.GROUPS)}")
    async with rater.runtime.units() as uow:
        content = await reports.calls_xlsx(uow.session, where, group_by)
    return Response(
        content,
        media_type=reports.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="rated-calls.xlsx"'},
    )


@calls.get("/unrated-calls", summary="Calls waiting for a tariff or an extension, with the reason")
async def list_unrated_calls(
    rater: RaterDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[schemas.UnratedOut]:
    where = reports.CallFilter(tenant=principal.tenant, status="unrated")
    async with rater.runtime.units() as uow:
        rows = await reports.list_calls(uow.session, where, limit, offset)
    return [schemas.UnratedOut.model_validate(row, from_attributes=True) for row in rows]


@calls.get(
    "/unrated-calls/retry",
    summary="The tenant's queued retry of waiting calls: state, what it covers, progress, last error",
)
async def get_retry(rater: RaterDep, principal: Reader) -> schemas.RetryOut:
    async with rater.runtime.units() as uow:
        row = await uow.session.get(RetryRow, principal.tenant)
        waiting_calls = await retries.waiting_calls(uow.session, principal.tenant)
    if row is None:
        return schemas.RetryOut(state="idle", waiting_calls=waiting_calls)
    return schemas.RetryOut(
        state=row.state,
        reasons=row.reasons.split(),
        extensions=row.extensions.split(),
        every_call=row.every_call,
        requests=row.requests,
        examined=row.examined,
        rated=row.rated,
        waiting_calls=waiting_calls,
        attempts=row.attempts,
        error=row.error,
        requested_at=row.requested_at,
        worked_at=row.worked_at,
        finished_at=row.finished_at,
    )


@calls.post("/rerates", summary="Re-rate a period (optionally one source or line): changed calls get a new version")
async def rerate(body: schemas.RerateIn, rater: RaterDep, principal: Writer) -> schemas.RerateOut:
    start, end = aware(body.start, "start"), aware(body.end, "end")
    if end <= start:
        raise InvalidInput("end", "must be after start")
    progress = await rater.rerate(RerateScope(principal.tenant, start, end, body.source_id, body.line))
    return schemas.RerateOut(
        examined=progress.examined,
        changed=progress.changed,
        newly_rated=progress.newly_rated,
        still_unrated=progress.still_unrated,
        difference=progress.difference,
    )


ROUTERS = (tariffs, settings_router, directory, allowances, calls)
