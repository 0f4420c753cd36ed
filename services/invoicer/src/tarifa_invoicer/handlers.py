"""One async function per command or event of the invoicer; storage comes in through the `Store` port."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from tarifa_common import contracts, topics
from tarifa_common.errors import Conflict, InvalidInput
from tarifa_common.events import Event, utcnow
from tarifa_invoicer.domain import edifact, ubl
from tarifa_invoicer.domain.accounts import (
    AutoEmail,
    ContractTerms,
    CustomerTerms,
    EdiFormat,
    check_transition,
    due_date,
    email_after_issue,
)
from tarifa_invoicer.domain.checks import (
    BacklogUnavailable,
    Finding,
    SourceWatermark,
    WatermarkUnavailable,
    backlog_unreadable,
    behind,
    collector_unreachable,
    outlier_customers,
    rated_calls_in_flight,
    silent_contracts,
    unattributed,
    undelivered_sources,
)
from tarifa_invoicer.domain.documents import Document, Party
from tarifa_invoicer.domain.invoice import (
    ClassUsage,
    Draft,
    InvoiceKind,
    InvoiceLine,
    Period,
    amount_to_credit,
    charge_lines,
    compute_totals,
    invoice_number,
    lines_to_credit,
    usage_lines,
)

log = logging.getLogger(__name__)
SOURCE = "tarifa/invoicer"


@dataclass(frozen=True, slots=True)
class Seller:
    party: Party
    default_tax_rate: Decimal
    currency: str
    series: str
    credit_series: str
    time_zone: str
    auto_email: AutoEmail = AutoEmail.OFF


@dataclass(frozen=True, slots=True)
class Issued:
    """An invoice as stored: what the API lists and the event announces."""

    id: str
    number: str
    series: str
    sequence: int
    kind: InvoiceKind
    customer_id: str
    contract_id: str
    period: Period
    issue_date: date
    due_date: date
    currency: str
    net: Decimal
    tax: Decimal
    total: Decimal
    lines: tuple[InvoiceLine, ...]
    ubl: str
    edifact: str
    seller: Party
    buyer: Party
    credited_invoice_id: str | None = None
    credited_lines: tuple[int, ...] = ()  # a partial credit note: the invoice's lines it credits (1 = first)


class Store(Protocol):
    """What handlers need of storage; `SqlStore` implements it inside one transaction."""

    def emit(self, event: Event, topic: topics.Topic, key: str) -> None: ...

    async def contract_of_line(self, tenant: str, line_id: str | None, extension: str | None) -> str | None: ...

    async def record_call(self, call: contracts.RatedCall, contract_id: str | None) -> bool: ...

    async def attach_line(self, tenant: str, contract_id: str, line_id: str, on: date) -> bool: ...

    async def detach_line(self, tenant: str, line_id: str, on: date) -> bool: ...

    async def contract_status(self, tenant: str, contract_id: str) -> tuple[str, contracts.ContractStatus]: ...

    async def set_contract_status(self, tenant: str, contract_id: str, status: contracts.ContractStatus) -> None: ...

    async def seller(self, tenant: str) -> Seller: ...

    async def contracts_to_bill(self, tenant: str, period: Period) -> list[ContractTerms]: ...

    async def contracts_with_calls(self, tenant: str, since: datetime, before: datetime) -> set[str]: ...

    async def unattributed_calls(self, tenant: str, since: datetime, before: datetime) -> int: ...

    async def customer_history(self, tenant: str, before: date) -> dict[str, list[Decimal]]: ...

    async def lock_series(self, tenant: str, series: str) -> int: ...

    async def set_next_number(self, tenant: str, series: str, next_number: int) -> None: ...

    async def already_issued(self, tenant: str, dedupe_keys: Sequence[str]) -> set[str]: ...

    async def take_usage(
        self, tenant: str, invoices: Mapping[str, str | None], before: datetime
    ) -> dict[str, list[ClassUsage]]: ...

    async def save_invoice(self, tenant: str, invoice: Issued, dedupe_key: str, run_id: str | None) -> None: ...

    async def save_invoices(self, tenant: str, invoices: Sequence[tuple[Issued, str]], run_id: str | None) -> None: ...

    async def queue_delivery(self, tenant: str, invoice_id: str, endpoint: str, edi_format: str) -> None: ...

    async def delivery_target(self, tenant: str, customer_id: str) -> tuple[str, str] | None: ...

    async def queue_mailing(
        self, tenant: str, invoice_id: str, recipients: Sequence[str], with_edi: str | None
    ) -> None: ...

    async def customer(self, tenant: str, customer_id: str) -> CustomerTerms: ...

    async def invoice(self, tenant: str, invoice_id: str) -> Issued: ...

    async def credits_of(self, tenant: str, invoice_id: str) -> list[Issued]: ...


StoreFactory = Callable[[], AbstractAsyncContextManager[Store]]


class Watermarks(Protocol):
    """The collector's answer to "has every source of the tenant delivered its calls up to `until`?"."""

    url: str

    async def sources(self, tenant: str, until: datetime) -> list[SourceWatermark]:
        """Every enabled source's watermark; raises `WatermarkUnavailable` when the collector cannot say."""
        ...


