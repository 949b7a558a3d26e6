"""Parse stage for container cgroups (pure): the probe's cgroup sections as columns.

awk_read's program (sources/cgroups.py) prints, after its head, runs of lines: a line of keys,
`#k <key> <key> ...`, then a line a cgroup, `<path>\t<value> <value> ...`, each with a value
of each key in their order (the usual host: one run for the whole section; cgroup v1: one a
mount, of the same paths). A run is split at once (at every tab and line end, _cells);
when all its values are plain numbers (and `l`'s `max`), the whole run is converted by one
C call, the JSON decoder's (200 containers' gauges: some 0.2 ms here, a third of what a
call per column took), and a key's values taken by one slice; else a column at a time, and
a value at a time only where a column is odd, to name what is malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import repeat
from typing import cast

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS
from fleetmon.sources.cgroups import BOUND, FILE_OF, KEYED_HEAD, SUMMED, number


@dataclass(frozen=True, slots=True)
class Columns:
    """A cgroup section as columns: its cgroups' paths, and each key's values in their
    order (None where a cgroup has none), keyed by the awk's short keys in the files' own
    units (`u` and `tu` µs, `ca` and `tn` ns; `l` None for no limit, a v1 limit at or above
    UNLIMITED as printed; `r`, `w` summed over the devices)."""

    version: int
    paths: list[str]
    values: dict[str, list[int | None]]


_Run = tuple[list[str], dict[str, list[int | None]]]
#: A key is the awk's: lowercase letters (a key of another form is passed over).
_KEY_RE = re.compile("[a-z]{1,8}")
#: What a plain number is made of (bytes.translate deletes them: nothing left).
_DIGITS = b"0123456789"
_DIGITS_SPACE = b"0123456789 "


def read_columns(text: str, section: str = "cgroup") -> Columns:
    """awk_read's lines as columns (the section starts with KEYED_HEAD). Runs of the same
    paths (a v1 container's mounts) are merged, a later run's value of a key winning; else
    joined by path, None where a cgroup has no value of a key. Lines before the first keys
    and lines without a tab (a shell's message) are passed over. ProbeParseError, naming
    the file or the path, for a malformed value of a known key or a line of more or fewer
    values than keys; a key of a later probe is kept when its values are numbers."""
    if "\r" in text:  # a transport's CRLF, as the other sections' parsers take it
        text = text.replace("\r\n", "\n")
    v1 = KEYED_HEAD + "1"  # the head line of a v1 host's section
    version = 1 if text.startswith(v1 + "\n") or text == v1 else 2
    # Each run's keys start a line after the head's (no copy of the text without its head).
    runs = [r for r in map(_run, text.split("\n#k ")[1:], repeat(section)) if r[0]]
    if not runs:
        return Columns(version, [], {})
    paths = runs[0][0]
    if all(r[0] == paths for r in runs) and len(set(paths)) == len(paths):
        merged: dict[str, list[int | None]] = {}
        for _paths, columns in runs:
            merged |= columns
        return Columns(version, paths, merged)
    return Columns(version, *_joined(runs))


def _run(chunk: str, section: str) -> _Run:
    """One run's paths and columns: its keys' line, then its cgroups' lines."""
    keys_line, _, text = chunk.partition("\n")
    keys = keys_line.split(" ")
    paths, rests = _cells(text)
    if not paths:  # keys without a line (another run's keys follow, or nothing)
        return [], {}
    width = len(keys)
    if {*map(str.count, rests, repeat(" "))} - {width - 1}:
        bad = next(i for i, r in enumerate(rests) if r.count(" ") != width - 1)
        raise ProbeParseError(
            section,
            f"{rests[bad].count(' ') + 1} values for {width} keys of {paths[bad][:120]!r}",
        )
    joined = " ".join(rests)
    fast = _whole(joined, keys, width)
    if fast is not None:
        return paths, fast
    flat = joined.split(" ")
    columns: dict[str, list[int | None]] = {}
    for j, key in enumerate(keys):
        column = _column(key, flat[j::width], paths, section) if _KEY_RE.fullmatch(key) else None
        if column is not None:
            columns[key] = column
    return paths, columns


def _cells(text: str) -> tuple[list[str], list[str]]:
    """The paths and the rests (values) of a run's lines, a line without a tab passed over
    and one with two cut at the first (its values then malformed)."""
    body = text[:-1] if text.endswith("\n") else text
    # The awk's lines, a tab each: cut at every tab and line end at once, and taken when
    # put back together they are the text (a line of another count of tabs would not be).
    parts = body.replace("\n", "\t").split("\t")
    paths, rests = parts[0::2], parts[1::2]
    if (
        len(paths) == len(rests)
        and "\n".join(map("\t".join, zip(paths, rests, strict=True))) == body
    ):
        return paths, rests
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    split = [line.partition("\t") for line in lines]
    parts = [p for path, tab, rest in split if tab for p in (path, rest)]
    return parts[0::2], parts[1::2]


def _whole(joined: str, keys: list[str], width: int) -> dict[str, list[int | None]] | None:
    """A run's columns when its values are all plain numbers (and `l`'s `max`), converted by
    one C call: the JSON decoder's (a number of digits only, with no leading zero, as the
    kernel prints them). None for anything else (each column is then read by _column)."""
    if "max" in joined:
        if joined.replace("max", "").encode().translate(None, _DIGITS_SPACE):
            return None
        joined = joined.replace("max", "null")
    elif joined.encode().translate(None, _DIGITS_SPACE):
        return None
    try:
        values = json.loads(f"[{joined.replace(' ', ',')}]")
    except ValueError:  # an empty value, a leading zero, `max` in a number
        return None
    columns = {key: values[j::width] for j, key in enumerate(keys)}
    if not all(map(_KEY_RE.fullmatch, columns)):
        return None
    if "null" in joined:  # `max`: None, `l`'s alone
        if any(None in column for key, column in columns.items() if key != "l"):
            return None
        top = max(filter(None, values), default=0)
    else:
        top = max(values, default=0)
    # Every value (a key printed twice: its first column's too) below BOUND, or each kept
    # column's checked.
    return columns if top < BOUND else _bounded(columns)


def _bounded(columns: dict[str, list[int | None]]) -> dict[str, list[int | None]] | None:
    """The columns when each one's values are below BOUND, else None."""
    for column in columns.values():
        if max(filter(None, column), default=0) >= BOUND:
            return None
    return columns


def _column(key: str, values: list[str], paths: list[str], section: str) -> list[int | None] | None:
    """One key's values: plain numbers converted by one C call; `l`'s `max` (None) and
    `r`/`w` sums (added up) checked in a few (_quick); else one by one, to name what is
    malformed. None for a key of a later probe whose values are not numbers (passed over)."""
    if not "".join(values).encode().translate(None, _DIGITS):
        try:
            ints = list(map(int, values))
        except ValueError:  # an empty value
            pass
        else:
            if max(ints) < BOUND:
                return cast(list[int | None], ints)
    quick = _quick(key, values)
    if quick is not None:
        return quick
    file = FILE_OF.get(key, "?")
    out: list[int | None] = []
    for path, value in zip(paths, values, strict=True):
        try:
            out.append(_value(key, value))
        except ValueError:
            if file == "?":
                return None
            raise ProbeParseError(
                section, f"{file}: malformed value {value[:80]!r} of {path[:120]!r}"
            ) from None
    return out


def _quick(key: str, values: list[str]) -> list[int | None] | None:
    """A column of `l` with `max`, or of `r`/`w` with sums, when every other value (every
    sum's every part) is a plain number of at most MAX_DIGITS digits; else None."""
    nones = ("max",) if key == "l" else ()
    kept = [v for v in values if v not in nones]
    summed = key in SUMMED
    parts = "+".join(kept).split("+") if summed else kept
    if "" in parts or "".join(parts).encode().translate(None, _DIGITS):
        return None
    if parts and len(max(parts, key=len)) > MAX_DIGITS:
        return None
    if summed:
        return [sum(map(int, v.split("+"))) for v in values]
    return [None if v in nones else int(v) for v in values]


def _value(key: str, value: str) -> int | None:
    if value == "max" and key == "l":
        return None
    if key in SUMMED:  # one device: a number; more: joined by +
        return sum(number(t) for t in value.split("+"))
    return number(value)


def _joined(runs: list[_Run]) -> tuple[list[str], dict[str, list[int | None]]]:
    """Runs' columns joined by path (in the order the paths first come), a later value of a
    key winning."""
    at: dict[str, int] = {}
    columns: dict[str, list[int | None]] = {}
    for paths, run in runs:
        for p in paths:
            if p not in at:
                at[p] = len(at)
                for column in columns.values():
                    column.append(None)
        for key, values in run.items():
            target = columns.setdefault(key, [None] * len(at))
            for p, v in zip(paths, values, strict=True):
                target[at[p]] = v
    return list(at), columns
