"""Times as fleetmon writes them in its files (pure): a run's start, UTC to the second
(`2026-11-26T03:00:00Z`, what `run` writes and what the history keys runs by).
"""

from __future__ import annotations

import re
from datetime import datetime

#: A run's start: strings of this one format sort as their times do (merge compares them).
_RUN_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def run_start(value: object) -> str:
    """`value` when it is a run's start as fleetmon writes it; ValueError otherwise (the
    text is checked to be a time too: no 2026-13-45)."""
    if isinstance(value, str) and _RUN_RE.fullmatch(value):
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            pass
        else:
            return value
    raise ValueError(f"expected a UTC time such as 2026-11-26T03:00:00Z, got {value!r}"[:300])
