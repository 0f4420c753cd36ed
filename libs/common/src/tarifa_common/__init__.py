"""What Tarifa's services share and that carries no business rule: events, Kafka, storage, telemetry, HTTP."""

__version__ = "0.1.0"
