"""Collector settings: `TARIFA_COLLECTOR_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class CollectorSettings(ServiceSettings):
    service_name: ClassVar[str] = "collector"
    default_http_port: ClassVar[int] = 8101

    model_config = SettingsConfigDict(env_prefix="TARIFA_COLLECTOR_", extra="ignore", validate_default=True)

    smdr_bind_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - IP Office connects from the LAN; a source's `host` narrows it
        description="address SMDR listeners bind to when a source names no host",
    )
    reconcile_seconds: float = Field(default=2.0, gt=0, description="how often running links follow source changes")
    watchdog_seconds: float = Field(
        default=30.0, gt=0, description="how often silent sources and dropped links are checked"
    )
    link_grace_seconds: float = Field(default=60.0, ge=0, description="a link down longer than this raises an alert")
    leg_timeout_minutes: float = Field(
        default=120.0, gt=0, description="SMDR legs whose last record never came are published incomplete after this"
    )
    client_max_backoff_seconds: float = Field(default=30.0, gt=0, description="longest wait between reconnects")
    directory_poll_seconds: float = Field(default=5.0, gt=0)
    directory_settle_seconds: float = Field(
        default=2.0, ge=0, description="a dropped file is read once it has not changed for this long"
    )
    republish_on_start_hours: float = Field(
        default=0,
        ge=0,
        description="on start, re-publish the calls of the last N hours of every source (the embedded broker "
        "forgets its topics on restart; consumers skip what they have by event id). 0: off",
    )
    rater_url: str = Field(
        default="",
        description="the rater's base URL (tarifa up sets it): on start, re-publish the calls it has not accounted for",
    )
    voip_summit_url: str = Field(
        default="",
        description="voip-summit's base URL (tarifa up sets it): summit_integration sources read their CDR import "
        "settings there",
    )
    voip_summit_timeout_seconds: float = Field(default=10.0, gt=0, description="one request to voip-summit")
    summit_refresh_seconds: float = Field(
        default=60.0, gt=0, description="how often summit_integration sources re-read their settings from voip-summit"
    )
    republish_unaccounted_days: float = Field(
        default=62, gt=0, description="how far back the start-up re-publish looks (two billing months)"
    )
    prepare_worker: bool = Field(
        default=True,
        description="prepare SMDR batches (parse, assemble, serialise) in a worker process of their own, off the "
        "event loop that stores them; false keeps it in the service's process (docs/collector.md, Speed)",
    )
    gc_young_threshold: int = Field(
        default=10_000,
        ge=0,
        description="allocations between collections of young objects (Python's default: 700); the SMDR path "
        "allocates tens of thousands of short-lived objects per batch, and collecting them 700 at a time cost "
        "a third of its CPU. 0: Python's default",
    )
    http_max_batch: int = Field(default=5000, ge=1, le=100_000, description="records per POST /v1/cdrs")
