"""How a service makes itself known to the `tarifa` CLI: a `ServiceSpec` behind an entry point.

A service's pyproject declares, under `[project.entry-points."tarifa.services"]`,
`rater = "tarifa_rater.entrypoints.service:SPEC"`.
The CLI finds services that way, so this library never imports a service. Extensions of
`tarifa up` (the demo: `tarifa up --demo`) plug in the same way, under `tarifa.extensions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tarifa_common.config import ServiceSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI
    from rich.console import Console

ENTRY_POINT_GROUP = "tarifa.services"
# The order `tarifa up` starts them in and lists them; the ports of DESIGN.md.
EMBEDDED_ORDER = ("collector", "rater", "voip-summit", "invoicer", "notifier")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    summary: str
    settings: type[ServiceSettings]
    create_app: Callable[[ServiceSettings], FastAPI]
    commands: Callable[[], typer.Typer] | None = None


def discover() -> dict[str, ServiceSpec]:
    """Every installed service, in `EMBEDDED_ORDER` first, then by name."""
    found: dict[str, ServiceSpec] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        spec = entry.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {entry.name} must point at a ServiceSpec, found {type(spec).__name__}")
        found[spec.name] = spec
    order = {name: index for index, name in enumerate(EMBEDDED_ORDER)}
    return dict(sorted(found.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


# --- platform extensions: `tarifa up --NAME` -------------------------------------------------

EXTENSION_ENTRY_POINT_GROUP = "tarifa.extensions"


@dataclass(frozen=True, slots=True)
class Platform:
    """What an extension of `tarifa up` knows of the platform it rides on."""

    data_dir: Path
    port_offset: int
    bootstrap_servers: str
    jwt_secret: str
    urls: dict[str, str]
    console: Console


class PlatformExtension(Protocol):
    """Something `tarifa up --NAME` runs with the platform (the demo): installed through an entry point.

    `prepare` runs before the services start and returns settings for them (sinks it started);
    `run` runs once every service is ready, beside the supervisor; `close` when the platform stops.
    """

    async def prepare(self, platform: Platform) -> dict[str, str]: ...

    async def run(self, platform: Platform) -> None: ...

    async def close(self) -> None: ...


def load_extension(name: str) -> PlatformExtension | None:
    """The extension installed under `name` in the `tarifa.extensions` group, or None."""
    for entry in entry_points(group=EXTENSION_ENTRY_POINT_GROUP):
        if entry.name == name:
            factory = entry.load()
            extension: PlatformExtension = factory()
            return extension
    return None
