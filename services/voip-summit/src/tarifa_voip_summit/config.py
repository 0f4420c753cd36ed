"""Settings of voip-summit: `TARIFA_VOIP_SUMMIT_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tarifa_common.config import Environment, ServiceSettings

# A Fernet key for development and tests only; refused in production like the development JWT secret.
DEVELOPMENT_SECRET_KEY = "dGFyaWZhLXZvaXAtc3VtbWl0LWRldmVsb3BtZW50ISE="  # noqa: S105


class VoipSummitSettings(ServiceSettings):
    service_name: ClassVar[str] = "voip-summit"
    default_http_port: ClassVar[int] = 8103

    model_config = SettingsConfigDict(env_prefix="TARIFA_VOIP_SUMMIT_", extra="ignore", validate_default=True)

    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key (urlsafe base64 of 32 bytes) that encrypts Summit access passwords at rest; "
        "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
    )
    summit_timeout_seconds: float = Field(default=5.0, gt=0)
    summit_attempts: int = Field(default=5, ge=1, description="tries per Summit call (retries on 5xx, 429, timeouts)")
    summit_backoff_seconds: float = Field(default=0.2, ge=0)
    summit_scheme: str = Field(default="http", pattern="^https?$")
    operation_poll_seconds: float = Field(default=0.5, gt=0)
    operation_max_attempts: int = Field(
        default=3, ge=1, description="failed rounds (each with its own HTTP retries) before an operation is failed"
    )
    reconcile_interval_seconds: float = Field(default=3600.0, gt=0)
    embedded_simulator_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="run the Summit simulator inside this process on this port (0 = off); for `tarifa up` demos",
    )

    @model_validator(mode="after")
    def _secret_key(self) -> Self:
        if not self.secret_key.get_secret_value():
            if self.environment is Environment.PRODUCTION:
                raise ValueError("set TARIFA_VOIP_SUMMIT_SECRET_KEY to a Fernet key; none is built in for production")
            self.secret_key = SecretStr(DEVELOPMENT_SECRET_KEY)
        elif (
            self.environment is Environment.PRODUCTION and self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
        ):
            raise ValueError("the development TARIFA_VOIP_SUMMIT_SECRET_KEY is refused in production")
        return self
