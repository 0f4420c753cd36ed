"""The voip-summit's HTTP API: integrations, number ranges, catalogue, SIP lines, DIDs, the Summit queue."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from tarifa_common import auth
from tarifa_common.config import ServiceSettings
from tarifa_common.errors import InvalidInput
from tarifa_common.http import create_app as create_service_app
from tarifa_common.http import require
from tarifa_voip_summit import __doc__ as summary
from tarifa_voip_summit.adapters.store import SqlSummitStore, range_of
from tarifa_voip_summit.adapters.tables import IntegrationRow, LineRow
from tarifa_voip_summit.bootstrap import VoipSummit, bootstrap
from tarifa_voip_summit.config import VoipSummitSettings
from tarifa_voip_summit.domain.model import (
    CatalogueMode,
    ImportPeriod,
    ImportSchedule,
    LineFields,
    NumberRange,
    NumberStatus,
    Partition,
    check_account_code,
    check_call_limit,
    check_credit_limit,
    check_due_day,
    normalise_number,
)
from tarifa_voip_summit.entrypoints.schemas import (
    AuditPublic,
    CatalogueItemCreate,
    CatalogueItemPublic,
    DidCreate,
    DidPublic,
    DriftPublic,
    ImportScheduleBody,
    IntegrationCreate,
    IntegrationPublic,
    IntegrationUpdate,
    LineCreate,
    LinePublic,
    LineUpdate,
    NumberPage,
    NumberPublic,
    NumberRangeCreate,
    NumberRangePublic,
    OperationPublic,
    PartitionBody,
    PartitionCreate,
    PartitionPublic,
)

Admin = Annotated[auth.Principal, require(auth.ADMIN)]
Operator = Annotated[auth.Principal, require(auth.OPERATOR, auth.SERVICE)]
Reader = Annotated[auth.Principal, require(auth.OPERATOR, auth.VIEWER, auth.SERVICE)]
CATALOGUE_KINDS = {"categories": "category", "licences": "licence", "plans": "plan", "cost-centres": "cost_centre"}


def voip_of(request: Request) -> VoipSummit:
    voip: VoipSummit = request.app.state.voip
    return voip


Voip = Annotated[VoipSummit, Depends(voip_of)]


async def store_of(voip: Voip) -> AsyncIterator[SqlSummitStore]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    async with voip.runtime.units() as uow:
        yield voip.store(uow)


# scope="function": the transaction commits before the answer is sent, so a failed commit is a failed request.
Store = Annotated[SqlSummitStore, Depends(store_of, scope="function")]


def integration_public(row: IntegrationRow) -> IntegrationPublic:
    data = row.model_dump(exclude={"access_password_encrypted", "tenant", "import_schedule"})
    schedule = ImportSchedule.parse(row.import_schedule)
    return IntegrationPublic(
        **data,
        import_schedule=ImportScheduleBody(**dataclasses.asdict(schedule)),
        import_cron=schedule.cron(ImportPeriod(row.import_period)),
        password_set=bool(row.access_password_encrypted),
    )


def checked_schedule(period: ImportPeriod, body: ImportScheduleBody | None) -> str:
    """The stored form of the schedule, checked against the period; the period's default when none is given."""
    if body is None:
        default = ImportSchedule(day_of_month="1" if period is ImportPeriod.MONTHLY else "all")
        return default.checked(period).stored()
    return ImportSchedule(**body.model_dump()).checked(period).stored()


def line_public(row: LineRow) -> LinePublic:
    return LinePublic(**{**row.model_dump(exclude={"tenant", "created_at", "updated_at"}), "number": f"+{row.number}"})


def partition_public(partition: Partition) -> PartitionPublic:
    return PartitionPublic(
        code=partition.code,
        description=partition.description,
        blocking_enabled=partition.blocking_enabled,
        default_category=partition.default_category,
        block_category=partition.block_category,
        partial_block_category=partition.partial_block_category,
        cancellation_category=partition.cancellation_category,
        extra_categories=list(partition.extra_categories),
        allowed_categories=sorted(partition.allowed_categories),
    )


def partition_from(code: str, body: PartitionBody) -> Partition:
    return Partition.checked(
        code,
        body.description,
        body.blocking_enabled,
        body.default_category,
        body.block_category,
        body.partial_block_category,
        body.cancellation_category,
        tuple(body.extra_categories),
    )


integrations = APIRouter(prefix="/integrations", tags=["integrations"])


