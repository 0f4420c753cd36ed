"""Dialled numbers to E.164 and a call class, driven by a numbering plan (Brazil by default).

The plan is data (`NumberingPlan`), so another country is configuration. Brazilian rules
(Anatel's numbering plan and the "Código de Seleção de Prestadora"):
- national calls are dialled 0 + carrier (2 digits) + DDD (2 digits) + number;
- international calls 00 + carrier + country code + number;
- subscriber numbers have 8 digits (fixed, first digit 2-5) or 9 (mobile, first digit 9);
- 0800 numbers are toll-free; 3- to 5-digit codes starting with 1 (190, 193, 102) are services.
Fixed-to-mobile classes: VC1 a mobile in the caller's own area code, VC2 in another area code
with the same first digit (the same region), VC3 in a region of another first digit.

We do not use `phonenumbers`: it parses numbers already in national or international form but
knows nothing of carrier selection codes or of classifying VC1/VC2/VC3 against a home area,
which is the whole of this job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from tarifa_common.errors import InvalidInput


class CallClass(StrEnum):
    INTERNAL = "internal"
    LOCAL = "local"
    VC1 = "vc1"
    VC2 = "vc2"
    VC3 = "vc3"
    LONG_DISTANCE = "long_distance"
    INTERNATIONAL = "international"
    TOLL_FREE = "toll_free"
    SERVICE = "service"
    INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class NumberingPlan:
    """How numbers are dialled in one country, seen from one home area (Brazilian defaults)."""

    country_code: str = "55"
    home_area_code: str = "11"
    national_prefix: str = "0"
    international_prefix: str = "00"
    carrier_code_length: int = 2
    area_code_length: int = 2
    fixed_lengths: tuple[int, ...] = (8,)
    mobile_lengths: tuple[int, ...] = (9,)
    mobile_first_digits: str = "9"
    toll_free_prefixes: tuple[str, ...] = ("0800",)
    service_first_digits: str = "1"
    service_lengths: tuple[int, ...] = (3, 4, 5)
    extension_max_length: int = 5
    # Derived once from the fields above (classification runs for every call).
    subscriber_lengths: frozenset[int] = field(init=False, repr=False, compare=False)
    national_lengths: frozenset[int] = field(init=False, repr=False, compare=False)
    area_subscriber_lengths: frozenset[int] = field(init=False, repr=False, compare=False)
    toll_free_heads: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.country_code.isdigit():
            raise InvalidInput("country_code", f"must be digits, got {self.country_code!r}")
        if len(self.home_area_code) != self.area_code_length or not self.home_area_code.isdigit():
            raise InvalidInput("home_area_code", f"must be {self.area_code_length} digits, got {self.home_area_code!r}")
        subscriber = frozenset(self.fixed_lengths + self.mobile_lengths)
        object.__setattr__(self, "subscriber_lengths", subscriber)
        object.__setattr__(self, "area_subscriber_lengths", frozenset(self.area_code_length + n for n in subscriber))
        object.__setattr__(self, "national_lengths", self.area_subscriber_lengths)
        object.__setattr__(self, "toll_free_heads", frozenset(prefix[:1] for prefix in self.toll_free_prefixes))


class Classified(NamedTuple):
    """A dialled number understood: its E.164 form (digits, no '+') when it has one, and its class.

    A named tuple rather than a dataclass: one is made for every call, and a tuple is the
    cheapest immutable value Python builds.
    """

    call_class: CallClass
    e164: str | None
    area_code: str | None = None


_NOT_DIGITS = re.compile(r"[^0-9]")


def digits_of(dialled: str) -> str:
    return dialled if dialled.isascii() and dialled.isdigit() else _NOT_DIGITS.sub("", dialled)


def _national(plan: NumberingPlan, area: str, subscriber: str) -> Classified | None:
    """Classify DDD + subscriber number as seen from the plan's home area, or None if malformed."""
    e164 = plan.country_code + area + subscriber
    if len(subscriber) in plan.mobile_lengths and subscriber[0] in plan.mobile_first_digits:
        if area == plan.home_area_code:
            return Classified(CallClass.VC1, e164, area)
        if area[0] == plan.home_area_code[0]:
            return Classified(CallClass.VC2, e164, area)
        return Classified(CallClass.VC3, e164, area)
    if len(subscriber) in plan.fixed_lengths:
        call_class = CallClass.LOCAL if area == plan.home_area_code else CallClass.LONG_DISTANCE
        return Classified(call_class, e164, area)
    return None


def _national_number(plan: NumberingPlan, number: str) -> Classified | None:
    """A number of DDD + subscriber digits (no prefixes)."""
    area, subscriber = number[: plan.area_code_length], number[plan.area_code_length :]
    if not subscriber:
        return None
    return _national(plan, area, subscriber)


def classify(dialled: str, plan: NumberingPlan, *, internal: bool = False) -> Classified:
    """Normalise `dialled` (as the PBX recorded it) and classify the call; raises InvalidInput if unreadable."""
    if internal:
        return Classified(CallClass.INTERNAL, None)
    if dialled.isdigit() and dialled.isascii():  # what PBXs mostly report: digits only
        number = dialled
    else:
        text = dialled.strip()
        number = _NOT_DIGITS.sub("", text)
        if not number:
            raise InvalidInput("dialled", f"{dialled!r} holds no digits")
        if text.startswith("+"):
            return _international_or_national(plan, number, dialled)
    if number[0] in plan.toll_free_heads:
        for prefix in plan.toll_free_prefixes:
            if number.startswith(prefix):
                return Classified(CallClass.TOLL_FREE, plan.country_code + number[len(plan.national_prefix) :])
    if number.startswith(plan.international_prefix):
        rest = number[len(plan.international_prefix) + plan.carrier_code_length :]
        if not rest:
            raise InvalidInput("dialled", f"{dialled!r}: international prefix without a number")
        return _international_or_national(plan, rest, dialled)
    if number.startswith(plan.national_prefix):
        rest = number[len(plan.national_prefix) :]
        national_lengths = plan.national_lengths
        if len(rest) - plan.carrier_code_length in national_lengths:
            found = _national_number(plan, rest[plan.carrier_code_length :])
        elif len(rest) in national_lengths:  # 0 + DDD + number, no carrier (older PBX routes)
            found = _national_number(plan, rest)
        else:
            found = None
        if found is None:
            raise InvalidInput("dialled", f"{dialled!r} is not 0 + carrier + area code + number")
        return found
    if len(number) in plan.service_lengths and number[0] in plan.service_first_digits:
        return Classified(CallClass.SERVICE, None)
    if len(number) in plan.subscriber_lengths:
        found = _national(plan, plan.home_area_code, number)
        if found is not None:
            return found
    if len(number) in plan.area_subscriber_lengths:
        found = _national_number(plan, number)  # DDD + number, as trunks often report it
        if found is not None:
            return found
    if len(number) <= plan.extension_max_length:
        return Classified(CallClass.INTERNAL, None)
    raise InvalidInput("dialled", f"{dialled!r} is not a number of the {plan.country_code} numbering plan")


def _international_or_national(plan: NumberingPlan, number: str, dialled: str) -> Classified:
    if number.startswith(plan.country_code):
        found = _national_number(plan, number[len(plan.country_code) :])
        if found is None:
            raise InvalidInput("dialled", f"{dialled!r} is not a valid +{plan.country_code} number")
        return found
    return Classified(CallClass.INTERNATIONAL, number)
