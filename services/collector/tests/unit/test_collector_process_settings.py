"""The collector's process set-up: it asks for fewer young-generation collections than Python's default."""

from tarifa_collector.config import CollectorSettings


def test_the_collector_collects_young_objects_less_often_by_default() -> None:
    assert CollectorSettings().gc_young_threshold == 10_000
