from alm_bench.tracking.base import RunInfo, Tracker, Trackers
from alm_bench.tracking.console import ConsoleTracker
from alm_bench.tracking.files import FileTracker

__all__ = ["ConsoleTracker", "FileTracker", "RunInfo", "Tracker", "Trackers"]
