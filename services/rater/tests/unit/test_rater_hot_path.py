"""The consumer's hot path against the general code it stands in for: the same state, the same event id."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tarifa_rater import handlers
from tarifa_rater.domain.numbering import CallClass
from tarifa_rater.domain.pricing import Band, Price
from tarifa_rater.domain.rating import DirectoryEntry, Rating, Unratable

CDR = handlers.CollectedCall(
    tenant="acme",
    source_id="pbx-hq",
    record_id="r1",
    call_id="c1",
    started_at=datetime(2026, 11, 23, 15, 0, 1, 250_000, tzinfo=UTC),
    local_start="2026-11-23T12:00:01.250000",
    time_zone="America/Sao_Paulo",
    billable_seconds=61,
    direction="outbound",
    answered=True,
    caller="2001",
    dialled="987654321",
    called_e164=None,
    extension="2001",
    answered_by="2002",
    transferred=True,
)
NOW = datetime(2026, 11, 23, 15, 5, tzinfo=UTC)
PRICE = Price(66, Decimal("0.71"), Decimal("0.33"), Decimal("0.05"), Decimal("0.60"), Band.NORMAL, 6)
ENTRY = DirectoryEntry("2001", line_id="line-1", customer_id="cust-1", contract_id="ct-1", cost_centre="sales")


@pytest.mark.parametrize(
    "outcome",
    [
        Rating(CallClass.VC1, "5511987654321", "Mobile VC1", PRICE, "standard", "Mobile VC1", "BRL", ENTRY, True),
        Rating(CallClass.LOCAL, None, None, PRICE, "standard", "Local", "BRL", None, False),
        Unratable("no_tariff", "no plan version in force"),
    ],
    ids=["rated-attributed", "rated-unattributed", "unratable"],
)
def test_a_new_calls_state_is_the_one_apply_outcome_makes(outcome: Rating | Unratable) -> None:
    raw = json.dumps({"record_id": "r1"})
    expected = handlers.apply_outcome(handlers.new_call(CDR, raw), outcome, NOW)
    assert handlers.first_state(CDR, raw, outcome, NOW) == expected


def test_a_stored_cdr_reads_back_as_the_data_it_was_made_of() -> None:
    data = {"tenant": "acme", "raw": 'São Paulo\u2028 "quoted"\n', "legs": [], "billable_seconds": 61, "x": None}
    assert json.loads(handlers.stored_cdr(data)) == data
    huge = {"billable_seconds": 2**70}  # beyond orjson's 64 bits: the standard library writes it
    assert json.loads(handlers.stored_cdr(huge)) == huge


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"caller_e164": "551120012001", "called_e164": "5511987654321", "answered_by": "2002", "transferred": True},
        {"extension": None, "dialled": "", "direction": "inbound", "disposition": "no_answer"},
    ],
)
def test_a_plain_cdr_takes_the_fast_path_and_reads_as_its_contract_does(make_cdr, overrides: dict) -> None:
    data = make_cdr("acme", "r1", **overrides).data
    plain = handlers.plain_collected_call(data)
    assert plain is not None
    assert plain == handlers.validated_collected_call(data)


@pytest.mark.parametrize(
    "change",
    [
        {"started_at": "2026-11-23T15:00:00"},  # no zone
        {"billable_seconds": "61"},
        {"direction": "sideways"},
        {"legs": None},
        {"extension": 2001},
    ],
)
def test_an_unusual_cdr_leaves_the_fast_path_for_its_contract(make_cdr, change: dict) -> None:
    data = {**make_cdr("acme", "r1").data, **change}
    assert handlers.plain_collected_call(data) is None


def test_a_cdr_missing_a_required_field_leaves_the_fast_path(make_cdr) -> None:
    data = make_cdr("acme", "r1").data
    del data["source_kind"]
    assert handlers.plain_collected_call(data) is None