class RatedCallBacklog(Protocol):
    """How far the invoicer's consumer group has stored `cdr.rated`, against where the topic ends."""

    where: str
    wait_seconds: float

    async def ends(self) -> dict[int, int]:
        """Each partition's end offset now; raises `BacklogUnavailable` when the broker cannot say."""
        ...

    async def stored(self) -> dict[int, int]:
        """Each partition's offset the invoicer's group has committed (stored up to); `BacklogUnavailable` too."""
        ...

    async def close(self) -> None: ...


# --- events -------------------------------------------------------------------------------------


async def record_rated_call(event: Event, store: Store) -> None:
    """`cdr.rated`: keep the call for billing, each (record, version) once (see `SqlStore.record_call`)."""
    call = contracts.RatedCall.model_validate(event.data)
    contract_id = call.contract_id or await store.contract_of_line(call.tenant, call.line_id, call.extension)
    await store.record_call(call, contract_id)


async def follow_line(event: Event, store: Store) -> None:
    """`line.events`: a line voip-summit creates for a contract is assigned to it; a cancelled line ends.

    A line's charges end with it (see `charge_lines`). Lines of contracts the invoicer does not
    know are ignored: the contract may be billed elsewhere.
    """
    change = contracts.LineChanged.model_validate(event.data)
    day = event.time.date()
    if change.kind in (contracts.LineEventKind.CREATED, contracts.LineEventKind.ACTIVATED):
        await store.attach_line(change.tenant, change.line.contract_id, change.line.line_id, day)
    elif change.kind is contracts.LineEventKind.CANCELLED:
        await store.detach_line(change.tenant, change.line.line_id, day)


# --- contracts ----------------------------------------------------------------------------------


async def change_contract_status(
    store: Store, tenant: str, contract_id: str, status: contracts.ContractStatus, reason: str | None
) -> contracts.ContractStatusChanged:
    """Change a contract's status and publish it on `contract.status` (voip-summit blocks or releases lines)."""
    customer_id, current = await store.contract_status(tenant, contract_id)
    check_transition(current, status)
    await store.set_contract_status(tenant, contract_id, status)
    change = contracts.ContractStatusChanged(
        tenant=tenant,
        contract_id=contract_id,
        customer_id=customer_id,
        status=status,
        previous=current,
        reason=reason,
        changed_at=utcnow(),
    )
    publish_status(store, change)
    return change


def publish_status(store: Store, change: contracts.ContractStatusChanged) -> None:
    store.emit(
        Event(
            type=contracts.CONTRACT_STATUS_CHANGED,
            source=SOURCE,
            tenant=change.tenant,
            subject=change.contract_id,
            data=change.model_dump(mode="json"),
        ),
        topics.CONTRACT_STATUS,
        change.contract_id,
    )


# --- billing run --------------------------------------------------------------------------------


@dataclass
class RunReport:
    period: Period
    dry_run: bool
    total: int = 0
    done: int = 0
    issued: list[str] = field(default_factory=list)
    skipped: int = 0
    net: Decimal = Decimal("0.00")
    findings: list[Finding] = field(default_factory=list)
    held: bool = False
    drafts: list[dict[str, str]] = field(default_factory=list)


Progress = Callable[[RunReport], Awaitable[None]]


def midnight(day: date, time_zone: str) -> datetime:
    """The instant `day` starts in the tenant's zone, in UTC: billing periods follow the tenant's calendar.

    In UTC because that is how call times are stored (SQLite keeps no offset, so instants are
    only comparable in one zone).
    """
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def period_bounds(period: Period, time_zone: str) -> datetime:
    """The instant the period ends in the tenant's zone (calls before it belong to it)."""
    return midnight(date.fromordinal(period.end.toordinal() + 1), time_zone)


def _dedupe_key(contract_id: str, period: Period) -> str:
    return f"invoice:{contract_id}:{period.label}:{period.start.isoformat()}"


