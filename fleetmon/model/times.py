"""Times as fleetmon writes them in its files (pure): a run's start, UTC to the second
(`2026-11-26T03:00:00Z`, what `run` writes and what the history keys runs by), and a host's
sample time to the nanosecond (`2026-11-26T03:00:01.250000123Z`, exact where a JSON number of
Unix nanoseconds would not be for most JSON readers: 2^53 is past it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: A run's start: strings of this one format sort as their times do (merge compares them).
_RUN_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_NS_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{9})Z")
_NS = 1_000_000_000


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


def ns_text(ns: int) -> str | None:
    """Unix nanoseconds as UTC text with all nine decimals; None past the years 1-9999 (a
    host's clock may say anything)."""
    seconds, frac = divmod(ns, _NS)
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return f"{when:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"


def ns_of(value: object) -> int:
    """The Unix nanoseconds of a time ns_text wrote; ValueError for anything else."""
    m = _NS_RE.fullmatch(value) if isinstance(value, str) else None
    if m is not None:
        try:
            when = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            pass
        else:
            return int(when.timestamp()) * _NS + int(m.group(2))
    raise ValueError(
        f"expected a UTC time such as 2026-11-26T03:00:01.250000000Z, got {value!r}"[:300]
    )


#: A moment as an operator writes one: a date, a time of it (T or a space), a UTC offset.
_MOMENT_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)


def moment(text: str) -> int | None:
    """The Unix time of an ISO 8601 date or time (`2026-11-26`, `2026-11-26T03:00`,
    `2026-11-26 03:00:00+01:00`): UTC unless an offset says otherwise, as fleetmon shows
    times; the second it falls in. None when `text` is not written as one (a duration);
    ValueError when it is, but no calendar holds it (2026-13-45, an offset past 24 h)."""
    if not _MOMENT_RE.fullmatch(text):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}: not a date or time a calendar holds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() // 1)
