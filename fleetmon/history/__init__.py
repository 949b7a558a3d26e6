"""The history across runs (I/O): one SQLite file that `run` and `report DIR` write.

paths.py      the default path, the filesystem under it (WAL or not)
schema.py     the tables, generated from the metric catalogue (pure SQL text)
store.py      opening and checking the file, migrations, new catalogue metrics
write.py      recording a run (one transaction)
retention.py  hourly and daily rollups, old rows deleted
query.py      entities, series, status, export
"""

from __future__ import annotations

from fleetmon.history.paths import resolve
from fleetmon.history.retention import Retention, parse_keep
from fleetmon.history.store import History, open_history
from fleetmon.history.write import Recorded, record_run

__all__ = [
    "History",
    "Recorded",
    "Retention",
    "open_history",
    "parse_keep",
    "record_run",
    "resolve",
]