def draft_for(terms: ContractTerms, period: Period, seller: Seller, usage: Sequence[ClassUsage]) -> Draft:
    tax_of = terms.tax_of(seller.default_tax_rate)
    lines = charge_lines(period, terms.charges, tax_of)
    lines += usage_lines(usage, terms.usage_allowance, tax_of())
    return Draft(terms.id, terms.customer.id, period, tuple(lines))


def render_documents(document: Document) -> tuple[str, str]:
    """UBL and EDIFACT of an invoice: both are produced for every invoice and kept for download."""
    return ubl.render(document).decode(), edifact.render(document)


def invoice_event(tenant: str, issued: Issued) -> Event:
    links = {
        "pdf": f"/v1/invoices/{issued.id}/pdf",
        "ubl": f"/v1/invoices/{issued.id}/ubl",
        "edifact": f"/v1/invoices/{issued.id}/edifact",
        "self": f"/v1/invoices/{issued.id}",
    }
    credit = issued.kind is InvoiceKind.CREDIT_NOTE
    data = contracts.InvoiceIssued(
        tenant=tenant,
        invoice_id=issued.id,
        number=issued.number,
        series=issued.series,
        kind=issued.kind.value,
        credited_invoice_id=issued.credited_invoice_id,
        customer_id=issued.customer_id,
        contract_id=issued.contract_id,
        period_start=issued.period.start,
        period_end=issued.period.end,
        issue_date=issued.issue_date,
        due_date=issued.due_date,
        currency=issued.currency,
        net=issued.net,
        tax=issued.tax,
        total=issued.total,
        links=links,
    )
    return Event(
        type=contracts.INVOICE_CREDITED if credit else contracts.INVOICE_ISSUED,
        source=SOURCE,
        tenant=tenant,
        subject=issued.id,
        data=data.model_dump(mode="json"),
    )


async def bill_period(
    stores: StoreFactory,
    tenant: str,
    period: Period,
    *,
    issue_date: date,
    dry_run: bool = False,
    hold_on_findings: bool = False,
    run_id: str | None = None,
    chunk: int = 200,
    progress: Progress | None = None,
    new_id: Callable[[], str],
    watermarks: Watermarks | None = None,
    backlog: RatedCallBacklog | None = None,
) -> RunReport:
    """Bill every contract of `tenant` for `period`: pre-checks, then invoices in chunks.

    Each chunk is one transaction that first locks the tenant's number series, so two runs that
    race take turns: numbers stay gap-free (a rolled-back chunk gives its numbers back) and a
    contract already invoiced for the period (by the other run, or an earlier one) is skipped.
    A dry run issues nothing and numbers nothing; it reports what would be issued. Without
    `watermarks` the sources are not checked (benchmarks, tests of the run itself); the service,
    the CLI and the scheduler always pass the collector's. Likewise without `backlog` the run does
    not wait for the invoicer to catch up with `cdr.rated`; with it, that wait comes first, so the
    other checks and the invoices see every call rated before the run started.
    """
    report = RunReport(period, dry_run)
    in_flight = await rated_calls_caught_up(backlog) if backlog is not None else []
    async with stores() as store:
        seller = await store.seller(tenant)
        terms = [t for t in await store.contracts_to_bill(tenant, period) if t.customer.billable]
        cutoff = period_bounds(period, seller.time_zone)
        since = midnight(period.start, seller.time_zone)
        with_calls = await store.contracts_with_calls(tenant, since, cutoff)
        orphans = await store.unattributed_calls(tenant, since, cutoff)
        history = await store.customer_history(tenant, period.start)
    report.total = len(terms)
    report.findings = in_flight + silent_contracts([t.id for t in terms if t.line_ids], with_calls)
    if orphans:
        report.findings.append(unattributed(orphans))
    if watermarks is not None:
        report.findings += await sources_delivered(watermarks, tenant, cutoff.astimezone(ZoneInfo(seller.time_zone)))
    if hold_on_findings and report.findings:
        report.held = True
        return report
    current: dict[str, Decimal] = {}
    for start in range(0, len(terms), chunk):
        batch = terms[start : start + chunk]
        async with stores() as store:
            if dry_run:
                usages = await store.take_usage(tenant, {contract.id: None for contract in batch}, cutoff)
                for contract in batch:
                    draft = draft_for(contract, period, seller, usages.get(contract.id, []))
                    current[contract.customer.id] = current.get(contract.customer.id, Decimal(0)) + draft.totals.net
                    report.net += draft.totals.net
                    report.drafts.append(
                        {"contract_id": contract.id, "customer_id": contract.customer.id, "net": str(draft.totals.net)}
                    )
            else:
                await _issue_chunk(store, tenant, period, seller, batch, cutoff, issue_date, run_id, new_id, report)
        report.done += len(batch)
        if progress is not None:
            await progress(report)
    if dry_run:
        report.findings += outlier_customers(current, history)
    return report


