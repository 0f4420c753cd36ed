"""The invoicer's HTTP API: billing profile, customers, contracts, billing runs, invoices and their EDI."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response, status
from sqlmodel import select

from tarifa_common import auth
from tarifa_common.config import ServiceSettings
from tarifa_common.errors import InvalidInput
from tarifa_common.events import utcnow
from tarifa_common.http import create_app as create_service_app
from tarifa_common.http import require, runtime_of
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_invoicer import __doc__ as summary
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters import accounts, delivery, mail, pdf, reports, runs
from tarifa_invoicer.adapters.backlog import KafkaRatedCallBacklog
from tarifa_invoicer.adapters.collector import HttpWatermarks
from tarifa_invoicer.adapters.store import SqlStore
from tarifa_invoicer.adapters.tables import BillingRun, Delivery, InvoiceRow, Mailing
from tarifa_invoicer.bootstrap import bootstrap
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.accounts import EdiFormat, check_emails
from tarifa_invoicer.domain.invoice import Period
from tarifa_invoicer.entrypoints import schemas

Operator = Annotated[auth.Principal, require(auth.OPERATOR)]
Viewer = Annotated[auth.Principal, require(auth.OPERATOR, auth.VIEWER, auth.SERVICE)]
Admin = Annotated[auth.Principal, require(auth.ADMIN)]
_RUNNING: set[asyncio.Task[Any]] = set()


def units_of(request: Request) -> UnitOfWorkFactory:
    return runtime_of(request).units


def run_out(run: BillingRun) -> schemas.RunOut:
    return schemas.RunOut.model_validate({**run.model_dump(), "checks": json.loads(run.checks)})


def invoice_out(row: InvoiceRow, with_lines: bool = False) -> schemas.InvoiceOut:
    values = row.model_dump(exclude={"lines", "ubl", "edifact"})
    return schemas.InvoiceOut.model_validate({**values, "lines": json.loads(row.lines) if with_lines else []})


def customer_out(row: Any) -> schemas.CustomerOut:
    values = row.model_dump(exclude={"edi_signing_key"})  # write-only: the key never leaves the service
    return schemas.CustomerOut.model_validate(
        {**values, "emails": json.loads(row.emails), "edi_signing_key_set": bool(row.edi_signing_key)}
    )


router = APIRouter()


async def _quietly(job: Awaitable[object]) -> None:
    """A background run's failure is logged and recorded on its row (`status: failed`); nothing else to do."""
    with contextlib.suppress(Exception):
        await job


@router.put("/billing-profile", tags=["profile"], summary="Set the tenant's seller details, tax rate and series")
async def put_profile(body: schemas.ProfileIn, request: Request, principal: Admin) -> schemas.ProfileOut:
    async with units_of(request)() as uow:
        profile = await accounts.save_profile(uow.session, principal.tenant, body.model_dump())
        return schemas.ProfileOut.model_validate(profile.model_dump())


@router.post("/customers", tags=["customers"], status_code=status.HTTP_201_CREATED, summary="Create a customer")
async def post_customer(body: schemas.CustomerIn, request: Request, principal: Operator) -> schemas.CustomerOut:
    async with units_of(request)() as uow:
        return customer_out(await accounts.create_customer(uow.session, principal.tenant, body.model_dump()))


@router.get("/customers", tags=["customers"], summary="List customers")
async def get_customers(request: Request, principal: Viewer) -> list[schemas.CustomerOut]:
    async with units_of(request)() as uow:
        return [customer_out(c) for c in await accounts.list_customers(uow.session, principal.tenant)]


@router.get("/customers/{customer_id}", tags=["customers"], summary="One customer")
async def get_customer(customer_id: str, request: Request, principal: Viewer) -> schemas.CustomerOut:
    async with units_of(request)() as uow:
        return customer_out(await accounts.get_customer(uow.session, principal.tenant, customer_id))


@router.post(
    "/contracts",
    tags=["contracts"],
    status_code=status.HTTP_201_CREATED,
    summary="Create an active contract (published on contract.status)",
)
async def post_contract(body: schemas.ContractIn, request: Request, principal: Operator) -> schemas.ContractOut:
    async with units_of(request)() as uow:
        contract = await accounts.create_contract(uow, principal.tenant, body.model_dump())
        return schemas.ContractOut.model_validate(contract.model_dump())


