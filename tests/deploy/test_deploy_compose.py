"""docker-compose.yml: valid against the compose specification, and it comes up in order."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from deploy_support import COMPOSE_FILE, ROOT, SERVICES, compose, compose_binary, interpolate, run, tool

PORTS = {"collector": 8101, "rater": 8102, "voip-summit": 8103, "invoicer": 8104, "notifier": 8105}
# The image drops every default once one KAFKA_* variable is set: these must all be there.
KAFKA_REQUIRED = {
    "CLUSTER_ID",
    "KAFKA_NODE_ID",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_CONTROLLER_LISTENER_NAMES",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    "KAFKA_LOG_DIRS",
}


def validate(path: Path) -> tuple[int, str]:
    completed = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path)
    return completed.returncode, completed.stdout + completed.stderr


def test_the_compose_file_follows_the_compose_specification() -> None:
    code, output = validate(COMPOSE_FILE)
    assert code == 0, output


def test_a_misspelled_compose_key_fails_the_specification(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert "    healthcheck:\n" in text
    broken.write_text(text.replace("    healthcheck:\n", "    healtcheck:\n", 1))
    code, output = validate(broken)
    assert code != 0
    assert "healtcheck" in output, output


def compose_config(path: Path) -> tuple[int, str]:
    """`docker compose config`: the whole model (interpolation, anchors, profiles, dependencies), no engine."""
    completed = run(compose_binary(), "--file", path, "--profile", "demo", "config", "--quiet", cwd=path.parent)
    return completed.returncode, completed.stdout + completed.stderr


def test_docker_compose_itself_accepts_the_file() -> None:
    code, output = compose_config(COMPOSE_FILE)
    assert code == 0, output


def test_docker_compose_refuses_a_dependency_on_a_missing_service(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert "      collector:\n        condition: service_healthy\n" in text
    broken.write_text(
        text.replace(
            "      collector:\n        condition: service_healthy\n",
            "      colector:\n        condition: service_healthy\n",
            1,
        )
    )
    code, output = compose_config(broken)
    assert code != 0
    assert "colector" in output, output


def test_kafka_is_a_single_kraft_node_with_every_setting_spelled_out() -> None:
    environment = compose()["services"]["kafka"]["environment"]
    assert compose()["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert set(environment) >= KAFKA_REQUIRED
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert str(environment[name]) == "1"


def test_every_service_serves_from_the_one_image_and_waits_for_its_infrastructure() -> None:
    services = compose()["services"]
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["serve", name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert f"http://127.0.0.1:{PORTS[name]}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "profiles" not in service
    assert services["invoicer"]["depends_on"]["collector"]["condition"] == "service_healthy"
    assert services["notifier"]["depends_on"]["mailpit"]["condition"] == "service_healthy"
    for infrastructure in ("kafka", "postgres", "mailpit"):
        assert services[infrastructure]["healthcheck"]["test"]


def test_the_simulators_run_only_in_the_demo_profile() -> None:
    services = compose()["services"]
    demo = {name for name, service in services.items() if "demo" in service.get("profiles", [])}
    assert demo == {"summit-simulator", "pbx-simulator"}
    assert {"mailpit", "jaeger", "otel-collector"} <= set(services)


def test_each_service_gets_its_own_database_created_by_the_init_script() -> None:
    services = compose()["services"]
    mount = next(v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = (ROOT / mount.split(":")[0]).read_text()
    loop = re.search(r"for service in ([a-z_ ]+); do", script)
    assert loop, "the init script no longer loops over the services' databases"
    created = set(loop.group(1).split())
    databases = set()
    for name in SERVICES:
        prefix = f"TARIFA_{name.upper().replace('-', '_')}_"
        url = urlsplit(interpolate(services[name]["environment"][f"{prefix}DATABASE_URL"]))
        assert url.scheme == "postgresql+asyncpg"
        assert url.username == url.path.lstrip("/")
        databases.add(url.username)
    assert databases == created
    assert len(databases) == len(SERVICES)


def test_every_file_the_compose_file_mounts_exists() -> None:
    # `docker compose config` does not look at bind-mount sources; a missing one would become an empty directory.
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts {source}, which does not exist"
