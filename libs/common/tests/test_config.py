"""Settings: per-service prefix over the shared prefix, and no default secret outside development."""

from typing import ClassVar

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from tarifa_common.config import DEVELOPMENT_JWT_SECRET, Environment, ServiceSettings


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"
    default_http_port: ClassVar[int] = 8199
    model_config = SettingsConfigDict(env_prefix="TARIFA_EXAMPLE_", extra="ignore", validate_default=True)


def test_a_service_value_overrides_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFA_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("TARIFA_EXAMPLE_DATABASE_URL", "postgresql+asyncpg://example@db/example")
    monkeypatch.setenv("TARIFA_DATABASE_URL", "postgresql+asyncpg://shared@db/shared")
    settings = ExampleSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.database_url == "postgresql+asyncpg://example@db/example"
    assert settings.http_port == 8199
    assert settings.kafka_client_id == "tarifa-example"


def test_development_falls_back_to_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARIFA_JWT_SECRET", raising=False)
    assert ExampleSettings().jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET


def test_production_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARIFA_JWT_SECRET", raising=False)
    monkeypatch.setenv("TARIFA_ENVIRONMENT", "production")
    monkeypatch.setenv("TARIFA_EXAMPLE_DATABASE_URL", "postgresql+asyncpg://x@db/x")
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        ExampleSettings()


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFA_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
    monkeypatch.setenv("TARIFA_ENVIRONMENT", "production")
    monkeypatch.setenv("TARIFA_EXAMPLE_DATABASE_URL", "postgresql+asyncpg://x@db/x")
    with pytest.raises(ValidationError, match="development secret is refused"):
        ExampleSettings()


def test_production_requires_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFA_ENVIRONMENT", "production")
    monkeypatch.setenv("TARIFA_JWT_SECRET", "x" * 40)
    with pytest.raises(ValidationError, match="TARIFA_EXAMPLE_DATABASE_URL is required"):
        ExampleSettings()


def test_a_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFA_JWT_SECRET", "short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        ExampleSettings()


def test_environment_is_read_from_the_shared_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFA_ENVIRONMENT", "test")
    assert ExampleSettings().environment is Environment.TEST


def test_outside_production_the_database_is_the_file_tarifa_up_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARIFA_EXAMPLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("TARIFA_DATABASE_URL", raising=False)
    monkeypatch.setenv("TARIFA_DATA_DIR", "/srv/tarifa")
    assert ExampleSettings().database_url == "sqlite+aiosqlite:////srv/tarifa/db/example.db"


def test_a_service_process_collects_young_objects_as_its_settings_say_unless_told_not_to() -> None:
    import gc

    from tarifa_common.config import tune_garbage_collector

    before = gc.get_threshold()
    try:
        tune_garbage_collector(ServiceSettings(gc_young_threshold=12_345))
        assert gc.get_threshold() == (12_345, before[1], before[2])
        gc.set_threshold(*before)
        tune_garbage_collector(ServiceSettings(gc_young_threshold=0))
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
