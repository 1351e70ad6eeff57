from alm_bench.tracking.base import RunInfo, Tracker, Trackers
from alm_bench.tracking.console import ConsoleTracker
from alm_bench.tracking.files import FileTracker
from alm_bench.tracking.memory import MemoryTracker

__all__ = ["ConsoleTracker", "FileTracker", "MemoryTracker", "RunInfo", "Tracker", "Trackers"]