@router.get("/contracts", tags=["contracts"], summary="List contracts")
async def get_contracts(
    request: Request, principal: Viewer, customer_id: str | None = None
) -> list[schemas.ContractOut]:
    async with units_of(request)() as uow:
        rows = await accounts.list_contracts(uow.session, principal.tenant, customer_id)
        return [schemas.ContractOut.model_validate(row.model_dump()) for row in rows]


@router.get("/contracts/{contract_id}", tags=["contracts"], summary="One contract")
async def get_contract(contract_id: str, request: Request, principal: Viewer) -> schemas.ContractOut:
    async with units_of(request)() as uow:
        row = await accounts.get_contract(uow.session, principal.tenant, contract_id)
        return schemas.ContractOut.model_validate(row.model_dump())


@router.post(
    "/contracts/{contract_id}/status",
    tags=["contracts"],
    summary="Change a contract's status (published on contract.status; voip-summit blocks or releases its lines)",
)
async def post_status(
    contract_id: str, body: schemas.StatusIn, request: Request, principal: Operator
) -> schemas.ContractOut:
    async with units_of(request)() as uow:
        await handlers.change_contract_status(SqlStore(uow), principal.tenant, contract_id, body.status, body.reason)
        row = await accounts.get_contract(uow.session, principal.tenant, contract_id)
        return schemas.ContractOut.model_validate(row.model_dump())


@router.post(
    "/contracts/{contract_id}/lines",
    tags=["contracts"],
    status_code=status.HTTP_201_CREATED,
    summary="Assign a line or extension to the contract",
)
async def post_line(contract_id: str, body: schemas.LineIn, request: Request, principal: Operator) -> schemas.LineIn:
    async with units_of(request)() as uow:
        await accounts.assign_line(uow.session, principal.tenant, contract_id, body.line_id, body.assigned_on)
    return body


@router.post(
    "/contracts/lines/import",
    tags=["contracts"],
    summary="Assign lines from a CSV file (contract_id,line_id,assigned_on); all or nothing",
    openapi_extra={
        "requestBody": {
            "content": {"text/csv": {"example": "contract_id,line_id,assigned_on\n9b2f...,ext-201,2026-10-01\n"}},
            "required": True,
        }
    },
)
async def import_lines(request: Request, principal: Operator) -> dict[str, int]:
    text = (await request.body()).decode("utf-8-sig")
    async with units_of(request)() as uow:
        return {"assigned": await accounts.import_lines(uow.session, principal.tenant, text)}


@router.post(
    "/contracts/{contract_id}/lines/{line_id}/end",
    tags=["contracts"],
    summary="End a line's assignment (its charges end with it)",
)
async def end_line(
    contract_id: str, line_id: str, body: schemas.LineEnd, request: Request, principal: Operator
) -> schemas.LineEnd:
    async with units_of(request)() as uow:
        await accounts.end_line(uow.session, principal.tenant, contract_id, line_id, body.ended_on)
    return body


@router.post(
    "/contracts/{contract_id}/charges",
    tags=["contracts"],
    status_code=status.HTTP_201_CREATED,
    summary="Add a recurring or one-off charge to the contract or one of its lines",
)
async def post_charge(
    contract_id: str, body: schemas.ChargeIn, request: Request, principal: Operator
) -> schemas.ChargeOut:
    async with units_of(request)() as uow:
        charge = await accounts.add_charge(uow.session, principal.tenant, contract_id, body.model_dump())
        return schemas.ChargeOut.model_validate(charge.model_dump())


@router.post(
    "/billing-runs",
    tags=["billing"],
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a billing run for a period (dry run first if you like); follow it on GET /billing-runs/{id}",
)
async def post_run(body: schemas.RunIn, request: Request, principal: Operator) -> schemas.RunOut:
    period = Period.month(body.period)
    units = units_of(request)
    async with units() as uow:
        await SqlStore(uow).seller(principal.tenant)  # fail now, not in the background, without a profile
    settings = runtime_of(request).settings
    assert isinstance(settings, InvoicerSettings)
    run_id = await runs.create_run(units, principal.tenant, period, body.dry_run)
    task = asyncio.create_task(
        _quietly(
            runs.execute_run(
                units,
                run_id,
                principal.tenant,
                period,
                dry_run=body.dry_run,
                hold_on_findings=body.hold_on_findings,
                issue_date=body.issue_date or utcnow().date(),
                watermarks=HttpWatermarks.from_settings(settings),
                backlog=KafkaRatedCallBacklog.from_settings(settings),
            )
        )
    )
    _RUNNING.add(task)  # keep a reference until it ends (asyncio holds tasks weakly); failures are on the run row
    task.add_done_callback(_RUNNING.discard)
    async with units() as uow:
        return run_out(await accounts.get_run(uow.session, principal.tenant, run_id))


