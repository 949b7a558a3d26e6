"""Durations as people write them in rules and options (pure): `90s`, `15m`, `6h`, `1h30m`,
`7d`, `2w`, `2y` (Prometheus's units; a year is 365 days, as in Prometheus)."""

from __future__ import annotations

import re

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
_PART = re.compile(r"(\d+)([smhdwy])")
_WHOLE = re.compile(r"(?:\d+[smhdwy])+")
#: The longest duration, as in Prometheus (int64 nanoseconds: about 292 years).
MAX_S = 292 * UNITS_S["y"]


class DurationError(ValueError):
    """A duration that does not parse; the message shows the expected form."""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `15m`, `1h30m` or `2y`; DurationError otherwise.

    Units go from largest to smallest, each once, as Prometheus requires; zero and more than 292y
    (Prometheus's longest) are refused.
    """
    if not isinstance(text, str) or not _WHOLE.fullmatch(text.strip()):
        raise DurationError(f"expected a duration such as 30s, 15m, 6h, 7d, 2w or 2y, got {text!r}")
    parts = _PART.findall(text.strip())
    order = [list(UNITS_S)[::-1].index(unit) for _, unit in parts]
    if order != sorted(set(order)):
        raise DurationError(f"{text!r}: units from largest to smallest, each once (1h30m)")
    seconds = sum(int(n) * UNITS_S[unit] for n, unit in parts)
    if seconds <= 0:
        raise DurationError(f"{text!r}: a duration must be longer than 0 s")
    if seconds > MAX_S:
        raise DurationError(f"{text!r}: longer than 292y, the longest duration")
    return seconds


#: How format_duration writes a duration: (below this many seconds, unit's size, suffix, decimals).
_WORDS = ((90, 1, "s", 0), (90 * 60, 60, "min", 0), (48 * 3600, 3600, "h", 1))


def duration_unit(seconds: float) -> tuple[float, str, int]:
    """The unit format_duration writes `seconds` in: its size, suffix and usual decimals."""
    s = abs(seconds)
    for below, size, suffix, places in _WORDS:
        if s < below:
            return size, suffix, places
    return 86_400, "days", 1


def format_duration(seconds: float, places: int | None = None) -> str:
    """A duration in words for a reader: `45 s`, `12 min`, `5.5 h`, `2.3 days` (`places`
    decimals when given: `23.9997 h`; trailing zeros dropped)."""
    size, suffix, usual = duration_unit(seconds)
    text = f"{seconds / size:.{usual if places is None else places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {suffix}"


def short_duration(seconds: int) -> str:
    """The shortest exact spelling of whole seconds: 691200 -> `8d`, 5400 -> `1h30m`."""
    if seconds <= 0:
        return "0s"
    out = []
    for unit, size in sorted(UNITS_S.items(), key=lambda kv: -kv[1]):
        if unit == "w":
            continue  # days read better than weeks in listings (8d, 14d)
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
