"""k8s/: every overlay renders, passes strict schema validation, and says what the issue asks of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploy_support import (
    CRD_SCHEMAS,
    K8S,
    OVERLAYS,
    SERVICES,
    Doc,
    RenderError,
    is_custom,
    named,
    of_kind,
    render,
    run,
    tool,
    write_docs,
)

from tarifa_common import topics

# The consumer group of each service and the topics it reads (docs/architecture.md).
CONSUMED = {
    "rater": {"cdr.raw", "line.events"},
    "voip-summit": {"contract.status", "line.usage"},
    "invoicer": {"cdr.rated", "line.events"},
    "notifier": {"alert.events", "service.heartbeat", "invoice.issued", "line.usage"},
}
# Who calls whom over HTTP: the invoicer asks the collector for watermarks, the notifier asks the
# rater and the invoicer for report data. Nothing else crosses between services over HTTP.
CALLS = {
    "collector": {"voip-summit"},  # the Summit integration's CDR import settings
    "rater": set(),
    "voip-summit": set(),
    "invoicer": {"collector"},
    "notifier": {"rater", "invoicer"},
}
PORTS = {"collector": 8101, "rater": 8102, "voip-summit": 8103, "invoicer": 8104, "notifier": 8105}
# uvicorn's timeout_graceful_shutdown (tarifa serve) plus the preStop pause.
SHUTDOWN_SECONDS = 20 + 5


def validate_built_in(docs: list[Doc], path: Path) -> tuple[int, str]:
    completed = run(tool("kubernetes-validate"), "--strict", "--quiet", write_docs(docs, path))
    return completed.returncode, completed.stdout + completed.stderr


def validate_custom(docs: list[Doc], directory: Path) -> tuple[int, str]:
    """Each custom resource in its own file, checked against its CRD's schema; worst exit code wins."""
    directory.mkdir(exist_ok=True)
    code, output = 0, ""
    for (api_version, kind), schema in CRD_SCHEMAS.items():
        files = [
            write_docs([doc], directory / f"{kind}-{index}.yaml")
            for index, doc in enumerate(d for d in docs if (d["apiVersion"], d["kind"]) == (api_version, kind))
        ]
        if files:
            completed = run(tool("check-jsonschema"), "--schemafile", schema, *files)
            code, output = max(code, completed.returncode), output + completed.stdout + completed.stderr
    return code, output


