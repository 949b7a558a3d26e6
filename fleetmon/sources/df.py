"""`df -P -k` / `df -P -i` parsers and filesystem figures (pure).

POSIX output (-P) keeps one line per filesystem, never wrapped: "source total used
available capacity% mount". The mount point may contain spaces, so a line is read from
its four numeric columns outward. used_pct follows GNU df: ceil(100*used/(used+avail)),
the share of what non-root users can use. Pseudo filesystems are told by their source
(df -P prints no type): tmpfs, devtmpfs, overlay, proc, squashfs on /dev/loopN, ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from fleetmon.errors import ProbeParseError
from fleetmon.model import MetricValue, Row
from fleetmon.sources import MAX_DIGITS, lines_of, to_int

_ROW_RE = re.compile(
    r"(?P<src>\S.*?)\s+([0-9]+|-)\s+([0-9]+|-)\s+([0-9]+|-)\s+([0-9]+%|-)\s+(?P<mnt>\S.*)"
)

#: A capacity column ("50%") or three number columns: a line holding one is a row (if it
#: does not parse, a garbled one), never the rest of a name.
_ROWISH_RE = re.compile(r"\s[0-9]+%\s|\s(?:[0-9]+|-)\s+(?:[0-9]+|-)\s+(?:[0-9]+|-)\s")

PSEUDO_SOURCES = frozenset(
    [
        "tmpfs",
        "devtmpfs",
        "udev",
        "overlay",
        "overlayfs",
        "none",
        "shm",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "hugetlbfs",
        "efivarfs",
        "ramfs",
        "squashfs",
        "nsfs",
        "tracefs",
        "debugfs",
        "securityfs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "binfmt_misc",
        "autofs",
        "rpc_pipefs",
        "nfsd",
        "run",
        "lxcfs",
        "portal",
    ]
)


class DfRow(NamedTuple):
    """One df line: 1K blocks (or inodes with -i); None where df prints '-'. A NamedTuple:
    cheaper to build than a frozen dataclass."""

    source: str
    mount: str
    total: int | None
    used: int | None
    available: int | None


class DfTable(NamedTuple):
    """df's rows, the mount points it printed across lines (`joined`: a newline in the name)
    and the lines read as no row (`skipped`)."""

    rows: tuple[DfRow, ...]
    joined: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


def parse_df(text: str, section: str = "df_k") -> tuple[DfRow, ...]:
    """Parse `df -P -k` or `df -P -i` output (header line first)."""
    return parse_df_table(text, section).rows


def parse_df_table(text: str, section: str = "df_k") -> DfTable:
    """parse_df, saying which mount points were printed across lines and which lines were
    not read.

    A mount point with a newline: GNU df prints each control character as '?' (coreutils
    9.1 does), but BusyBox prints getmntent's name as /proc/mounts unescapes it (\\012 a
    newline), so the row ends mid-name and the rest is a line of its own: read as the
    row's mount point continued. (A source with a newline would print alike, its head on
    the line before its row: df's output cannot tell them apart, hence the note.) A line
    with a capacity or three number columns that does not parse is garbled: ProbeParseError."""
    lines = lines_of(text)
    if not lines or not lines[0].startswith("Filesystem"):
        raise ProbeParseError(section, "no 'Filesystem' header line")
    rows: list[DfRow] = []
    joined: dict[int, None] = {}
    skipped: list[str] = []
    for line in lines[1:]:
        m = _ROW_RE.fullmatch(line.strip())
        if m is not None:
            total, used, avail = (
                _count(section, m, g, what)
                for g, what in zip(m.group(2, 3, 4), ("total", "used", "available"), strict=True)
            )
            rows.append(DfRow(m.group("src"), m.group("mnt"), total, used, avail))
        elif _ROWISH_RE.search(f" {line} ") is not None:
            raise ProbeParseError(
                section, f"expected 'source total used avail pct mount': {line[:80]!r}"
            )
        elif rows:
            rows[-1] = rows[-1]._replace(mount=f"{rows[-1].mount}\n{line}")
            joined[len(rows) - 1] = None
        else:
            skipped.append(line)
    return DfTable(tuple(rows), tuple(rows[i].mount for i in joined), tuple(skipped))


def _count(section: str, m: re.Match[str], token: str, what: str) -> int | None:
    """A number column: None for '-', else its digits (the regex's) as an int, below 2**64."""
    if token == "-":
        return None
    if len(token) < MAX_DIGITS:
        return int(token)  # the usual case, without building the error's field name
    return to_int(section, token, f"{m.group('mnt')[:40]!r} {what}")


def df_pct(used: int | None, available: int | None) -> float | None:
    """GNU df's Use%: ceil(100*used/(used+available)); None when nothing is usable."""
    if used is None or available is None or used + available <= 0:
        return None
    numerator = 100 * used
    whole = used + available
    return float(numerator // whole + (numerator % whole != 0))


def is_pseudo(row: DfRow) -> bool:
    """A filesystem without a backing disk of its own (or a read-only image on a loop)."""
    return row.source in PSEUDO_SOURCES or row.source.startswith("/dev/loop") or row.total == 0


def filesystem_rows(
    blocks: tuple[DfRow, ...], inodes: Mapping[str, DfRow], include_pseudo: bool
) -> tuple[tuple[Row, ...], list[str]]:
    """The `fs` rows of df -k's lines (`inodes`: df -i's by mount), and the mounts with no
    fixed inode count. A mount point listed twice (BusyBox's df lists an over-mounted one
    again; GNU df shows the one on top): one row, the last listed, in the place of the
    first."""
    rows: list[Row] = []
    no_table: list[str] = []
    for fs in {fs.mount: fs for fs in blocks}.values():
        if not include_pseudo and is_pseudo(fs):
            continue
        ino = inodes.get(fs.mount)
        metrics: dict[str, MetricValue] = {
            "fs.used_pct": df_pct(fs.used, fs.available),
            "fs.inodes_used_pct": None if ino is None else df_pct(ino.used, ino.available),
            "fs.free_bytes": None if fs.available is None else fs.available * 1024,
        }
        if ino is not None and ino.total == 0:
            # btrfs, NFS without the figure, vfat: no fixed inode count (df -i: 0 and `-`),
            # so none to run out of: not offered (never judged), not null (unknown).
            del metrics["fs.inodes_used_pct"]
            no_table.append(fs.mount)
        rows.append(Row(fs.mount, metrics, {"source": fs.source}))
    return tuple(rows), no_table
