"""The whole test gate, in the order that fails fastest: lint, types, import contracts, tests.

`python3 dev.py test` runs this inside the workspace's virtual environment; extra arguments
go to pytest (for example `python3 dev.py test -k outbox -x`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

STEPS: list[tuple[str, list[str]]] = [
    ("ruff", [str(BIN / "ruff"), "check", "."]),
    ("format", [str(BIN / "ruff"), "format", "--check", "."]),
    ("mypy", [str(BIN / "mypy")]),
    ("import contracts", [str(BIN / "lint-imports")]),
]


def main(pytest_args: list[str]) -> int:
    if not pytest_args:
        for name, command in STEPS:
            print(f"==> {name}", flush=True)
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                print(f"{name} failed: fix the findings above and run `python3 dev.py test` again.")
                return 1
    print("==> pytest", flush=True)
    return subprocess.run([str(BIN / "pytest"), *pytest_args], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
