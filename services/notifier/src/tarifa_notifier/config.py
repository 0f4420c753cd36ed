"""Settings of notifier: `TARIFA_NOTIFIER_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    default_http_port: ClassVar[int] = 8105

    model_config = SettingsConfigDict(env_prefix="TARIFA_NOTIFIER_", extra="ignore", validate_default=True)
