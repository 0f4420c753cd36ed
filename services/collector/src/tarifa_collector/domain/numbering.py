"""A source's numbering context, and the E.164 form of the numbers its PBX reports (Brazil first).

A PBX reports numbers as they were dialled or presented: `0` + carrier + area code + number,
`00` + carrier + country + number, a bare local number, a caller ID in national format. Which
of those a string is depends on where the PBX is, so each source carries a `NumberingPlan`:
country code, home area code, the prefixes of its country, and the PBX's own outside-line
prefix. Defaults are Brazil's (ANATEL): country 55, two-digit area codes (DDD) with no zero
digit, 8-digit fixed numbers starting 2 to 5, 9-digit mobile numbers starting 9, `0` + a
two-digit carrier code (CSP) for national calls and `00` + CSP for international ones.

A number the plan cannot place (an extension, a short code such as 190, a 0800 number, digits
of a wrong length) has no E.164 form: the field stays empty and the rater works from the digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tarifa_common.errors import InvalidInput

_SEPARATORS = str.maketrans("", "", " -().")


@dataclass(frozen=True, slots=True)
class NumberingPlan:
    """Where a source's PBX is, and how numbers are written there."""

    country_code: str = "55"
    area_code: str | None = None  # the PBX's home area (DDD), for bare local numbers
    outside_line_prefix: str = ""  # what the PBX's users dial to get a line (often 0 or 9), when it is reported
    international_prefix: str = "00"
    trunk_prefix: str = "0"
    carrier_digits: int = 2  # Brazil's carrier selection code after the trunk or international prefix
    area_code_digits: int = 2
    subscriber_digits: tuple[int, ...] = (8, 9)
    extension_max_digits: int = 6

    def validate(self) -> None:
        """Refuse a plan that cannot place a number, naming the setting to fix."""
        if not (self.country_code.isdigit() and 1 <= len(self.country_code) <= 3):
            raise InvalidInput("numbering.country_code", "must be 1 to 3 digits (55 for Brazil)")
        if self.area_code is not None and not (
            self.area_code.isdigit() and len(self.area_code) == self.area_code_digits
        ):
            raise InvalidInput("numbering.area_code", f"must be {self.area_code_digits} digits")
        for name in ("outside_line_prefix", "international_prefix", "trunk_prefix"):
            value = getattr(self, name)
            if value and not value.isdigit():
                raise InvalidInput(f"numbering.{name}", "must be digits or empty")
        if not self.subscriber_digits or any(not 4 <= n <= 12 for n in self.subscriber_digits):
            raise InvalidInput("numbering.subscriber_digits", "must list lengths between 4 and 12")
        if not 0 <= self.carrier_digits <= 3:
            raise InvalidInput("numbering.carrier_digits", "must be 0 to 3")

    @property
    def brazilian(self) -> bool:
        return self.country_code == "55"


def to_e164(number: str, plan: NumberingPlan, *, dialled: bool = False) -> str | None:
    """The number in E.164 (`+5511987654321`), or None when the plan cannot place it.

    `dialled`: the number was dialled through the PBX, so its outside-line prefix comes first.
    """
    digits = number.strip().translate(_SEPARATORS)
    if digits.startswith("+"):
        rest = digits[1:]
        return "+" + rest if rest.isdigit() and 8 <= len(rest) <= 15 else None
    if not digits.isdigit():
        return None  # star codes, letters, SIP names
    if dialled and plan.outside_line_prefix and digits.startswith(plan.outside_line_prefix):
        stripped = digits[len(plan.outside_line_prefix) :]
        if len(stripped) > plan.extension_max_digits:
            digits = stripped
    if len(digits) <= plan.extension_max_digits:
        return None
    if plan.international_prefix and digits.startswith(plan.international_prefix):
        rest = digits[len(plan.international_prefix) + plan.carrier_digits :]
        if rest.startswith(plan.country_code):
            return _national(rest[len(plan.country_code) :], plan)
        return "+" + rest if rest.isdigit() and 8 <= len(rest) <= 15 else None
    if plan.trunk_prefix and digits.startswith(plan.trunk_prefix):
        rest = digits[len(plan.trunk_prefix) :]
        if plan.carrier_digits and len(rest) - plan.carrier_digits - plan.area_code_digits in plan.subscriber_digits:
            return _national(rest[plan.carrier_digits :], plan)  # 0 + carrier + area + number
        return _national(rest, plan)  # 0 + area + number (a collect call, an old PBX)
    if len(digits) in plan.subscriber_digits:
        if plan.area_code is None:
            return None
        return _national(plan.area_code + digits, plan)
    if digits.startswith(plan.country_code):
        placed = _national(digits[len(plan.country_code) :], plan)
        if placed is not None:
            return placed  # a caller ID presented with its country code (5511...)
    return _national(digits, plan)  # a caller ID in national format (11987654321)


def _national(digits: str, plan: NumberingPlan) -> str | None:
    """Area code + subscriber number as E.164, if it has the plan's shape."""
    area, subscriber = digits[: plan.area_code_digits], digits[plan.area_code_digits :]
    if len(subscriber) not in plan.subscriber_digits or not digits.isdigit():
        return None
    if plan.brazilian:
        if "0" in area:
            return None  # no DDD has a zero; 0800, 0300, 0500 and 0900 numbers are not geographic
        if len(subscriber) == 9 and subscriber[0] != "9":
            return None  # 9-digit numbers are mobiles, and start with 9
        if len(subscriber) == 8 and subscriber[0] not in "2345":
            return None  # 8-digit numbers are fixed lines, starting 2 to 5
    return f"+{plan.country_code}{area}{subscriber}"


def fill_e164(data: dict[str, Any], plan: NumberingPlan | None) -> None:
    """Set `caller_e164` and `called_e164` of a call's data where the source's plan places the numbers.

    Internal calls are between extensions and get none. The dialled number of an outbound call
    went through the PBX (its outside-line prefix may lead); an inbound call's is the DID.
    """
    if plan is None or data.get("direction") == "internal":
        return
    outbound = data.get("direction") == "outbound"
    if data.get("caller_e164") is None and data.get("caller"):
        data["caller_e164"] = to_e164(data["caller"], plan)
    if data.get("called_e164") is None and data.get("dialled"):
        data["called_e164"] = to_e164(data["dialled"], plan, dialled=outbound)
