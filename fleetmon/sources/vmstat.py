"""/proc/vmstat parser (pure).

"name value" per line, all counters since boot except the nr_* gauges. Names come and go
with kernel versions: pswpin/pswpout/pgmajfault exist since 2.6, oom_kill since 4.13.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, lines_of, to_int


@dataclass(frozen=True, slots=True)
class VmStat:
    """Every counter of /proc/vmstat by name."""

    counters: Mapping[str, int]

    def get(self, name: str) -> int | None:
        """The counter, or None when this kernel does not have it."""
        return self.counters.get(name)


# Memoised for the last two texts, like the other sampled sections: the history's counters
# read the second sample again after the deltas did.
@functools.lru_cache(maxsize=2)
def parse_vmstat(text: str) -> VmStat:
    """Parse /proc/vmstat."""
    fast = _parse_vmstat_fast(text)
    return fast if fast is not None else _parse_vmstat_lines(text)


def _parse_vmstat_fast(text: str) -> VmStat | None:
    """parse_vmstat() of the usual file, checked by one regex; None for anything else."""
    if not _USUAL_RE.fullmatch(text):
        return None
    tokens = text.split()  # names and counts, alternating
    counters = dict(zip(tokens[::2], map(int, tokens[1::2]), strict=True))
    return VmStat(counters) if counters else None


#: Lines of a name and an unsigned count below 2**64 (fewer than MAX_DIGITS digits).
_USUAL_RE = re.compile(rf"(?:[a-z_0-9]+ [0-9]{{1,{MAX_DIGITS - 1}}}\n)*")


def _parse_vmstat_lines(text: str) -> VmStat:
    """Line by line, for the error that names the first bad line (or a signed gauge)."""
    counters: dict[str, int] = {}
    for line in lines_of(text):
        parts = line.split()
        if len(parts) != 2:
            raise ProbeParseError("vmstat", f"expected 'name value', got {line[:80]!r}")
        # Some gauges (nr_zone_*) can be transiently negative per-cpu sums: keep the sign.
        sign = -1 if parts[1].startswith("-") else 1
        counters[parts[0]] = sign * to_int("vmstat", parts[1].lstrip("-"), parts[0])
    if not counters:
        raise ProbeParseError("vmstat", "empty")
    return VmStat(counters)