def tarifa_deployments(docs: list[Doc]) -> dict[str, Doc]:
    return {
        doc["metadata"]["name"]: doc
        for doc in of_kind(docs, "Deployment")
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "tarifa"
    }


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_kinds_pass_strict_kubernetes_validation(
    overlay: str, rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    built_in = [doc for doc in rendered[overlay] if not is_custom(doc)]
    code, output = validate_built_in(built_in, tmp_path / f"{overlay}.yaml")
    assert code == 0, output
    # kubernetes-validate only warns on a kind it has no schema for: each kind is built in or has a CRD schema.
    assert "Couldn't find schema" not in output, output


def test_custom_resources_pass_their_crd_schemas(rendered: dict[str, list[Doc]], tmp_path: Path) -> None:
    custom = [doc for doc in rendered["prod"] if is_custom(doc)]
    assert {doc["kind"] for doc in custom} == {"ScaledObject", "KafkaTopic"}
    code, output = validate_custom(custom, tmp_path)
    assert code == 0, output


def test_a_misspelled_field_fails_strict_validation(k8s_copy: Callable[[str, str, str], Path], tmp_path: Path) -> None:
    copy = k8s_copy("base/rater/deployment.yaml", "livenessProbe:", "livenesProbe:")
    docs = [doc for doc in render(copy / "overlays" / "prod") if not is_custom(doc)]
    code, output = validate_built_in(docs, tmp_path / "broken.yaml")
    assert code != 0
    assert "livenesProbe" in output


def test_a_numeric_trigger_metadata_value_fails_the_keda_schema(
    k8s_copy: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    copy = k8s_copy("components/autoscaling/rater-scaledobject.yaml", 'lagThreshold: "200"', "lagThreshold: 200")
    code, output = validate_custom([d for d in render(copy / "overlays" / "prod") if is_custom(d)], tmp_path / "out")
    assert code != 0
    assert "200 is not of type 'string'" in output, output


def test_a_misspelled_kafka_trigger_key_fails_the_keda_schema(
    k8s_copy: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    # KEDA would ignore the key and scale on its default threshold.
    copy = k8s_copy("components/autoscaling/invoicer-scaledobject.yaml", "lagThreshold:", "lagTreshold:")
    code, output = validate_custom([d for d in render(copy / "overlays" / "prod") if is_custom(d)], tmp_path / "out")
    assert code != 0
    assert "lagTreshold" in output, output


def test_a_fallback_beside_a_cpu_trigger_fails_the_keda_schema(
    k8s_copy: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    # KEDA's webhook refuses a fallback when a trigger is cpu or memory: the ScaledObject would never apply.
    copy = k8s_copy(
        "components/autoscaling/rater-scaledobject.yaml",
        "  triggers:\n",
        "  fallback:\n    failureThreshold: 3\n    replicas: 2\n  triggers:\n",
    )
    code, output = validate_custom([d for d in render(copy / "overlays" / "prod") if is_custom(d)], tmp_path / "out")
    assert code != 0
    assert "'cpu' should not be valid" in output, output


def test_an_unknown_kafkatopic_field_fails_the_strimzi_schema(
    k8s_copy: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    copy = k8s_copy("components/strimzi-topics/kafkatopics.yaml", "  partitions: 6", "  partition: 6")
    code, output = validate_custom([d for d in render(copy / "overlays" / "prod") if is_custom(d)], tmp_path / "out")
    assert code != 0
    assert "partition" in output, output


def test_a_kustomization_naming_a_missing_file_fails_to_render(k8s_copy: Callable[[str, str, str], Path]) -> None:
    copy = k8s_copy("base/notifier/kustomization.yaml", "  - pdb.yaml", "  - pdb-missing.yaml")
    with pytest.raises(RenderError, match=r"pdb-missing\.yaml"):
        render(copy / "overlays" / "dev")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_runs_with_probes_limits_and_a_graceful_shutdown(
    overlay: str, rendered: dict[str, list[Doc]]
) -> None:
    deployments = tarifa_deployments(rendered[overlay])
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
        assert (
            pod["terminationGracePeriodSeconds"]
            >= SHUTDOWN_SECONDS + container["lifecycle"]["preStop"]["sleep"]["seconds"]
        )
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert {p["containerPort"] for p in container["ports"] if p["name"] == "http"} == {PORTS[name]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_and_never_rendered(overlay: str, rendered: dict[str, list[Doc]]) -> None:
    docs = rendered[overlay]
    assert of_kind(docs, "Secret") == []
    for name, deployment in tarifa_deployments(docs).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = {env["valueFrom"]["secretKeyRef"]["name"] for env in container["env"] if "valueFrom" in env}
        extra = {"voip-summit": {"tarifa-voip-summit-secret-key"}}.get(name, set())
        assert refs == {f"tarifa-{name}-database", "tarifa-jwt", *extra}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_disruption_budget_and_network_policies(
    overlay: str, rendered: dict[str, list[Doc]]
) -> None:
    docs = rendered[overlay]
    for name, deployment in tarifa_deployments(docs).items():
        labels = pod_labels(deployment)
        budgets = [
            pdb
            for pdb in of_kind(docs, "PodDisruptionBudget")
            if selects(pdb["spec"]["selector"]["matchLabels"], labels)
        ]
        assert len(budgets) == 1, name
        policies = {
            p["metadata"]["name"]
            for p in of_kind(docs, "NetworkPolicy")
            if selects(p["spec"]["podSelector"]["matchLabels"], labels)
        }
        assert {
            "tarifa-default-deny",
            "tarifa-egress-dns",
            "tarifa-egress-kafka",
            "tarifa-egress-postgresql",
            name,
        } <= policies


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_over_http_only_the_services_they_call(overlay: str, rendered: dict[str, list[Doc]]) -> None:
    docs = rendered[overlay]
    deployments = tarifa_deployments(docs)
    policies = of_kind(docs, "NetworkPolicy")
    for name, deployment in deployments.items():
        reached: set[str] = set()
        for policy in policies:
            if not selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels(deployment)):
                continue
            for rule in policy["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    selector = peer.get("podSelector", {}).get("matchLabels", {})
                    reached |= {
                        other for other, d in deployments.items() if selector and selects(selector, pod_labels(d))
                    }
        assert reached == CALLS[name], name
        callers: set[str] = set()
        for policy in policies:
            if selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels(deployment)):
                for rule in policy["spec"].get("ingress", []):
                    for peer in rule.get("from", []):
                        selector = peer.get("podSelector", {}).get("matchLabels", {})
                        callers |= {
                            other for other, d in deployments.items() if selector and selects(selector, pod_labels(d))
                        }
        assert callers == {caller for caller, callees in CALLS.items() if name in callees}, name


def test_every_consumer_scales_on_its_lag_and_never_beyond_its_partitions(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    shared = named(
        docs,
        "ConfigMap",
        next(
            c["metadata"]["name"]
            for c in of_kind(docs, "ConfigMap")
            if c["metadata"]["name"].startswith("tarifa-shared")
        ),
    )
    scaled = {doc["spec"]["scaleTargetRef"]["name"]: doc for doc in of_kind(docs, "ScaledObject")}
    assert set(scaled) == set(CONSUMED)
    for name, doc in scaled.items():
        kafka = [t for t in doc["spec"]["triggers"] if t["type"] == "kafka"]
        assert {t["metadata"]["topic"] for t in kafka} == CONSUMED[name]
        for trigger in doc["spec"]["triggers"]:
            assert all(isinstance(value, str) for value in trigger["metadata"].values()), trigger
        for trigger in kafka:
            assert trigger["metadata"]["consumerGroup"] == name
            assert trigger["metadata"]["bootstrapServers"] == shared["data"]["TARIFA_KAFKA_BOOTSTRAP_SERVERS"]
        assert doc["spec"]["maxReplicaCount"] <= max(topics.by_name(t).partitions for t in CONSUMED[name])
        assert doc["spec"]["minReplicaCount"] >= 1
    # The notifier's watchdogs always have a replica to run on (one at a time: a database lock).
    assert scaled["notifier"]["spec"]["minReplicaCount"] >= 1


def test_the_http_only_service_has_an_hpa_and_nothing_is_scaled_twice(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    hpas = {doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind(docs, "HorizontalPodAutoscaler")}
    keda = {doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind(docs, "ScaledObject")}
    assert hpas == {"collector"}
    assert hpas.isdisjoint(keda)
    assert hpas | keda == set(SERVICES)
    # A replica count in the Deployment would reset the autoscaler's choice on every apply.
    assert all("replicas" not in deployment["spec"] for deployment in tarifa_deployments(docs).values())


def test_kafka_topics_match_the_topic_registry(rendered: dict[str, list[Doc]]) -> None:
    declared = {doc["spec"]["topicName"]: doc["spec"] for doc in of_kind(rendered["prod"], "KafkaTopic")}
    expected = {t.name: (t.partitions, t.retention_hours) for t in topics.ALL} | {
        topics.dead_letter_topic(group): (topics.DEAD_LETTER_PARTITIONS, topics.DEAD_LETTER_RETENTION_HOURS)
        for group in CONSUMED
    }
    assert set(declared) == set(expected)
    for name, (partitions, hours) in expected.items():
        assert declared[name]["partitions"] == partitions, name
        assert declared[name]["config"]["retention.ms"] == str(hours * 3600 * 1000), name


def test_the_dev_overlay_needs_no_operator_and_runs_kafka_for_one_broker(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["dev"]
    assert not [doc for doc in docs if is_custom(doc)]
    kafka = named(docs, "StatefulSet", "tarifa-kafka")
    env = {e["name"]: e["value"] for e in kafka["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert named(docs, "Service", "tarifa-kafka-bootstrap")


def test_the_prod_overlay_uses_an_external_postgresql_and_strimzi_kafka(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    assert not of_kind(docs, "StatefulSet")
    egress = named(docs, "NetworkPolicy", "tarifa-egress-postgresql")["spec"]["egress"][0]["to"]
    assert all("ipBlock" in peer for peer in egress)
    assert {doc["metadata"]["labels"]["strimzi.io/cluster"] for doc in of_kind(docs, "KafkaTopic")} == {"tarifa"}


def test_the_schemas_kept_in_the_repository_are_the_ones_used() -> None:
    assert sorted(p.name for p in (K8S / "schemas").glob("*.json")) == sorted(p.name for p in CRD_SCHEMAS.values())