@integrations.post("", status_code=201, summary="Register a Summit integration (the password is stored encrypted)")
async def create_integration(body: IntegrationCreate, who: Admin, store: Store) -> IntegrationPublic:
    fields = body.model_dump(exclude={"access_password", "import_schedule"}, mode="json")
    fields["import_schedule"] = checked_schedule(body.import_period, body.import_schedule)
    return integration_public(await store.create_integration(who.tenant, body.access_password, fields))


@integrations.get("", summary="The tenant's Summit integrations (never with the password)")
async def list_integrations(who: Reader, store: Store) -> list[IntegrationPublic]:
    return [integration_public(r) for r in await store.integrations(who.tenant)]


@integrations.get("/{integration_id}", summary="One integration; the collector reads CDR import settings here")
async def get_integration(integration_id: str, who: Reader, store: Store) -> IntegrationPublic:
    return integration_public(await store.integration(who.tenant, integration_id))


@integrations.patch("/{integration_id}", summary="Change an integration; send access_password only to replace it")
async def update_integration(
    integration_id: str, body: IntegrationUpdate, who: Admin, store: Store
) -> IntegrationPublic:
    changes = body.model_dump(exclude_unset=True, exclude={"access_password", "import_schedule"}, mode="json")
    if body.import_schedule is not None or body.import_period is not None:
        # The pair is checked together: a period changed alone must still fit the stored schedule.
        current = await store.integration(who.tenant, integration_id)
        period = body.import_period or ImportPeriod(current.import_period)
        schedule = body.import_schedule or ImportScheduleBody(
            **dataclasses.asdict(ImportSchedule.parse(current.import_schedule))
        )
        changes["import_schedule"] = checked_schedule(period, schedule)
    row = await store.update_integration(who.tenant, integration_id, body.access_password, changes)
    return integration_public(row)


@integrations.get(
    "/{integration_id}/summit/{resource}",
    summary="Live catalogue: partitions, licences, plans or cost-centres as Summit lists them now",
)
async def live_catalogue(integration_id: str, resource: str, who: Reader, voip: Voip, store: Store) -> Any:
    if resource not in {"partitions", "licences", "plans", "cost-centres", "categories"}:
        raise InvalidInput("resource", "must be partitions, licences, plans, cost-centres or categories")
    address = store.address(await store.integration(who.tenant, integration_id), voip.settings.summit_scheme)
    return await voip.client(address).fetch(resource)


@integrations.get(
    "/{integration_id}/summit/partitions/{code}/categories",
    summary="Live catalogue: the categories Summit allows in one partition",
)
async def live_partition_categories(integration_id: str, code: str, who: Reader, voip: Voip, store: Store) -> Any:
    address = store.address(await store.integration(who.tenant, integration_id), voip.settings.summit_scheme)
    return await voip.client(address).partition_categories(code)


ranges = APIRouter(prefix="/number-ranges", tags=["numbers"])


@ranges.post("", status_code=201, summary="Register a range of numbers received from the carrier")
async def create_range(body: NumberRangeCreate, who: Admin, store: Store) -> NumberRangePublic:
    checked = NumberRange.checked(body.name, body.prefix, body.first, body.last)
    row = await store.create_range(who.tenant, checked)
    return NumberRangePublic(
        **row.model_dump(include={"id", "name", "prefix", "first", "last"}), size=checked.size, in_use=0
    )


@ranges.get("", summary="Number ranges with how many numbers are in use")
async def list_ranges(who: Reader, store: Store) -> list[NumberRangePublic]:
    result = []
    for row in await store.ranges(who.tenant):
        in_use, _ = await store.numbers(who.tenant, row.id, NumberStatus.IN_USE, 0, 0)
        result.append(
            NumberRangePublic(
                **row.model_dump(include={"id", "name", "prefix", "first", "last"}),
                size=range_of(row).size,
                in_use=in_use,
            )
        )
    return result


