"""Settings of invoicer: `TARIFA_INVOICER_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class InvoicerSettings(ServiceSettings):
    service_name: ClassVar[str] = "invoicer"
    default_http_port: ClassVar[int] = 8104

    model_config = SettingsConfigDict(env_prefix="TARIFA_INVOICER_", extra="ignore", validate_default=True)
