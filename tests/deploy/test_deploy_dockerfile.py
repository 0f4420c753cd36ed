"""The Dockerfile: hadolint finds nothing, and it is multi-stage, non-root, dependencies before code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from deploy_support import DOCKERFILE, ROOT, run, tool


def lint(path: Path) -> tuple[int, str]:
    completed = run(tool("hadolint"), "--no-color", path)
    return completed.returncode, completed.stdout + completed.stderr


def test_the_dockerfile_lints_clean() -> None:
    code, output = lint(DOCKERFILE)
    assert (code, output) == (0, "")


def test_hadolint_catches_an_unpinned_image_and_package(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        DOCKERFILE.read_text().replace(
            "FROM ${PYTHON_IMAGE} AS runtime", "FROM python:latest AS runtime\nRUN pip install uvicorn"
        )
    )
    code, output = lint(broken)
    assert code != 0
    assert "DL3007" in output  # latest tag
    assert "DL3013" in output  # unpinned pip package


def test_the_image_builds_in_stages_and_runs_as_a_user_with_dependencies_before_code() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"USER root", "USER 0"}
    dependency_install = next(i for i, line in enumerate(lines) if "-r /tmp/requirements.txt" in line)
    first_code_copy = next(i for i, line in enumerate(lines) if line.startswith("COPY") and "/src " in line)
    assert dependency_install < first_code_copy
    assert all("/src" not in line for line in lines[:dependency_install] if line.startswith("COPY"))
    assert 'ENTRYPOINT ["tarifa"]' in lines


def test_the_image_holds_every_package_of_the_workspace() -> None:
    """A package added to the workspace (dev.py) must be copied and installed in the image too."""
    spec = importlib.util.spec_from_file_location("tarifa_dev_script", ROOT / "dev.py")
    assert spec and spec.loader
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    text = DOCKERFILE.read_text()
    for package in dev.PACKAGES:
        assert f"COPY {package}/pyproject.toml {package}/" in text, package
        assert f"COPY {package}/src {package}/src" in text, package
        assert f"./{package} " in text or f"./{package}\n" in text, package
