"""The collector's process set-up: its garbage collector's young-generation threshold."""

import gc

from tarifa_collector.config import CollectorSettings
from tarifa_collector.entrypoints.service import tune_garbage_collector


def test_the_service_process_collects_young_objects_less_often_unless_told_not_to() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector(CollectorSettings(gc_young_threshold=12_345))
        assert gc.get_threshold() == (12_345, before[1], before[2])
        gc.set_threshold(*before)
        tune_garbage_collector(CollectorSettings(gc_young_threshold=0))
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
