"""/proc/uptime and /proc/sys/kernel/random/boot_id parsers (pure).

uptime: two seconds values with two decimals, "up idle" (proc(5)); the first is our remote
clock for every rate. idle is summed over CPUs, so it may exceed up. boot_id: a random
UUID the kernel draws at each boot (2.6.x+), so a changed id means a reboot in between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import lines_of, to_float

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Uptime:
    """Seconds since boot and idle seconds (summed over CPUs)."""

    up_s: float
    idle_s: float | None


def parse_uptime(text: str) -> Uptime:
    """Parse /proc/uptime ("7192.55 29212.05")."""
    lines = lines_of(text)
    if len(lines) != 1:
        raise ProbeParseError("uptime", f"expected one line, got {len(lines)}")
    parts = lines[0].split()
    if not 1 <= len(parts) <= 2:
        raise ProbeParseError("uptime", f"expected 2 fields, got {len(parts)}")
    up = to_float("uptime", parts[0], "uptime")
    idle = to_float("uptime", parts[1], "idle") if len(parts) == 2 else None
    if up < 0:
        raise ProbeParseError("uptime", f"negative uptime {parts[0]!r}")
    return Uptime(up, idle)


def parse_boot_id(text: str) -> str:
    """Parse the boot id (a lowercase UUID)."""
    value = text.strip().lower()
    if not _UUID_RE.fullmatch(value):
        raise ProbeParseError("boot_id", f"not a UUID: {value[:40]!r}")
    return value


def uptime_went_back(first: str | None, second: str | None) -> bool:
    """Whether the second /proc/uptime text is not after the first (a clock gone back, or
    samples out of order): no interval between them. False when either is unreadable (the
    analysis then says so)."""
    try:
        return parse_uptime(second or "").up_s <= parse_uptime(first or "").up_s
    except ProbeParseError:
        return False
