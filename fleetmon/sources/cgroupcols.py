"""Parse stage for container cgroups (pure): the probe's cgroup sections as columns.

AWK_READ (sources/cgroups.py) prints, after its head, `n <count>`, the cgroups' paths one a
line, then a line a key, `<key> <value> ...` in the paths' order (`-` where a cgroup has no
such value). A column of plain numbers is converted by one C call (200 containers: a
column in some 40 µs here, where the lines of the probes before cost a token at a time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS
from fleetmon.sources.cgroups import BOUND, COLUMNS_HEAD, FILE_OF, SUMMED, number


@dataclass(frozen=True, slots=True)
class Columns:
    """A cgroup section as columns: its cgroups' paths, and each key's values in their
    order (None where a cgroup has none), keyed by the awk's short keys in the files' own
    units (`u` and `tu` µs, `ca` and `tn` ns; `l` None for no limit, a v1 limit at or above
    UNLIMITED as printed; `r`, `w` summed over the devices)."""

    version: int
    paths: list[str]
    values: dict[str, list[int | None]]


def read_columns(text: str, section: str = "cgroup") -> Columns:
    """AWK_READ's columns (the section starts with COLUMNS_HEAD). Its blocks (xargs's
    batches past ARG_MAX, mawk's re-read of each directory) are joined by path, a later
    block's value of a key winning; a line of neither (a shell's message) is passed over.
    ProbeParseError, naming the file, for a malformed value of a known key or a block cut
    short; a key of a later probe is kept when its values are numbers."""
    lines = text.split("\n")
    version = 1 if lines[0] == COLUMNS_HEAD + "1" else 2
    blocks = list(_blocks(lines, section))
    if not blocks:
        return Columns(version, [], {})
    if len(blocks) == 1 and len(set(blocks[0][0])) == len(blocks[0][0]):
        return Columns(version, *blocks[0])
    return Columns(version, *_joined(blocks))


_KEY_RE = re.compile("[a-z]{1,8}")
_Block = tuple[list[str], dict[str, list[int | None]]]


def _blocks(lines: list[str], section: str) -> Iterator[_Block]:
    """Each `n <count>` block's paths and columns."""
    i, end = 1, len(lines)
    while i < end:
        head = lines[i]
        i += 1
        if not head.startswith("n "):
            continue
        if not head[2:].isdigit() or len(head) > 12:
            raise ProbeParseError(section, f"malformed count of cgroups {head[:40]!r}")
        paths = lines[i : i + int(head[2:])]
        i += len(paths)
        if len(paths) < int(head[2:]) or not all(paths):
            got = paths.index("") if "" in paths else len(paths)
            raise ProbeParseError(section, f"cgroup paths cut short: {got} of {head[2:]}")
        columns: dict[str, list[int | None]] = {}
        while i < end and lines[i] and not lines[i].startswith("n "):
            key, _, rest = lines[i].partition(" ")
            # A key is the awk's: lowercase letters (else a shell's message, passed over).
            column = _column(key, rest, paths, section) if _KEY_RE.fullmatch(key) else None
            if column is not None:
                columns[key] = column
            i += 1
        yield paths, columns


def _column(key: str, rest: str, paths: list[str], section: str) -> list[int | None] | None:
    """One key's values: numbers converted by one C call; `-` (a cgroup without the
    key) and `l`'s `max` None, `r`/`w` sums added up, the rest checked in a few C calls
    (_quick); else one by one, to name what is malformed. None for a key of a later probe
    whose values are not numbers (passed over)."""
    file = FILE_OF.get(key, "?")
    values = rest.split(" ")
    if len(values) != len(paths):
        raise ProbeParseError(
            section, f"{file}: {len(values)} values of {key!r} for {len(paths)} cgroups"
        )
    if not rest.encode().translate(None, _DIGITS_SPACE) and "" not in values:
        ints = list(map(int, values))
        if max(ints) < BOUND:
            return cast(list[int | None], ints)
    quick = _quick(key, values)
    if quick is not None:
        return quick
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


_NONE_OF = {"l": ("-", "max")}
#: What a column of plain numbers is made of (bytes.translate deletes them: nothing left).
_DIGITS_SPACE = b"0123456789 "


def _quick(key: str, values: list[str]) -> list[int | None] | None:
    """A column with `-`, `max` or sums, when every other value (every sum's every part) is
    a plain number of at most MAX_DIGITS digits; else None."""
    nones = _NONE_OF.get(key, ("-",))
    kept = [v for v in values if v not in nones]
    summed = key in SUMMED
    parts = "+".join(kept).split("+") if summed else kept
    if "" in parts or "".join(parts).encode().translate(None, _DIGITS_SPACE):
        return None
    if parts and len(max(parts, key=len)) > MAX_DIGITS:
        return None
    if summed:
        return [None if v in nones else sum(map(int, v.split("+"))) for v in values]
    return [None if v in nones else int(v) for v in values]


def _value(key: str, value: str) -> int | None:
    if value == "-" or (value == "max" and key == "l"):
        return None
    if key in SUMMED:  # one device: a number; more: joined by +
        return sum(number(t) for t in value.split("+"))
    return number(value)


def _joined(blocks: list[_Block]) -> tuple[list[str], dict[str, list[int | None]]]:
    """Blocks' columns joined by path (in the order the paths first come)."""
    at: dict[str, int] = {}
    columns: dict[str, list[int | None]] = {}
    for paths, block in blocks:
        for p in paths:
            if p not in at:
                at[p] = len(at)
                for column in columns.values():
                    column.append(None)
        for key, values in block.items():
            target = columns.setdefault(key, [None] * len(at))
            for p, v in zip(paths, values, strict=True):
                if v is not None:
                    target[at[p]] = v
    return list(at), columns