@ranges.get("/{range_id}/numbers", summary="Each number of a range: available or in use (and by which line)")
async def list_numbers(
    range_id: str,
    who: Reader,
    store: Store,
    status: NumberStatus | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NumberPage:
    in_use, rows = await store.numbers(who.tenant, range_id, status, offset, limit)
    size = range_of(await store.range_row(who.tenant, range_id)).size
    return NumberPage(
        range_id=range_id,
        in_use=in_use,
        available=size - in_use,
        numbers=[NumberPublic(number=f"+{n}", status=s, line_id=line) for n, s, line in rows],
    )


catalogue = APIRouter(tags=["catalogue"])


@catalogue.post("/partitions", status_code=201, summary="Register a Summit partition and its blocking categories")
async def create_partition(body: PartitionCreate, who: Admin, store: Store) -> PartitionPublic:
    partition = partition_from(body.code, body)
    await store.create_partition(who.tenant, partition)
    return partition_public(partition)


@catalogue.put("/partitions/{code}", summary="Change a partition's description and blocking categories")
async def update_partition(code: str, body: PartitionBody, who: Admin, store: Store) -> PartitionPublic:
    partition = partition_from(code, body)
    await store.update_partition(who.tenant, partition)
    return partition_public(partition)


@catalogue.get("/partitions", summary="The tenant's partitions")
async def list_partitions(who: Reader, store: Store) -> list[PartitionPublic]:
    return [partition_public(p) for p in await store.partitions(who.tenant)]


@catalogue.post("/catalogue/{kind}", status_code=201, summary="Add a category, licence, plan or cost centre")
async def create_item(kind: str, body: CatalogueItemCreate, who: Admin, store: Store) -> CatalogueItemPublic:
    row = await store.create_item(who.tenant, _kind(kind), body.code, body.description)
    return CatalogueItemPublic(id=row.id, code=row.code, description=row.description)


@catalogue.get("/catalogue/{kind}", summary="List categories, licences, plans or cost-centres")
async def list_items(kind: str, who: Reader, store: Store) -> list[CatalogueItemPublic]:
    rows = await store.items(who.tenant, _kind(kind))
    return [CatalogueItemPublic(id=r.id, code=r.code, description=r.description) for r in rows]


def _kind(kind: str) -> str:
    if kind not in CATALOGUE_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(CATALOGUE_KINDS)}")
    return CATALOGUE_KINDS[kind]


lines = APIRouter(prefix="/lines", tags=["SIP lines"])


def line_fields(body: LineCreate) -> LineFields:
    return LineFields(
        contract_id=body.contract_id,
        integration_id=body.integration_id,
        bid_type=body.bid_type,
        number=normalise_number(body.number, "number"),
        partition=body.partition,
        category=body.category,
        plan=body.plan,
        due_day=check_due_day(body.due_day),
        cost_centre=body.cost_centre,
        call_limit=check_call_limit(body.call_limit),
        licence=body.licence,
        billing_plan=body.billing_plan,
        description=body.description,
        account_code=check_account_code(body.account_code),
        extension=body.extension,
        active=body.active,
        activation_date=body.activation_date,
        credit_limit=check_credit_limit(body.credit_limit),
        city=body.city,
    )


async def check_live_catalogue(voip: VoipSummit, store: SqlSummitStore, tenant: str, fields: LineFields) -> None:
    """In live mode, the partition, its categories, the licence and the plan must be Summit's own."""
    integration = await store.integration(tenant, fields.integration_id)
    if integration.catalogue_mode != CatalogueMode.LIVE.value:
        return
    client = voip.client(store.address(integration, voip.settings.summit_scheme))
    partitions = {p["code"] for p in await client.fetch("partitions")}
    if fields.partition not in partitions:
        raise InvalidInput("partition", f"Summit has no partition {fields.partition!r}; it has {sorted(partitions)}")
    allowed = {c["code"] for c in await client.partition_categories(fields.partition)}
    if fields.category not in allowed:
        raise InvalidInput(
            "category",
            f"{fields.category!r} is not allowed in partition {fields.partition!r}; choose {sorted(allowed)}",
        )
    for resource, name, value in (("plans", "plan", fields.plan), ("licences", "licence", fields.licence)):
        codes = {item["code"] for item in await client.fetch(resource)}
        if value is not None and value not in codes:
            raise InvalidInput(name, f"Summit has no {name} {value!r}; it has {sorted(codes)}")


@lines.post("", status_code=201, summary="Create a SIP line; Summit creates its terminal in the background")
async def create_line(body: LineCreate, who: Operator, voip: Voip, store: Store) -> LinePublic:
    fields = line_fields(body)
    await check_live_catalogue(voip, store, who.tenant, fields)
    row = await store.create_line(who.tenant, fields, f"api:{who.subject}")
    return line_public(row)


@lines.get("", summary="The tenant's lines, optionally of one contract")
async def list_lines(who: Reader, store: Store, contract_id: str | None = None) -> list[LinePublic]:
    return [line_public(r) for r in await store.lines(who.tenant, contract_id)]


@lines.get("/{line_id}", summary="One line, with its Summit terminal, credential and sync status")
async def get_line(line_id: str, who: Reader, store: Store) -> LinePublic:
    return line_public(await store.line(who.tenant, line_id))


