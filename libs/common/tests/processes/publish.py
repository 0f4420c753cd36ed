"""Another process that publishes one event inside a trace and prints the trace and event ids."""

import asyncio
import json
import sys

from opentelemetry import trace

from tarifa_common.config import TraceExporter
from tarifa_common.events import Event
from tarifa_common.kafka import Publisher
from tarifa_common.telemetry import setup_telemetry, tracer


async def main(bootstrap: str, topic: str, tenant: str) -> None:
    setup_telemetry("publisher-test", exporter=TraceExporter.NONE)
    publisher = Publisher(bootstrap, "test-publisher")
    await publisher.start()
    with tracer().start_as_current_span("collect call record"):
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        event = Event(
            type="tarifa.test.happened.v1",
            source="tarifa/test",
            tenant=tenant,
            subject="s-1",
            data={"note": "from another process"},
        )
        await publisher.publish(event, topic, key="s-1")
    await publisher.stop()
    print(json.dumps({"trace_id": trace_id, "event_id": event.id}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