async def sources_delivered(watermarks: Watermarks, tenant: str, until: datetime) -> list[Finding]:
    """Pre-check: every source delivered its calls up to the period's end; an unreachable collector is a finding."""
    try:
        return undelivered_sources(until, await watermarks.sources(tenant, until))
    except WatermarkUnavailable as error:
        log.warning("watermark of %s could not be read: %s", tenant, error)
        return [collector_unreachable(watermarks.url, str(error))]


async def rated_calls_caught_up(backlog: RatedCallBacklog, poll_seconds: float = 0.25) -> list[Finding]:
    """Pre-check: the invoicer has stored every `cdr.rated` event published before the run started.

    The consumer commits its offsets only after its transaction, so a committed offset at the
    topic's end (taken once, when the run starts) means every call rated by then is in the
    database. The run waits up to `backlog.wait_seconds` for that; still behind, or a broker
    that cannot say, is a finding, never a failed run.
    """
    try:
        ends = await backlog.ends()
        deadline = time.monotonic() + backlog.wait_seconds
        while lag := behind(ends, await backlog.stored()):
            if time.monotonic() >= deadline:
                log.warning("the invoicer is still behind cdr.rated by %d event(s)", sum(lag.values()))
                return [rated_calls_in_flight(lag, backlog.wait_seconds)]
            await asyncio.sleep(poll_seconds)
        return []
    except BacklogUnavailable as error:
        log.warning("how far the invoicer has read cdr.rated could not be known: %s", error)
        return [backlog_unreadable(backlog.where, str(error))]
    finally:
        await backlog.close()


async def queue_email(store: Store, tenant: str, invoice_id: str, customer: CustomerTerms, seller: Seller) -> None:
    """Queue the e-mail of a just-issued invoice in its transaction, if the customer or tenant asks for one.

    Queued with the invoice, so a re-run (which issues nothing twice) queues nothing twice either;
    `adapters/mailing.py` sends it once.
    """
    target = email_after_issue(customer.auto_email, seller.auto_email, customer.emails, customer.edi_format)
    if target is not None:
        await store.queue_mailing(tenant, invoice_id, *target)


async def _issue_chunk(
    store: Store,
    tenant: str,
    period: Period,
    seller: Seller,
    batch: Sequence[ContractTerms],
    cutoff: datetime,
    issue_date: date,
    run_id: str | None,
    new_id: Callable[[], str],
    report: RunReport,
) -> None:
    next_number = await store.lock_series(tenant, seller.series)
    done = await store.already_issued(tenant, [_dedupe_key(t.id, period) for t in batch])
    todo = [contract for contract in batch if _dedupe_key(contract.id, period) not in done]
    report.skipped += len(batch) - len(todo)
    invoice_ids: dict[str, str | None] = {contract.id: new_id() for contract in todo}
    usages = await store.take_usage(tenant, invoice_ids, cutoff) if todo else {}
    issued_now: list[tuple[Issued, str]] = []
    customers: dict[str, CustomerTerms] = {}
    for contract in todo:
        key = _dedupe_key(contract.id, period)
        invoice_id = str(invoice_ids[contract.id])
        draft = draft_for(contract, period, seller, usages.get(contract.id, []))
        number = invoice_number(seller.series, next_number)
        document = Document(
            kind=InvoiceKind.INVOICE,
            number=number,
            issue_date=issue_date,
            due_date=due_date(issue_date, contract.due_day),
            currency=seller.currency,
            period=period,
            seller=seller.party,
            buyer=contract.customer.party,
            buyer_reference=contract.id,
            lines=draft.lines,
            totals=draft.totals,
        )
        ubl_text, edifact_text = render_documents(document)
        issued = Issued(
            id=invoice_id,
            number=number,
            series=seller.series,
            sequence=next_number,
            kind=InvoiceKind.INVOICE,
            customer_id=contract.customer.id,
            contract_id=contract.id,
            period=period,
            issue_date=issue_date,
            due_date=document.due_date,
            currency=seller.currency,
            net=draft.totals.net,
            tax=draft.totals.tax,
            total=draft.totals.total,
            lines=draft.lines,
            ubl=ubl_text,
            edifact=edifact_text,
            seller=seller.party,
            buyer=contract.customer.party,
        )
        issued_now.append((issued, key))
        customers[issued.id] = contract.customer
        next_number += 1
    # the invoices first: deliveries and e-mails queued below refer to them
    await store.save_invoices(tenant, issued_now, run_id)
    for issued, _ in issued_now:
        customer = customers[issued.id]
        store.emit(invoice_event(tenant, issued), topics.INVOICE_ISSUED, issued.customer_id)
        if customer.delivery_endpoint and customer.edi_format is not EdiFormat.NONE:
            await store.queue_delivery(tenant, issued.id, customer.delivery_endpoint, customer.edi_format.value)
        await queue_email(store, tenant, issued.id, customer, seller)
        report.issued.append(issued.number)
        report.net += issued.net
    await store.set_next_number(tenant, seller.series, next_number)


