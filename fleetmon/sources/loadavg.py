"""/proc/loadavg parser (pure).

"3.16 3.24 3.43 4/956 27015": load averages over 1, 5 and 15 minutes (runnable plus
uninterruptible tasks, so not CPU only), running/total scheduling entities, last pid.
Some captures lack the final newline (facter); that is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import lines_of, to_float, to_int


@dataclass(frozen=True, slots=True)
class LoadAvg:
    """The three load averages and the task counts."""

    load_1m: float
    load_5m: float
    load_15m: float
    running: int
    total: int
    last_pid: int


def parse_loadavg(text: str) -> LoadAvg:
    """Parse /proc/loadavg."""
    lines = lines_of(text)
    if len(lines) != 1:
        raise ProbeParseError("loadavg", f"expected one line, got {len(lines)}")
    parts = lines[0].split()
    if len(parts) != 5 or "/" not in parts[3]:
        raise ProbeParseError("loadavg", f"expected 'l1 l5 l15 r/t pid', got {lines[0][:80]!r}")
    running, _, total = parts[3].partition("/")
    return LoadAvg(
        load_1m=to_float("loadavg", parts[0], "load 1m"),
        load_5m=to_float("loadavg", parts[1], "load 5m"),
        load_15m=to_float("loadavg", parts[2], "load 15m"),
        running=to_int("loadavg", running, "running"),
        total=to_int("loadavg", total, "total"),
        last_pid=to_int("loadavg", parts[4], "last pid"),
    )
