"""/proc/pressure/{cpu,io,memory} parser (pure).

PSI (4.20+, CONFIG_PSI, may be off with psi=0): "some avg10=0.00 avg60=0.00 avg300=0.00
total=N" and, for io/memory (and cpu since 5.13), a "full" line. total is cumulative stall
time in microseconds; the avg fields are the kernel's own running averages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, lines_of, to_float, to_int


class PressureLine(NamedTuple):
    """One "some" or "full" line (a NamedTuple: cheaper to build than a frozen dataclass)."""

    avg10: float
    avg60: float
    avg300: float
    total_us: int


class Pressure(NamedTuple):
    """A pressure file; `full` is None when the kernel prints no full line."""

    some: PressureLine | None
    full: PressureLine | None


#: The usual line: averages as the kernel prints them (LOAD_INT.LOAD_FRAC, two decimals) and
#: a total below 2**64.
_AVG = r"([0-9]{1,6}\.[0-9]{2})"
_LINE = rf"avg10={_AVG} avg60={_AVG} avg300={_AVG} total=([0-9]{{1,{MAX_DIGITS - 1}}})\n"
_USUAL_RE = re.compile(rf"some {_LINE}(?:full {_LINE})?")


def parse_pressure(text: str, section: str = "pressure") -> Pressure:
    """Parse one /proc/pressure/* file; `section` names it in errors."""
    fast = _parse_pressure_fast(text)
    return fast if fast is not None else _parse_pressure_lines(text, section)


def _parse_pressure_fast(text: str) -> Pressure | None:
    """parse_pressure() of the usual file, checked by one regex; None for anything else."""
    m = _USUAL_RE.fullmatch(text)
    if m is None:
        return None
    # Checked by the regex: float() and int() of such tokens are what to_float/to_int give.
    g = m.groups()
    some = PressureLine(float(g[0]), float(g[1]), float(g[2]), int(g[3]))
    full = None if g[4] is None else PressureLine(float(g[4]), float(g[5]), float(g[6]), int(g[7]))
    return Pressure(some, full)


def _parse_pressure_lines(text: str, section: str) -> Pressure:
    """parse_pressure(), one line at a time (and its errors)."""
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


def _parse_cpu(text: str) -> Pressure:
    return parse_pressure(text, section="pressure_cpu")


def _parse_io(text: str) -> Pressure:
    return parse_pressure(text, section="pressure_io")


def _parse_memory(text: str) -> Pressure:
    return parse_pressure(text, section="pressure_memory")


#: The probe's PSI sections, each with its parser: module functions, so that the memo of
#: ProbeOutput.parsed keys them once (a partial made per call gets its key built each time)
#: and the deltas and the counters share their parses.
SECTION_PARSERS: tuple[tuple[str, Callable[[str], Pressure]], ...] = (
    ("pressure_cpu", _parse_cpu),
    ("pressure_io", _parse_io),
    ("pressure_memory", _parse_memory),
)
