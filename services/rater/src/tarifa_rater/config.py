"""Settings of rater: `TARIFA_RATER_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class RaterSettings(ServiceSettings):
    service_name: ClassVar[str] = "rater"
    default_http_port: ClassVar[int] = 8102

    model_config = SettingsConfigDict(env_prefix="TARIFA_RATER_", extra="ignore", validate_default=True)

    country_code: str = Field(
        default="55", pattern=r"^[0-9]{1,3}$", description="the numbering plan of tenants that set none"
    )
    home_area_code: str = Field(
        default="11", pattern=r"^[0-9]{1,5}$", description="the home area (DDD) of tenants that set none"
    )
    rerate_chunk_size: int = Field(default=500, ge=1, le=50_000, description="calls per re-rate transaction")
    retry_chunk_size: int = Field(
        default=500, ge=1, le=50_000, description="waiting calls per transaction of a queued retry"
    )
    retry_poll_seconds: float = Field(
        default=1.0, gt=0, le=300, description="how often the retry loop looks for retries queued by other processes"
    )
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="allocations between young-generation garbage collections in the service process "
        "(0: Python's default); see docs/rater.md",
    )
