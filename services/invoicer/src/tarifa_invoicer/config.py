"""Settings of invoicer: `TARIFA_INVOICER_*`, falling back to `TARIFA_*` for shared values."""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class InvoicerSettings(ServiceSettings):
    service_name: ClassVar[str] = "invoicer"
    default_http_port: ClassVar[int] = 8104

    model_config = SettingsConfigDict(env_prefix="TARIFA_INVOICER_", extra="ignore", validate_default=True)

    edi_signing_secret: SecretStr = Field(
        default=SecretStr("development-edi-signing-secret"),
        description="HMAC key of EDI pushes (X-Tarifa-Signature); set a real one in production",
    )
    delivery_poll_seconds: float = Field(default=2.0, gt=0)
    delivery_max_attempts: int = Field(default=5, ge=1, description="passes before a delivery is marked failed")
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = Field(default="invoices@tarifa.invalid", description="From: of invoice e-mails")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    collector_url: str = Field(
        default="http://127.0.0.1:8101",
        description="the collector's API, asked before a period is closed whether every source has delivered",
    )
    collector_timeout_seconds: float = Field(default=10.0, gt=0)
    rated_catch_up_seconds: float = Field(
        default=60.0,
        ge=0,
        description="how long a billing run waits for the invoicer to store the cdr.rated events published before it",
    )
    email_poll_seconds: float = Field(default=2.0, gt=0, description="how often e-mails of issued invoices are sent")
    email_max_attempts: int = Field(default=5, ge=1, description="passes before an invoice e-mail is marked failed")
    email_uncertain_after_seconds: float = Field(
        default=300, gt=0, description="an e-mail claimed this long ago and not settled is `uncertain`, not re-sent"
    )
    auto_bill_day: int = Field(
        default=0, ge=0, le=28, description="day of the month to bill the month before automatically; 0 = off"
    )
