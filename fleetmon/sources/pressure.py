"""/proc/pressure/{cpu,io,memory} parser (pure).

PSI (4.20+, CONFIG_PSI, may be off with psi=0): "some avg10=0.00 avg60=0.00 avg300=0.00
total=N" and, for io/memory (and cpu since 5.13), a "full" line. total is cumulative stall
time in microseconds; the avg fields are the kernel's own running averages.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import lines_of, to_float, to_int


@dataclass(frozen=True, slots=True)
class PressureLine:
    """One "some" or "full" line."""

    avg10: float
    avg60: float
    avg300: float
    total_us: int


@dataclass(frozen=True, slots=True)
class Pressure:
    """A pressure file; `full` is None when the kernel prints no full line."""

    some: PressureLine | None
    full: PressureLine | None


def parse_pressure(text: str, section: str = "pressure") -> Pressure:
    """Parse one /proc/pressure/* file; `section` names it in errors."""
    found: dict[str, PressureLine] = {}
    for line in lines_of(text):
        kind, *pairs = line.split()
        if kind not in ("some", "full") or len(pairs) != 4:
            raise ProbeParseError(
                section, f"expected 'some|full avg10=... total=...': {line[:80]!r}"
            )
        values: dict[str, str] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq:
                raise ProbeParseError(section, f"expected key=value, got {pair[:40]!r}")
            values[key] = value
        try:
            found[kind] = PressureLine(
                avg10=to_float(section, values["avg10"], "avg10"),
                avg60=to_float(section, values["avg60"], "avg60"),
                avg300=to_float(section, values["avg300"], "avg300"),
                total_us=to_int(section, values["total"], "total"),
            )
        except KeyError as err:
            raise ProbeParseError(section, f"{kind}: missing {err.args[0]}") from None
    if not found:
        raise ProbeParseError(section, "empty")
    return Pressure(found.get("some"), found.get("full"))
