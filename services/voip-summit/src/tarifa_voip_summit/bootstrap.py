"""The one place that wires the voip-summit: its runtime, its subscriptions, the Summit client and queue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from tarifa_common import topics
from tarifa_common.contracts import CONTRACT_STATUS_CHANGED, LINE_CREDIT_EXCEEDED
from tarifa_common.events import Event
from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_voip_summit import handlers
from tarifa_voip_summit.adapters.provisioning import Provisioner
from tarifa_voip_summit.adapters.secrets import PasswordBox
from tarifa_voip_summit.adapters.store import SqlSummitStore
from tarifa_voip_summit.adapters.summit import SummitAddress, SummitClient, SummitClients
from tarifa_voip_summit.config import VoipSummitSettings

MIGRATIONS = Path(__file__).parent / "migrations"
GROUP = "voip-summit"


@dataclass(slots=True)
class VoipSummit:
    """What the API and the CLI get: the runtime, the password box, the Summit queue worker."""

    settings: VoipSummitSettings
    runtime: ServiceRuntime
    box: PasswordBox
    provisioner: Provisioner
    clients: SummitClients

    def store(self, uow: UnitOfWork) -> SqlSummitStore:
        return SqlSummitStore(uow, self.box)

    def client(self, address: SummitAddress) -> SummitClient:
        return self.clients(address)


def summit_client(
    settings: VoipSummitSettings, address: SummitAddress, transport: httpx.AsyncBaseTransport | None = None
) -> SummitClient:
    return SummitClient(
        address,
        timeout_seconds=settings.summit_timeout_seconds,
        attempts=settings.summit_attempts,
        backoff_seconds=settings.summit_backoff_seconds,
        transport=transport,
    )


def bootstrap(settings: VoipSummitSettings) -> VoipSummit:
    box = PasswordBox(settings.secret_key.get_secret_value())

    async def on_contract_status(event: Event, uow: UnitOfWork) -> None:
        await handlers.apply_contract_status(event, SqlSummitStore(uow, box))

    async def on_credit_exceeded(event: Event, uow: UnitOfWork) -> None:
        await handlers.block_line_over_credit(event, SqlSummitStore(uow, box))

    subscription = Subscription(
        group=GROUP,
        topics=(topics.CONTRACT_STATUS.name, topics.LINE_USAGE.name),
        handlers={CONTRACT_STATUS_CHANGED: on_contract_status, LINE_CREDIT_EXCEEDED: on_credit_exceeded},
    )
    holder: list[Provisioner] = []

    clients = SummitClients(lambda address: summit_client(settings, address))

    async def apply_summit_queue(runtime: ServiceRuntime) -> None:
        try:
            await holder[0].run(settings.operation_poll_seconds)
        finally:
            await clients.close()

    async def reconcile_lines(runtime: ServiceRuntime) -> None:
        await holder[0].reconcile_every(settings.reconcile_interval_seconds)

    async def embedded_simulator(runtime: ServiceRuntime) -> None:
        import uvicorn

        from tarifa_voip_summit.simulator import create_simulator

        config = uvicorn.Config(
            create_simulator(), host=settings.http_host, port=settings.embedded_simulator_port, log_level="warning"
        )
        await uvicorn.Server(config).serve()

    background = [apply_summit_queue, reconcile_lines]
    if settings.embedded_simulator_port:
        background.append(embedded_simulator)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=[subscription], background=background)
    provisioner = Provisioner(
        runtime.units,
        box,
        clients,
        scheme=settings.summit_scheme,
        max_attempts=settings.operation_max_attempts,
    )
    holder.append(provisioner)
    return VoipSummit(settings, runtime, box, provisioner, clients)
