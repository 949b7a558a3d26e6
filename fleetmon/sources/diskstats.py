"""/proc/diskstats parser and per-device rates (pure).

Per Documentation/ABI/testing/procfs-diskstats: "major minor name" then 11 counters
(14 fields), + 4 discard counters since 4.18 (18), + 2 flush counters since 5.5 (20).
Sectors are 512 bytes whatever the device. The ms fields are 32-bit and wrap:
Δ = (cur - prev) mod 2^32. Kernels before 2.6.25 print partitions with 4 counters
(7 fields): skipped. A line with 15-17 fields (sysstat's edited `sds`) is read like
sysstat does: the 11 base counters, discards ignored. Rates follow iostat -x / sar -d.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, WRAP_32, device_lines, to_int, to_ints

SECTOR_BYTES = 512
#: Digits of a partition number at most (2**20 minors: 7 digits; a margin kept).
MAX_PARTITION_DIGITS = 10
_EXCLUDED_RE = re.compile(r"(loop|ram|zram|sr|fd)\d*")


class DiskStat(NamedTuple):
    """One line of /proc/diskstats (fields 4-14; discards/flushes None when absent). A
    NamedTuple rather than a frozen dataclass: one per device per sample, cheaper to build."""

    major: int
    minor: int
    name: str
    reads: int
    reads_merged: int
    sectors_read: int
    ms_reading: int
    writes: int
    writes_merged: int
    sectors_written: int
    ms_writing: int
    in_flight: int
    ms_io: int
    weighted_ms: int
    discards: int | None = None
    flushes: int | None = None

    @property
    def ios(self) -> int:
        """Reads, writes and discards: sysstat's nr_ios, its activity test (flushes left out)."""
        return self.reads + self.writes + (self.discards or 0)


@dataclass(frozen=True, slots=True)
class DiskStats:
    """Every device line, in file order; `old_partitions` lists 7-field lines skipped."""

    devices: tuple[DiskStat, ...]
    old_partitions: tuple[str, ...] = ()


# Memoised for the last two texts: the history's counters (analyse/counters.py) read the
# second sample again after the deltas did; the result is immutable, so it is shared.
@functools.lru_cache(maxsize=2)
def parse_diskstats(text: str) -> DiskStats:
    """Parse /proc/diskstats."""
    lines = device_lines("diskstats", text)
    fast = _diskstats_fast(lines)
    return fast if fast is not None else _diskstats_lines(lines)


def _diskstats_fast(lines: list[str]) -> DiskStats | None:
    """parse_diskstats() of lines that all have the same 14, 18 or 20 fields, with one check
    and one int() pass over all their numbers; None otherwise (the line-by-line parser's)."""
    rows = [line.split() for line in lines]
    width = len(rows[0]) if rows else 14
    if width not in _EXTRA or len(set(map(len, rows))) > 1:  # one width for every line
        return None
    # Every field of every line end to end, the names (every width-th from the third) out.
    tokens = list(chain.from_iterable(rows))
    names = tokens[2::width]
    del tokens[2::width]
    joined = "".join(tokens)
    if (
        not (joined.isascii() and joined.isdigit())
        or max(map(len, tokens), default=0) >= MAX_DIGITS
    ):
        return None
    values = list(map(int, tokens))
    step = width - 1  # the numbers of a line: every field but the name
    discards, flushes = _EXTRA[width]
    devices = []
    for at, name in zip(range(0, len(values), step), names, strict=True):
        v = values[at : at + step]
        extra = (v[discards] if discards else None, v[flushes] if flushes else None)
        # Sixteen fields: made by tuple.__new__, as _make makes it, without its Python call.
        devices.append(tuple.__new__(DiskStat, (v[0], v[1], name, *v[2:13], *extra)))
    return DiskStats(tuple(devices))


#: Fields per line -> where discards and flushes are among its numbers (0: absent).
_EXTRA = {14: (0, 0), 18: (13, 0), 20: (13, 17)}


def _diskstats_lines(lines: list[str]) -> DiskStats:
    """parse_diskstats(), one line at a time."""
    devices: list[DiskStat] = []
    old: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) == 7:
            old.append(parts[2])
            continue
        if len(parts) < 14:
            raise ProbeParseError(
                "diskstats", f"expected 14, 18 or 20 fields, got {line.strip()[:80]!r}"
            )
        name = parts[2]
        nums = to_ints("diskstats", parts[3:], f"{name} field ", 4)
        # Positional (fields 4-14 in DiskStat's order): one call per line, linear and cheap
        # over the 100,000s of lines a hostile host may print under the output cap.
        devices.append(
            DiskStat(
                to_int("diskstats", parts[0], f"{name} major"),
                to_int("diskstats", parts[1], f"{name} minor"),
                name,
                *(nums[0], nums[1], nums[2], nums[3], nums[4], nums[5]),
                *(nums[6], nums[7], nums[8], nums[9], nums[10]),
                nums[11] if len(nums) >= 15 else None,
                nums[15] if len(nums) >= 17 else None,
            )
        )
    return DiskStats(tuple(devices), tuple(old))