@router.get("/billing-runs/{run_id}", tags=["billing"], summary="A billing run's progress, pre-checks and outcome")
async def get_run(run_id: str, request: Request, principal: Viewer) -> schemas.RunOut:
    async with units_of(request)() as uow:
        return run_out(await accounts.get_run(uow.session, principal.tenant, run_id))


@router.get("/invoices", tags=["invoices"], summary="Invoices and credit notes, by number")
async def get_invoices(
    request: Request,
    principal: Viewer,
    period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"])] = None,
    customer_id: str | None = None,
) -> list[schemas.InvoiceOut]:
    start = Period.month(period).start if period else None
    async with units_of(request)() as uow:
        return [invoice_out(r) for r in await accounts.list_invoices(uow.session, principal.tenant, start, customer_id)]


@router.get("/invoices/{invoice_id}", tags=["invoices"], summary="One invoice with its lines")
async def get_invoice(invoice_id: str, request: Request, principal: Viewer) -> schemas.InvoiceOut:
    async with units_of(request)() as uow:
        return invoice_out(await accounts.get_invoice(uow.session, principal.tenant, invoice_id), with_lines=True)


@router.get(
    "/invoices/{invoice_id}/ubl",
    tags=["invoices"],
    summary="The UBL 2.1 document (Peppol BIS Billing 3.0)",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def get_ubl(invoice_id: str, request: Request, principal: Viewer) -> Response:
    async with units_of(request)() as uow:
        row = await accounts.get_invoice(uow.session, principal.tenant, invoice_id)
    return Response(
        row.ubl,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{row.number}.xml"'},
    )


@router.get(
    "/invoices/{invoice_id}/edifact",
    tags=["invoices"],
    summary="The EDIFACT INVOIC D96A (EANCOM) interchange",
    response_class=Response,
    responses={200: {"content": {"application/EDIFACT": {}}}},
)
async def get_edifact(invoice_id: str, request: Request, principal: Viewer) -> Response:
    async with units_of(request)() as uow:
        row = await accounts.get_invoice(uow.session, principal.tenant, invoice_id)
    return Response(
        row.edifact.encode("latin-1", errors="replace"),
        media_type="application/EDIFACT",
        headers={"Content-Disposition": f'attachment; filename="{row.number}.edi"'},
    )


@router.get(
    "/invoices/{invoice_id}/pdf",
    tags=["invoices"],
    summary="The invoice as PDF, with the call-detail annex",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_pdf(invoice_id: str, request: Request, principal: Viewer) -> Response:
    async with units_of(request)() as uow:
        store = SqlStore(uow)
        invoice = await store.invoice(principal.tenant, invoice_id)
        calls = await store.call_detail(principal.tenant, invoice_id)
    content = await asyncio.to_thread(pdf.render, invoice, calls)
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
    )


@router.get("/invoices/{invoice_id}/deliveries", tags=["invoices"], summary="EDI pushes of the invoice and their log")
async def get_deliveries(invoice_id: str, request: Request, principal: Viewer) -> list[dict[str, Any]]:
    async with units_of(request)() as uow:
        await accounts.get_invoice(uow.session, principal.tenant, invoice_id)
        rows = (
            await uow.session.exec(
                select(Delivery).where(Delivery.tenant == principal.tenant, Delivery.invoice_id == invoice_id)
            )
        ).all()
        return delivery.delivery_rows(list(rows))


@router.get(
    "/invoices/{invoice_id}/emails", tags=["invoices"], summary="The automatic e-mail of the invoice and its log"
)
async def get_emails(invoice_id: str, request: Request, principal: Viewer) -> list[dict[str, Any]]:
    async with units_of(request)() as uow:
        await accounts.get_invoice(uow.session, principal.tenant, invoice_id)
        rows = (
            await uow.session.exec(
                select(Mailing).where(Mailing.tenant == principal.tenant, Mailing.invoice_id == invoice_id)
            )
        ).all()
        return [
            {
                **row.model_dump(exclude={"log", "recipients"}),
                "recipients": json.loads(row.recipients),
                "log": json.loads(row.log),
            }
            for row in rows
        ]


@router.post(
    "/invoices/{invoice_id}/email", tags=["invoices"], summary="E-mail the PDF (and the EDI document if asked)"
)
async def post_email(invoice_id: str, body: schemas.EmailIn, request: Request, principal: Operator) -> schemas.EmailOut:
    settings = runtime_of(request).settings
    assert isinstance(settings, InvoicerSettings)
    async with units_of(request)() as uow:
        store = SqlStore(uow)
        invoice = await store.invoice(principal.tenant, invoice_id)
        calls = await store.call_detail(principal.tenant, invoice_id)
        customer = await accounts.get_customer(uow.session, principal.tenant, invoice.customer_id)
    recipients = check_emails(body.to) if body.to is not None else json.loads(customer.emails)
    with_edi = body.with_edi.value if body.with_edi and body.with_edi is not EdiFormat.NONE else None
    message = await asyncio.to_thread(mail.message, settings, invoice, calls, recipients, with_edi)
    await mail.send(settings, message)
    return schemas.EmailOut(
        sent_to=recipients, attachments=[part.get_filename() or "" for part in message.iter_attachments()]
    )


@router.post(
    "/invoices/{invoice_id}/credit-note",
    tags=["invoices"],
    status_code=status.HTTP_201_CREATED,
    summary="Credit an issued invoice in full, some of its lines or an amount (the invoice itself never changes)",
)
async def post_credit_note(
    invoice_id: str,
    request: Request,
    principal: Operator,
    issue_date: date | None = None,
    body: schemas.CreditIn | None = None,
) -> schemas.InvoiceOut:
    async with units_of(request)() as uow:
        credit = await handlers.credit_invoice(
            SqlStore(uow),
            principal.tenant,
            invoice_id,
            issue_date=issue_date or utcnow().date(),
            new_id=accounts.new_id,
            lines=body.lines if body else None,
            amount=body.amount if body else None,
        )
    async with units_of(request)() as uow:
        return invoice_out(await accounts.get_invoice(uow.session, principal.tenant, credit.id), with_lines=True)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"])]


@router.get(
    "/reports/invoices.{extension}",
    tags=["reports"],
    summary="The table of a month's invoices and credit notes, as xlsx (with totals) or pdf",
    response_class=Response,
    responses={200: {"content": {XLSX: {}, "application/pdf": {}}}},
)
async def get_invoice_table(
    extension: Annotated[str, Path(pattern="^(xlsx|pdf)$")], period: Month, request: Request, principal: Viewer
) -> Response:
    async with units_of(request)() as uow:
        report = await reports.invoice_report(uow.session, principal.tenant, Period.month(period).start)
    return _report(report, extension, f"invoices-{period}", chart=False)


@router.get(
    "/reports/synthesis.{extension}",
    tags=["reports"],
    summary="Net invoiced per customer over the 12 months ending with `until`, with a chart, as xlsx or pdf",
    response_class=Response,
    responses={200: {"content": {XLSX: {}, "application/pdf": {}}}},
)
async def get_synthesis(
    extension: Annotated[str, Path(pattern="^(xlsx|pdf)$")], until: Month, request: Request, principal: Viewer
) -> Response:
    async with units_of(request)() as uow:
        report = await reports.synthesis_report(uow.session, principal.tenant, Period.month(until).start)
    return _report(report, extension, f"synthesis-{until}", chart=True)


def _report(report: reports.Report, extension: str, name: str, *, chart: bool) -> Response:
    if extension == "pdf":
        content, media_type = reports.to_pdf(report, chart=chart), "application/pdf"
    else:
        content, media_type = reports.to_xlsx(report, chart=chart, total_row=not chart), XLSX
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'}
    )


def create_app(settings: ServiceSettings) -> FastAPI:
    if not isinstance(settings, InvoicerSettings):
        raise InvalidInput("settings", "the invoicer needs InvoicerSettings")
    return create_service_app(
        bootstrap(settings),
        title="Tarifa invoicer",
        description=summary or "",
        version="0.1.0",
        routers=[router],
        openapi_tags=[
            {"name": "profile", "description": "The tenant as a seller"},
            {"name": "customers", "description": "Billable customers, tax treatment and EDI settings"},
            {"name": "contracts", "description": "Contracts, their status, lines and charges"},
            {"name": "billing", "description": "Billing runs with pre-checks and progress"},
            {"name": "invoices", "description": "Issued invoices and credit notes, UBL, EDIFACT and PDF downloads"},
            {"name": "reports", "description": "XLSX reports: a month's invoices, the 12-month synthesis"},
        ],
    )
