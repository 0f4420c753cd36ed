"""The settings compose and Kubernetes give each service are real fields of its Settings class,
spelled as `tarifa up` spells them, and they make a valid configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from deploy_support import SERVICES, Doc, compose, interpolate, named

from tarifa_common.config import ServiceSettings
from tarifa_common.service import ServiceSpec, discover
from tarifa_common.supervisor import Supervisor

SPECS = discover()
# What a Secret holds in a cluster, for building the settings offline.
SECRET_PLACEHOLDERS = {
    "DATABASE_URL": "postgresql+asyncpg://tarifa:secret@postgresql:5432/tarifa",
    "JWT_SECRET": "x" * 48,
    "SECRET_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",  # a Fernet key, made up for the test
}


def field_of(settings: type[ServiceSettings], name: str) -> str | None:
    """The settings field an environment variable sets: `<SERVICE PREFIX><FIELD>` or the shared `TARIFA_<FIELD>`."""
    for field in settings.model_fields:
        if name in {f"{settings.env_prefix()}{field.upper()}", f"TARIFA_{field.upper()}"}:
            return field
    return None


def compose_environment(name: str) -> dict[str, str]:
    environment = compose()["services"][name]["environment"]
    return {key: interpolate(value) for key, value in environment.items()}


def kubernetes_environment(docs: list[Doc], name: str) -> dict[str, str]:
    (container,) = named(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environment |= named(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            suffix = next(key for key in SECRET_PLACEHOLDERS if variable["name"].endswith(key))
            environment[variable["name"]] = SECRET_PLACEHOLDERS[suffix]
    return environment


def environments(rendered: dict[str, list[Doc]], name: str) -> dict[str, dict[str, str]]:
    return {
        "docker-compose.yml": compose_environment(name),
        **{f"k8s/overlays/{overlay}": kubernetes_environment(docs, name) for overlay, docs in rendered.items()},
    }


@pytest.fixture(scope="module")
def names_tarifa_up_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The variables `tarifa up` gives each service that are settings of that service."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("TARIFA_")]:
            patch.delenv(key)
        supervisor = Supervisor(list(SPECS.values()), data_dir=Path(tmp_path_factory.mktemp("up")), broker_port=1)
        return {
            managed.spec.name: {
                key for key in managed.env if key.startswith("TARIFA_") and field_of(managed.spec.settings, key)
            }
            for managed in supervisor.services
        }


def test_every_service_is_deployed() -> None:
    assert set(SPECS) == set(SERVICES)
    assert set(SERVICES) <= set(compose()["services"])


@pytest.mark.parametrize("name", SERVICES)
def test_every_variable_given_to_a_service_is_one_of_its_settings(name: str, rendered: dict[str, list[Doc]]) -> None:
    settings = SPECS[name].settings
    for where, environment in environments(rendered, name).items():
        unknown = sorted(key for key in environment if field_of(settings, key) is None)
        assert unknown == [], f"{where} gives {name} variables that are not {settings.__name__} fields: {unknown}"


@pytest.mark.parametrize("name", SERVICES)
def test_compose_and_kubernetes_set_what_tarifa_up_sets_under_the_same_names(
    name: str, rendered: dict[str, list[Doc]], names_tarifa_up_sets: dict[str, set[str]]
) -> None:
    expected = names_tarifa_up_sets[name]
    assert {"TARIFA_KAFKA_BOOTSTRAP_SERVERS", "TARIFA_JWT_SECRET"} <= expected
    for where, environment in environments(rendered, name).items():
        missing = sorted(expected - set(environment))
        assert missing == [], f"{where} does not set {missing} for {name}, which `tarifa up` sets"


@pytest.mark.parametrize("name", SERVICES)
def test_the_deployed_settings_make_a_valid_configuration(
    name: str, rendered: dict[str, list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec: ServiceSpec = SPECS[name]
    for where, environment in environments(rendered, name).items():
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("TARIFA_")]:
                patch.delenv(key)
            for key, value in environment.items():
                patch.setenv(key, value)
            settings = spec.settings()
        assert settings.http_host == "0.0.0.0", where
        assert settings.http_port == spec.settings.default_http_port, where
        assert settings.database_url.startswith("postgresql+asyncpg://"), where
        assert settings.kafka_bootstrap_servers in {"kafka:9092", "tarifa-kafka-bootstrap:9092"}, where
