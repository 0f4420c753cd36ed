"""Settings of notifier: `TARIFA_NOTIFIER_*`, falling back to `TARIFA_*` for shared values."""

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tarifa_common.config import ServiceSettings


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class SmsProvider(StrEnum):
    SMPP = "smpp"
    HTTP = "http"


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    default_http_port: ClassVar[int] = 8105

    model_config = SettingsConfigDict(env_prefix="TARIFA_NOTIFIER_", extra="ignore", validate_default=True)

    # Alertmanager's timers (the rating watchdog repeats at its own interval instead).
    group_wait_seconds: float = Field(default=30.0, ge=0)
    group_interval_seconds: float = Field(default=300.0, ge=0)
    repeat_interval_seconds: float = Field(default=4 * 3600.0, gt=0)
    flush_tick_seconds: float = Field(default=1.0, gt=0)
    dispatch_tick_seconds: float = Field(default=1.0, gt=0)
    # Watchdogs.
    watchdog_tick_seconds: float = Field(default=15.0, gt=0)
    rating_check_minutes: float = Field(default=5.0, gt=0, description="CmTel's X: check rating every X minutes")
    watch_emails: list[str] = Field(default_factory=list, description="told about every watchdog alert (JSON list)")
    lag_threshold: int = Field(default=10_000, ge=0)
    heartbeat_misses: int = Field(default=3, ge=1)
    watch_dead_letters: bool = True
    # E-mail.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: SmtpSecurity = SmtpSecurity.NONE
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "tarifa@localhost"
    smtp_ca_file: str = Field(default="", description="CA bundle for a server with a private certificate")
    # SMS.
    default_sms_provider: SmsProvider = SmsProvider.SMPP
    smpp_host: str = ""
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: SecretStr = SecretStr("")
    smpp_source_addr: str = "Tarifa"
    sms_http_url: str = ""
    sms_http_account: str = ""
    sms_http_token: SecretStr = SecretStr("")
    sms_http_from: str = "Tarifa"
    # Retries.
    send_attempts: int = Field(default=3, ge=1, description="tenacity attempts per delivery round")
    send_retry_wait_seconds: float = Field(default=1.0, ge=0)
    send_rounds: int = Field(default=10, ge=1, description="rounds before a message is marked failed")
    send_round_backoff_seconds: float = Field(default=30.0, ge=0)
    # Reports read from the other services (their HTTP APIs, as the schedule's tenant).
    rater_url: str = Field(default="http://127.0.0.1:8102", description="the rater's API, for calls reports")
    invoicer_url: str = Field(default="http://127.0.0.1:8104", description="the invoicer's API, for invoicing reports")
    report_attempts: int = Field(default=3, ge=1, description="tenacity attempts per report round")
    report_retry_wait_seconds: float = Field(default=2.0, ge=0)
    report_retry_minutes: float = Field(default=5.0, gt=0, description="wait before the next round, doubling to 1 h")
    report_timeout_seconds: float = Field(default=60.0, gt=0)
    # Replicas: one runs the decisions, watchdogs and reports (the lease); all share the send queue.
    lease_seconds: float = Field(
        default=30.0, gt=0, description="a replica that stops renewing is replaced after this; above the loop ticks"
    )
    send_claim_seconds: float = Field(
        default=120.0, gt=0, description="a claimed message another replica may take once this has passed"
    )
