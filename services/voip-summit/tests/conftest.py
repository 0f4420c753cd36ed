"""Loads the voip-summit test fixtures (kept in `voip_summit_support`, importable by the tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from voip_summit_support import service, service_on_broker, summit

__all__ = ["service", "service_on_broker", "summit"]
