"""E.164 numbers from what a Brazilian PBX reports: carrier codes, area codes, 8-digit fixed and 9-digit mobiles."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa_collector.domain.numbering import NumberingPlan, fill_e164, to_e164
from tarifa_common.errors import InvalidInput

SAO_PAULO = NumberingPlan(area_code="11", outside_line_prefix="0")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("33334444", "+551133334444"),  # local fixed line, home DDD
        ("987654321", "+5511987654321"),  # local mobile
        ("0212133334444", "+552133334444"),  # 0 + carrier 21 + DDD 21 + fixed
        ("02121987654321", "+5521987654321"),  # 0 + carrier + DDD + mobile
        ("002112125550100", "+12125550100"),  # 00 + carrier 21 + the USA
        ("0021441234567890", "+441234567890"),  # 00 + carrier 21 + UK
        ("00215521987654321", "+5521987654321"),  # 00 + carrier + Brazil itself
        ("+55 (21) 98765-4321", "+5521987654321"),
        ("11987654321", "+5511987654321"),  # caller ID in national format
        ("5511987654321", "+5511987654321"),  # caller ID with the country code
        ("203", None),  # an extension
        ("190", None),  # police
        ("08007771234", None),  # toll free is not geographic
        ("*21", None),
        ("12345678", None),  # 8 digits starting 1: not a fixed line
        ("887654321", None),  # 9 digits not starting 9: not a mobile
        ("", None),
    ],
)
def test_brazilian_numbers_become_e164(number: str, expected: str | None) -> None:
    assert to_e164(number, SAO_PAULO) == expected


def test_the_outside_line_prefix_is_dropped_from_dialled_numbers_only() -> None:
    assert to_e164("033334444", SAO_PAULO, dialled=True) == "+551133334444"
    assert to_e164("00212133334444", SAO_PAULO, dialled=True) == "+552133334444"
    assert to_e164("033334444", SAO_PAULO) is None  # 0 + 8 digits is no national number


def test_a_local_number_needs_the_home_area_code() -> None:
    assert to_e164("33334444", NumberingPlan()) is None
    assert to_e164("0212133334444", NumberingPlan()) == "+552133334444"


def test_another_country_is_a_matter_of_parameters() -> None:
    france = NumberingPlan(
        country_code="33",
        trunk_prefix="0",
        international_prefix="00",
        carrier_digits=0,
        area_code_digits=1,
        subscriber_digits=(8,),
    )
    assert to_e164("0145678901", france) == "+33145678901"
    assert to_e164("0044201234567", france) == "+44201234567"


def test_calls_get_e164_numbers_by_direction() -> None:
    outbound = {
        "direction": "outbound",
        "caller": "203",
        "dialled": "0987654321",
        "caller_e164": None,
        "called_e164": None,
    }
    fill_e164(outbound, SAO_PAULO)
    assert (outbound["caller_e164"], outbound["called_e164"]) == (None, "+5511987654321")
    inbound = {
        "direction": "inbound",
        "caller": "2133334444",
        "dialled": "33335000",
        "caller_e164": None,
        "called_e164": None,
    }
    fill_e164(inbound, SAO_PAULO)
    assert (inbound["caller_e164"], inbound["called_e164"]) == ("+552133334444", "+551133335000")
    internal = {
        "direction": "internal",
        "caller": "203",
        "dialled": "33334444",
        "caller_e164": None,
        "called_e164": None,
    }
    fill_e164(internal, SAO_PAULO)
    assert internal["called_e164"] is None


def test_a_plan_names_the_setting_it_refuses() -> None:
    with pytest.raises(InvalidInput) as error:
        NumberingPlan(area_code="1").validate()
    assert "numbering.area_code" in str(error.value)


@given(st.text(max_size=30))
def test_any_text_is_placed_or_not_and_never_raises(number: str) -> None:
    placed = to_e164(number, SAO_PAULO, dialled=True)
    assert placed is None or (placed.startswith("+") and placed[1:].isdigit())
