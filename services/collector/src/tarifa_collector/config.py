"""Collector settings: `TARIFA_COLLECTOR_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class CollectorSettings(ServiceSettings):
    service_name: ClassVar[str] = "collector"
    default_http_port: ClassVar[int] = 8101

    model_config = SettingsConfigDict(env_prefix="TARIFA_COLLECTOR_", extra="ignore", validate_default=True)