async def credit_invoice(
    store: Store,
    tenant: str,
    invoice_id: str,
    *,
    issue_date: date,
    new_id: Callable[[], str],
    lines: Sequence[int] | None = None,
    amount: Decimal | None = None,
) -> Issued:
    """A credit note referencing an issued invoice, which itself never changes.

    In full (neither `lines` nor `amount`), once, and only if nothing was credited before; or
    partial: some of its lines, each at most once, or a net amount spread over its VAT categories,
    as long as what is credited in all stays within the invoice's net. The credit-note series is
    locked first, so two credits of one invoice racing take turns and see each other.
    """
    original = await store.invoice(tenant, invoice_id)
    if original.kind is not InvoiceKind.INVOICE:
        raise InvalidInput("invoice_id", f"{original.number} is a credit note; only invoices are credited")
    if lines is not None and amount is not None:
        raise InvalidInput("amount", "credit either lines or an amount, not both")
    seller = await store.seller(tenant)
    sequence = await store.lock_series(tenant, seller.credit_series)
    earlier = await store.credits_of(tenant, original.id)
    credited_lines: tuple[int, ...] = ()
    if lines is None and amount is None:
        if earlier:
            raise Conflict(
                f"invoice {original.number} has already been credited ({', '.join(c.number for c in earlier)}); "
                "credit its remaining lines or an amount"
            )
        key, credited = f"credit:{original.id}", original.lines
    else:
        credited_so_far = sum((c.net for c in earlier), Decimal("0"))
        if lines is not None:
            done = [n for c in earlier for n in c.credited_lines]
            credited = lines_to_credit(original.lines, lines, done)
            credited_lines = tuple(sorted(lines))
            if compute_totals(credited).net <= 0:
                raise InvalidInput("lines", "these lines add up to nothing to credit (an allowance alone, say)")
            if compute_totals(credited).net + credited_so_far > original.net:
                raise InvalidInput("lines", f"these lines would credit more than the net of {original.number}")
        else:
            assert amount is not None
            earlier_lines = [line for c in earlier for line in c.lines]
            credited = amount_to_credit(original.lines, earlier_lines, amount, original.number)
        key = f"credit:{original.id}:{len(earlier) + 1}"
    totals = compute_totals(credited)
    number = invoice_number(seller.credit_series, sequence)
    buyer = original.buyer  # the credit note names the parties as the invoice did
    document = Document(
        kind=InvoiceKind.CREDIT_NOTE,
        number=number,
        issue_date=issue_date,
        due_date=issue_date,
        currency=original.currency,
        period=original.period,
        seller=seller.party,
        buyer=buyer,
        buyer_reference=original.contract_id,
        lines=credited,
        totals=totals,
        credited_number=original.number,
        credited_issue_date=original.issue_date,
    )
    ubl_text, edifact_text = render_documents(document)
    credit = Issued(
        id=new_id(),
        number=number,
        series=seller.credit_series,
        sequence=sequence,
        kind=InvoiceKind.CREDIT_NOTE,
        customer_id=original.customer_id,
        contract_id=original.contract_id,
        period=original.period,
        issue_date=issue_date,
        due_date=issue_date,
        currency=original.currency,
        net=totals.net,
        tax=totals.tax,
        total=totals.total,
        lines=credited,
        ubl=ubl_text,
        edifact=edifact_text,
        seller=seller.party,
        buyer=buyer,
        credited_invoice_id=original.id,
        credited_lines=credited_lines,
    )
    await store.save_invoice(tenant, credit, key, None)
    await store.set_next_number(tenant, seller.credit_series, sequence + 1)
    target = await store.delivery_target(tenant, original.customer_id)
    if target is not None:
        await store.queue_delivery(tenant, credit.id, *target)
    await queue_email(store, tenant, credit.id, await store.customer(tenant, original.customer_id), seller)
    store.emit(invoice_event(tenant, credit), topics.INVOICE_ISSUED, credit.customer_id)
    return credit
