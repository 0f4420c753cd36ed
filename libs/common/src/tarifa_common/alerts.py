"""The alert contract every service speaks: `tarifa.alert.raised.v1` and `tarifa.alert.resolved.v1`.

Alerts travel on `alert.events` keyed by fingerprint, so a resolution never overtakes its alert.
The fingerprint identifies the condition (for example `collector/source-silent/<source id>`):
alerts with one fingerprint are one alert, however often they are raised.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tarifa_common.events import Event

RAISED = "tarifa.alert.raised.v1"
RESOLVED = "tarifa.alert.resolved.v1"


class Severity(StrEnum):
    STANDARD = "standard"  # the inbox only
    IMPORTANT = "important"  # also e-mail to the people responsible
    URGENT = "urgent"  # also SMS, for objects that must run 24 hours a day


class SourceKind(StrEnum):
    CLIENT = "client"  # raised by a client, by hand
    SERVICE_TEAM = "service_team"  # work done or planned by the service team
    AUTOMATION = "automation"  # the platform's own checks (silent source, billing deadline)
    CLIENT_SYSTEM = "client_system"  # a client's system registering a failure automatically


class AlertObject(BaseModel):
    kind: str = Field(examples=["source"], description="source, line, contract, customer, service, ...")
    id: str = Field(examples=["pbx-hq"])


class AlertRaised(BaseModel):
    fingerprint: str = Field(examples=["collector/source-silent/pbx-hq"])
    severity: Severity
    source_kind: SourceKind = SourceKind.AUTOMATION
    object: AlertObject
    summary: str = Field(examples=["No call records from pbx-hq for 20 minutes"])
    details: dict[str, Any] = Field(default_factory=dict)


class AlertResolved(BaseModel):
    fingerprint: str
    object: AlertObject
    summary: str = ""


def raised(tenant: str, service: str, alert: AlertRaised) -> Event:
    return Event(
        type=RAISED,
        source=f"tarifa/{service}",
        tenant=tenant,
        subject=alert.fingerprint,
        data=alert.model_dump(mode="json"),
    )


def resolved(tenant: str, service: str, alert: AlertResolved) -> Event:
    return Event(
        type=RESOLVED,
        source=f"tarifa/{service}",
        tenant=tenant,
        subject=alert.fingerprint,
        data=alert.model_dump(mode="json"),
    )
