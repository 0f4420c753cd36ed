"""Fixtures of the deploy checks: the rendered overlays and broken copies of k8s/."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# pytest runs in importlib mode (no test directory on sys.path): the checks import their shared
# helpers, deploy_support (a name unique in the repository), from beside this file.
sys.path.insert(0, str(Path(__file__).parent))

from deploy_support import K8S, OVERLAYS, Doc, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Doc]]:
    return {overlay: render(K8S / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Iterator[Callable[[str, str, str], Path]]:
    """A copy of k8s/ with one deliberate change, to prove the checks catch it."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)

    def broken(relative: str, old: str, new: str) -> Path:
        path = copy / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}: update the test to the manifest"
        path.write_text(text.replace(old, new, 1))
        return copy

    yield broken
