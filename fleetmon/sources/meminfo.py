"""/proc/meminfo parser and memory figures (pure).

"Key:   value kB" lines; the HugePages_* lines are page counts without a unit. Linux 2.4
prints a byte table first ("total: used: free: ..." then "Mem:"/"Swap:" rows): skipped.
MemAvailable exists since 3.14; before that it is estimated as psutil does when it cannot
read /proc/zoneinfo (our probe does not): MemFree + Cached, which over-counts a little.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, lines_of, to_int

AVAILABLE_ESTIMATED_NOTE = (
    "MemAvailable absent (kernel < 3.14): mem.available_bytes estimated as MemFree + Cached"
    " (psutil's fallback)"
)


@dataclass(frozen=True, slots=True)
class MemInfo:
    """Every value of /proc/meminfo by key, as printed (kB, or pages for HugePages_*)."""

    values: Mapping[str, int]

    def kb(self, key: str) -> int | None:
        """A value in kB, or None when this kernel does not print it."""
        return self.values.get(key)

    def available_kb(self) -> tuple[int | None, bool]:
        """MemAvailable, or psutil's estimate; the flag is True when estimated."""
        avail = self.values.get("MemAvailable")
        if avail is not None:
            return avail, False
        free = self.values.get("MemFree")
        if free is None:
            return None, False
        return free + self.values.get("Cached", 0), True


#: A usual line: a key without blank or colon, an unsigned count below 2**64, kB or nothing.
_LINE_RE = re.compile(rf"^([^\s:]+):[ ]*([0-9]{{1,{MAX_DIGITS - 1}}})(?: kB)?$", re.M)


def parse_meminfo(text: str) -> MemInfo:
    """Parse /proc/meminfo; MemTotal is required."""
    fast = _parse_meminfo_fast(text)
    return fast if fast is not None else _parse_meminfo_lines(text)


def _parse_meminfo_fast(text: str) -> MemInfo | None:
    """parse_meminfo() of a file of usual lines only, by one regex; None for anything else."""
    found = _LINE_RE.findall(text)
    if len(found) == text.count("\n") and text.endswith("\n"):
        # Every line a usual one (each match is a whole line): no check is left to do.
        values = dict(found)
        if "MemTotal" in values:
            return MemInfo(dict(zip(values, map(int, values.values()), strict=True)))
    return None


def _parse_meminfo_lines(text: str) -> MemInfo:
    """parse_meminfo(), one line at a time (and its errors)."""
    values: dict[str, int] = {}
    for line in lines_of(text):
        key, colon, rest = line.partition(":")
        tokens = rest.split()
        if not colon or not tokens:
            raise ProbeParseError("meminfo", f"expected 'Key: value', got {line[:80]!r}")
        if key.strip() in ("total", "Mem", "Swap") and len(tokens) >= 3:
            continue  # the Linux 2.4 byte table (header and rows)
        if len(tokens) > 2 or (len(tokens) == 2 and tokens[1] != "kB"):
            raise ProbeParseError("meminfo", f"unexpected value in {line[:80]!r}")
        values[key.strip()] = to_int("meminfo", tokens[0], key.strip())
    if "MemTotal" not in values:
        raise ProbeParseError("meminfo", "no MemTotal line")
    return MemInfo(values)


def _pct(part: float, whole: float) -> float | None:
    return None if whole <= 0 else 100.0 * part / whole


def memory_metrics(mem: MemInfo) -> tuple[dict[str, int | float | None], list[str]]:
    """mem.* of METRICS.md from one sample, and the notes explaining any None."""
    notes: list[str] = []
    total = mem.kb("MemTotal") or 0
    avail, estimated = mem.available_kb()
    if estimated:
        notes.append(AVAILABLE_ESTIMATED_NOTE)
    swap_total = mem.kb("SwapTotal")
    swap_free = mem.kb("SwapFree")
    committed = mem.kb("Committed_AS")
    huge_total = mem.kb("HugePages_Total")
    huge_free = mem.kb("HugePages_Free")
    out: dict[str, int | float | None] = {
        "mem.total_bytes": total * 1024,
        "mem.available_bytes": None if avail is None else avail * 1024,
        "mem.used_pct": None if avail is None else _pct(total - avail, total),
        "mem.swap_used_pct": None,
        "mem.commit_pct": None,
        "mem.hugepages_free_pct": None,
    }
    if swap_total is not None and swap_free is not None:
        out["mem.swap_used_pct"] = _pct(swap_total - swap_free, swap_total)
    if committed is not None:
        out["mem.commit_pct"] = _pct(committed, total + (swap_total or 0))
    if huge_total is not None and huge_free is not None:
        out["mem.hugepages_free_pct"] = _pct(huge_free, huge_total)
    return out, notes
