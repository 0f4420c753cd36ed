"""Settings pieces every service builds on: one prefix per service, shared values under `TARIFA_`.

A service's settings class sets its own prefix (`TARIFA_RATER_`). Each field is read first
from the service's prefix and then from the plain `TARIFA_` prefix, so a value shared by every
service (the Kafka address, the token key) is set once and overridden per service when needed.
"""

from __future__ import annotations

import gc
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEVELOPMENT_JWT_SECRET = "tarifa-development-only-secret-change-me"  # noqa: S105 - refused outside development


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class TraceExporter(StrEnum):
    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class ServiceSettings(BaseSettings):
    """What every service reads. Subclasses add their own fields and set `service_name`."""

    service_name: ClassVar[str] = "tarifa"
    default_http_port: ClassVar[int] = 8100

    model_config = SettingsConfigDict(env_prefix="TARIFA_", extra="ignore", validate_default=True)

    environment: Environment = Environment.DEVELOPMENT
    http_host: str = "127.0.0.1"
    http_port: int = 0
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db; "
        "outside production it defaults to the embedded platform's file under data_dir",
    )
    data_dir: Path = Field(default=Path(".tarifa"), description="the embedded platform's data directory (tarifa up)")
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_client_id: str = ""
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    consumer_max_attempts: int = Field(default=3, ge=1, description="handler failures before dead-lettering")
    # Apache Kafka refuses sessions under 6 s (group.min.session.timeout.ms); the embedded broker
    # accepts shorter ones and holds a join for about the session timeout, so `tarifa up` uses 3 s.
    consumer_session_timeout_ms: int = Field(default=10_000, ge=1000)
    consumer_rebalance_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_seconds: float = Field(default=10.0, gt=0)
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    gc_young_threshold: int = Field(
        default=0,
        ge=0,
        description="allocations between collections of young objects in the service process (0: Python's "
        "default, 700); services whose hot path allocates many short-lived objects per batch set their own",
    )
    jwt_secret: SecretStr = SecretStr("")
    jwt_issuer: str = "tarifa"
    trace_exporter: TraceExporter = TraceExporter.NONE
    otlp_endpoint: str = "http://127.0.0.1:4318"
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.http_port == 0:
            self.http_port = self.default_http_port
        if not self.database_url:
            if self.environment is Environment.PRODUCTION:
                raise ValueError(f"{self.env_prefix()}DATABASE_URL is required in production")
            # The file `tarifa up` uses, so that `tarifa <service> …` commands see the running platform's data.
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'db' / self.service_name}.db"
        if not self.kafka_client_id:
            self.kafka_client_id = f"tarifa-{self.service_name}"
        secret = self.jwt_secret.get_secret_value()
        if not secret or secret == DEVELOPMENT_JWT_SECRET:
            if self.environment is Environment.PRODUCTION:
                raise ValueError(
                    f"set {self.env_prefix()}JWT_SECRET (or TARIFA_JWT_SECRET) to a random value of at least "
                    "32 characters; the development secret is refused in production"
                )
            self.jwt_secret = SecretStr(DEVELOPMENT_JWT_SECRET)
        elif len(secret) < 32:
            raise ValueError(
                "JWT_SECRET must be at least 32 characters "
                "(try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @classmethod
    def env_prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix", "TARIFA_"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix="TARIFA_", case_sensitive=False)
        return init_settings, env_settings, shared, dotenv_settings, file_secret_settings


def random_secret() -> str:
    """A fresh token-signing key, for `tarifa up` and for operators setting up a cluster."""
    return secrets.token_urlsafe(48)


def settings_env(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    """Environment variables that give `values` to settings read under `prefix`."""
    return {f"{prefix}{key.upper()}": str(value) for key, value in values.items()}


def tune_garbage_collector(settings: ServiceSettings) -> None:
    """Collect young objects every `gc_young_threshold` allocations instead of Python's 700.

    A batch of calls allocates hundreds of thousands of short-lived objects that reference
    counting frees anyway; collecting every 700 allocations cost the collector a third and the
    rater a fifth of their CPU (docs/collector.md, docs/rater.md). 0 leaves Python's default.
    """
    collect_young_every(settings.gc_young_threshold)


def collect_young_every(allocations: int) -> None:
    """`tune_garbage_collector` for a process without settings (a worker process of a service); 0 changes nothing."""
    if allocations:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(allocations, middle, old)
