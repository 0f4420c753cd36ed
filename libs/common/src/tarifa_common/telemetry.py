"""Telemetry for one process: OpenTelemetry traces and metrics, and log lines that carry trace ids.

Call `setup_telemetry` once, in a process's entry point. Traces cross Kafka in the W3C
`traceparent` header (see `events`), so one trace follows a call record from the PBX socket to
the invoice. Exporters: `none`, `console` or `otlp` (HTTP, to a collector).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from pythonjsonlogger.json import JsonFormatter

from tarifa_common.config import LogFormat, TraceExporter

_configured = False


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        return True


def setup_logging(service: str, log_format: LogFormat, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContextFilter())
    if log_format is LogFormat.JSON:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-7s {service:<11} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup_telemetry(
    service: str,
    *,
    exporter: TraceExporter,
    otlp_endpoint: str = "http://127.0.0.1:4318",
    log_format: LogFormat = LogFormat.TEXT,
    log_level: str = "INFO",
) -> None:
    """Configure tracing, metrics and logging for this process (idempotent)."""
    global _configured
    setup_logging(service, log_format, log_level)
    if _configured:
        return
    _configured = True
    resource = Resource.create({"service.name": f"tarifa-{service}", "service.namespace": "tarifa"})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[Any] = []
    if exporter is TraceExporter.CONSOLE:
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000))
    elif exporter is TraceExporter.OTLP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def tracer() -> trace.Tracer:
    return trace.get_tracer("tarifa")


def meter() -> metrics.Meter:
    return metrics.get_meter("tarifa")
