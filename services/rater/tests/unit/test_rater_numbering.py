"""Dialled numbers to E.164 and call classes: Brazil first, another country by configuration."""

import pytest

from tarifa_common.errors import InvalidInput
from tarifa_rater.domain.destinations import PrefixTable
from tarifa_rater.domain.numbering import CallClass, NumberingPlan, classify

SAO_PAULO = NumberingPlan(home_area_code="11")


@pytest.mark.parametrize(
    ("dialled", "call_class", "e164"),
    [
        ("33334444", CallClass.LOCAL, "551133334444"),  # 8-digit fixed, home area
        ("987654321", CallClass.VC1, "5511987654321"),  # 9-digit mobile, home area
        ("0 21 21 33334444", CallClass.LONG_DISTANCE, "552133334444"),  # 0 + carrier + DDD + fixed
        ("01519987654321", CallClass.VC2, "5519987654321"),  # mobile in 19: same first digit as 11
        ("0 21 21 987654321", CallClass.VC3, "5521987654321"),  # mobile in 21: another region
        ("0 2133334444", CallClass.LONG_DISTANCE, "552133334444"),  # 0 + DDD + number, no carrier
        ("2133334444", CallClass.LONG_DISTANCE, "552133334444"),  # DDD + number, as trunks report
        ("11987654321", CallClass.VC1, "5511987654321"),
        ("+55 21 98765-4321", CallClass.VC3, "5521987654321"),
        ("+5511 3333-4444", CallClass.LOCAL, "551133334444"),
        ("00 21 1 212 555 1234", CallClass.INTERNATIONAL, "12125551234"),  # 00 + carrier + country
        ("+351912345678", CallClass.INTERNATIONAL, "351912345678"),
        ("0800 123 4567", CallClass.TOLL_FREE, "558001234567"),
        ("190", CallClass.SERVICE, None),
        ("10315", CallClass.SERVICE, None),
        ("2001", CallClass.INTERNAL, None),  # an extension
    ],
)
def test_brazilian_numbers_are_normalised_and_classified(dialled: str, call_class: CallClass, e164: str | None) -> None:
    found = classify(dialled, SAO_PAULO)
    assert (found.call_class, found.e164) == (call_class, e164)


@pytest.mark.parametrize("dialled", ["", "abc", "0999", "+55 11 123"])
def test_unreadable_numbers_are_refused_naming_the_field(dialled: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        classify(dialled, SAO_PAULO)
    assert caught.value.problems[0].field == "dialled"


def test_an_internal_call_is_internal_whatever_was_dialled() -> None:
    assert classify("33334444", SAO_PAULO, internal=True).call_class is CallClass.INTERNAL


def test_another_country_is_configuration() -> None:
    new_york = NumberingPlan(
        country_code="1",
        home_area_code="212",
        national_prefix="1",
        international_prefix="011",
        carrier_code_length=0,
        area_code_length=3,
        fixed_lengths=(7,),
        mobile_lengths=(),
        toll_free_prefixes=("1800",),
        service_first_digits="9",
        service_lengths=(3,),
    )
    assert classify("5551234", new_york).e164 == "12125551234"
    assert classify("1 310 555 1234", new_york).call_class is CallClass.LONG_DISTANCE
    assert classify("011 44 20 7123 4567", new_york).e164 == "442071234567"
    assert classify("1 800 555 1234", new_york).call_class is CallClass.TOLL_FREE
    assert classify("911", new_york).call_class is CallClass.SERVICE


def test_a_bad_home_area_code_names_the_field() -> None:
    with pytest.raises(InvalidInput, match="home_area_code"):
        NumberingPlan(home_area_code="1")


def test_the_longest_prefix_wins() -> None:
    table = PrefixTable([("55", "Brazil"), ("5511", "São Paulo"), ("55119", "São Paulo mobile"), ("1", "NANP")])
    assert table.match("5511987654321") == ("55119", "São Paulo mobile")
    assert table.match("551133334444") == ("5511", "São Paulo")
    assert table.match("552133334444") == ("55", "Brazil")
    assert table.match("442071234567") is None
    assert len(table) == 4


def test_a_one_digit_prefix_still_matches_under_a_head_of_longer_prefixes() -> None:
    table = PrefixTable([("1", "NANP"), ("1212", "New York"), ("12", "not a real head"), ("7", "Russia")])
    assert table.lookup("12125551234") == "New York"
    assert table.lookup("12025551234") == "not a real head"
    assert table.lookup("13055551234") == "NANP"
    assert table.lookup("74951234567") == "Russia"
    assert table.lookup("4") is None
    assert table.match("1") == ("1", "NANP")
