"""Bearer tokens: signed JWTs (HS256) that name a tenant and roles; `tarifa token` mints them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import jwt

from tarifa_common.events import utcnow

ALGORITHM = "HS256"
# Roles, from most to least powerful. A route names the roles it accepts.
ADMIN = "admin"  # everything within the tenant, settings included
OPERATOR = "operator"  # day-to-day work: sources, lines, billing runs, alerts
VIEWER = "viewer"  # read-only reports
INGEST = "ingest"  # machine clients pushing call records or alerts
SERVICE = "service"  # Tarifa's own services calling each other
ROLES = (ADMIN, OPERATOR, VIEWER, INGEST, SERVICE)


class InvalidToken(Exception):
    """The bearer token is missing, expired, badly signed or lacks a claim."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles) or ADMIN in self.roles


def mint(
    secret: str,
    *,
    subject: str,
    tenant: str,
    roles: list[str],
    issuer: str = "tarifa",
    ttl: timedelta = timedelta(hours=12),
) -> str:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}; known roles: {', '.join(ROLES)}")
    if not tenant:
        raise ValueError("tenant is required")
    now = utcnow()
    claims = {"sub": subject, "tenant": tenant, "roles": roles, "iss": issuer, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, secret: str, *, issuer: str = "tarifa") -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=issuer, options={"require": ["exp", "iat", "sub", "iss"]}
        )
    except jwt.ExpiredSignatureError as error:
        raise InvalidToken("the token has expired; mint a new one with `tarifa token`") from error
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"the token is not valid: {error}") from error
    tenant, roles = claims.get("tenant"), claims.get("roles")
    if not isinstance(tenant, str) or not tenant:
        raise InvalidToken("the token names no tenant")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("the token's roles claim must be a list of strings")
    return Principal(subject=str(claims["sub"]), tenant=tenant, roles=frozenset(roles))
