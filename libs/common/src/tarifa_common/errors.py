"""Error kinds every service's domain raises. They carry no HTTP status: the API edge maps them.

A domain error subclasses one of these kinds; `tarifa_common.http` renders each kind with its
status and a problem+json body (RFC 9457) that names the field and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    problem: str


class TarifaError(Exception):
    """Base of every expected business error; never rendered as a 500."""

    code = "error"

    def __init__(self, message: str, *, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidInput(TarifaError):
    """The request is well-formed but a value breaks a rule; name the field."""

    code = "invalid_input"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", problems=[FieldProblem(field, problem)])


class NotFound(TarifaError):
    code = "not_found"


class Conflict(TarifaError):
    """The request clashes with the current state (a number in use, an issued invoice)."""

    code = "conflict"


class Forbidden(TarifaError):
    code = "forbidden"


class Unavailable(TarifaError):
    """A dependency (broker, database, remote platform) cannot answer now; try again later."""

    code = "unavailable"
