"""Settings of voip-summit: `TARIFA_VOIP_SUMMIT_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class VoipSummitSettings(ServiceSettings):
    service_name: ClassVar[str] = "voip-summit"
    default_http_port: ClassVar[int] = 8103

    model_config = SettingsConfigDict(env_prefix="TARIFA_VOIP_SUMMIT_", extra="ignore", validate_default=True)