def is_partition(name: str, names: set[str] | frozenset[str]) -> bool:
    """sda1 of sda, nvme0n1p2 of nvme0n1, mmcblk0p1 of mmcblk0: a longer name of a listed device.

    A name is `base` + `p?` + digits: only the prefixes ending inside its final run of digits
    are looked up (set lookups, not a scan of every name: 120,000 devices were quadratic).
    Partition numbers are small (a dev_t minor is 20 bits): a run of more than
    MAX_PARTITION_DIGITS digits is no partition number.
    """
    stem = name.rstrip("0123456789")
    run = len(name) - len(stem)
    if not 0 < run <= MAX_PARTITION_DIGITS:
        return False
    if any(name[:k] in names for k in range(len(stem), len(name))):
        return True
    return stem.endswith("p") and stem[:-1] in names


def is_virtual_excluded(name: str) -> bool:
    """loop*, ram*, zram*, sr*, fd*: left out by default (METRICS.md)."""
    return _EXCLUDED_RE.fullmatch(name) is not None


def kept_disks(
    second: tuple[str, ...], first: tuple[str, ...], partitions: bool, loop: bool
) -> frozenset[str]:
    """The devices of two samples' lists (of the second, of the first) kept as disk rows:
    partitions (is_partition, among the devices of both) only with `partitions`, loop*,
    ram*... (is_virtual_excluded) only with `loop`."""
    args = (second, first, partitions, loop)
    return _kept_memo(*args) if len(second) + len(first) <= _MEMO_DEVICES else _kept(*args)


def _kept(
    second: tuple[str, ...], first: tuple[str, ...], partitions: bool, loop: bool
) -> frozenset[str]:
    names = set(first) | set(second)
    return frozenset(
        name
        for name in names
        if (partitions or not is_partition(name, names)) and (loop or not is_virtual_excluded(name))
    )


# A host lists the same devices tick after tick (and hosts alike often list the same): the
# decisions made once per pair of lists, not per device per tick. Lists of up to
# _MEMO_DEVICES names only, so that the cache stays small (a SAN host's 100,000s of
# devices are decided each time).
_kept_memo = functools.lru_cache(maxsize=1024)(_kept)
_MEMO_DEVICES = 512


@dataclass(frozen=True, slots=True)
class DiskRates:
    """One device's metrics over the interval (METRICS.md disk.*)."""

    reads_per_s: float
    writes_per_s: float
    read_bytes_per_s: float
    write_bytes_per_s: float
    r_await_ms: float | None
    w_await_ms: float | None
    queue_depth: float
    util_pct: float
    #: True when the counters went down (device removed and re-added in between).
    reregistered: bool


def _ms(prev: int, cur: int) -> int:
    return (cur - prev) % WRAP_32


def disk_rates(prev: DiskStat, cur: DiskStat, interval_s: float) -> DiskRates:
    """iostat -x figures between two samples of one device (interval_s > 0).

    Counters that went down mean the device was unregistered and registered again: like
    sysstat (sa_common.c), the previous sample is then taken as zero.
    """
    rereg = (
        cur.reads < prev.reads
        or cur.writes < prev.writes
        or cur.sectors_read < prev.sectors_read
        or cur.sectors_written < prev.sectors_written
    )
    if rereg:
        prev = DiskStat(prev.major, prev.minor, prev.name, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    d_reads = cur.reads - prev.reads
    d_writes = cur.writes - prev.writes
    return DiskRates(
        reads_per_s=d_reads / interval_s,
        writes_per_s=d_writes / interval_s,
        read_bytes_per_s=(cur.sectors_read - prev.sectors_read) * SECTOR_BYTES / interval_s,
        write_bytes_per_s=(cur.sectors_written - prev.sectors_written) * SECTOR_BYTES / interval_s,
        r_await_ms=_ms(prev.ms_reading, cur.ms_reading) / d_reads if d_reads else None,
        w_await_ms=_ms(prev.ms_writing, cur.ms_writing) / d_writes if d_writes else None,
        queue_depth=_ms(prev.weighted_ms, cur.weighted_ms) / (1000.0 * interval_s),
        util_pct=100.0 * _ms(prev.ms_io, cur.ms_io) / (1000.0 * interval_s),
        reregistered=rereg,
    )