@lines.patch("/{line_id}", summary="Update, activate or deactivate a line")
async def update_line(line_id: str, body: LineUpdate, who: Operator, store: Store) -> LinePublic:
    changes = body.model_dump(exclude_unset=True)
    checks = {"due_day": check_due_day, "call_limit": check_call_limit}
    for name, check in checks.items():
        if changes.get(name) is not None:
            check(changes[name])
    if isinstance(changes.get("credit_limit"), Decimal):
        check_credit_limit(changes["credit_limit"])
    for name in ("category", "plan", "due_day", "cost_centre", "call_limit", "active"):
        if name in changes and changes[name] is None:
            raise InvalidInput(name, "must not be null")
    return line_public(await store.update_line(who.tenant, line_id, changes, f"api:{who.subject}"))


@lines.post("/{line_id}/cancel", summary="Cancel a line: its numbers are freed and its terminal removed from Summit")
async def cancel_line(line_id: str, who: Operator, store: Store) -> LinePublic:
    return line_public(await store.cancel_line(who.tenant, line_id, f"api:{who.subject}"))


@lines.post("/{line_id}/dids", status_code=201, summary="Add a DID (number from a range, priority, port)")
async def add_did(line_id: str, body: DidCreate, who: Operator, store: Store) -> DidPublic:
    number = normalise_number(body.number, "number")
    did = await store.add_did(who.tenant, line_id, number, body.priority, body.port, f"api:{who.subject}")
    return DidPublic(number=f"+{did.number}", priority=did.priority, port=did.port, port_id=did.port_id, city=did.city)


@lines.get("/{line_id}/dids", summary="A line's DIDs")
async def list_dids(line_id: str, who: Reader, store: Store) -> list[DidPublic]:
    await store.line(who.tenant, line_id)
    return [
        DidPublic(number=f"+{d.number}", priority=d.priority, port=d.port, port_id=d.port_id, city=d.city)
        for d in await store.dids(who.tenant, line_id)
    ]


@lines.delete("/{line_id}/dids/{number}", status_code=204, summary="Remove a DID from a line")
async def remove_did(line_id: str, number: str, who: Operator, store: Store) -> None:
    await store.remove_did(who.tenant, line_id, normalise_number(number, "number"), f"api:{who.subject}")


@lines.get("/{line_id}/operations", summary="The line's Summit operations: pending, applied or failed")
async def list_operations(line_id: str, who: Reader, store: Store) -> list[OperationPublic]:
    await store.line(who.tenant, line_id)
    return [
        OperationPublic.model_validate(o, from_attributes=True) for o in await store.operations(who.tenant, line_id)
    ]


@lines.get("/{line_id}/audit", summary="Every change of the line: what, why, which event")
async def list_audit(line_id: str, who: Reader, store: Store) -> list[AuditPublic]:
    await store.line(who.tenant, line_id)
    return [AuditPublic.model_validate(a, from_attributes=True) for a in await store.audit(who.tenant, line_id)]


operations = APIRouter(tags=["Summit queue"])


@operations.post("/operations/{operation_id}/retry", summary="Queue a failed Summit operation again")
async def retry_operation(operation_id: int, who: Operator, store: Store) -> OperationPublic:
    row = await store.retry_operation(who.tenant, operation_id)
    return OperationPublic.model_validate(row, from_attributes=True)


@operations.post("/reconciliations", summary="Compare our lines with Summit's now; drift raises an alert")
async def reconcile(who: Admin, voip: Voip) -> list[DriftPublic]:
    report = await voip.provisioner.reconcile()
    return [
        DriftPublic(
            integration_id=integration_id,
            missing_on_summit=drift.missing_on_summit,
            unknown_on_summit=drift.unknown_on_summit,
            mismatched=drift.mismatched,
        )
        for integration_id, drift in report.items()
    ]


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, VoipSummitSettings)
    voip = bootstrap(settings)
    app = create_service_app(
        voip.runtime,
        title="Tarifa voip-summit",
        description=summary or "",
        version="0.1.0",
        routers=[integrations, ranges, catalogue, lines, operations],
        openapi_tags=[
            {"name": "integrations", "description": "Summit integration settings per tenant"},
            {"name": "numbers", "description": "Number ranges and the status of each number"},
            {"name": "catalogue", "description": "Partitions, categories, licences, plans, cost centres"},
            {"name": "SIP lines", "description": "Lines, DIDs, their Summit operations and audit"},
            {"name": "Summit queue", "description": "Retry failed operations, reconcile with Summit"},
        ],
    )
    app.state.voip = voip
    return app
