"""Settings of rater: `TARIFA_RATER_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class RaterSettings(ServiceSettings):
    service_name: ClassVar[str] = "rater"
    default_http_port: ClassVar[int] = 8102

    model_config = SettingsConfigDict(env_prefix="TARIFA_RATER_", extra="ignore", validate_default=True)
