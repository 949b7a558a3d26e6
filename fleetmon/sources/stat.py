"""/proc/stat parser and CPU tick shares (pure).

The `cpu`/`cpuN` lines are USER_HZ ticks. Columns by kernel (proc(5)): user nice system
idle (2.4), iowait (2.5.41), irq softirq (2.6.0), steal (2.6.11), guest (2.6.24),
guest_nice (2.6.33); an older kernel prints fewer columns and a missing one is None, not
0. guest/guest_nice are already counted inside user/nice. `intr` (first number = total),
`ctxt`, `btime` (boot time, epoch s), `processes` (forks), `procs_running`, `procs_blocked`.
Shares follow mpstat: each Δ clamped at 0 (iowait can go backwards, a CPU back online).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter, mul, sub, truediv
from typing import NamedTuple, cast

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, lines_of, to_int, to_ints

_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest")
_TOTAL_COLUMNS = frozenset(_COLUMNS[:8])


class CpuTimes(NamedTuple):
    """One cpu line, in ticks; None for a column this kernel does not print. A NamedTuple
    rather than a frozen dataclass: one per CPU per sample, and a tenth of the cost to build."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int | None = None
    irq: int | None = None
    softirq: int | None = None
    steal: int | None = None
    guest: int | None = None
    guest_nice: int | None = None


_FIELDS = CpuTimes._fields
_SCALARS = frozenset({"intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked"})


@dataclass(frozen=True, slots=True)
class Stat:
    """The parts of /proc/stat fleetmon uses."""

    total: CpuTimes
    cpus: tuple[tuple[str, CpuTimes], ...]
    intr_total: int | None
    ctxt: int | None
    btime: int | None
    processes: int | None
    procs_running: int | None
    procs_blocked: int | None


def _cpu_times(name: str, tokens: list[str]) -> CpuTimes:
    if len(tokens) < 4:
        raise ProbeParseError(
            "stat", f"{name}: expected at least 4 tick columns, got {len(tokens)}"
        )
    # Kernels newer than 2.6.33 may add columns: keep the ten we know.
    return CpuTimes(*to_ints("stat", tokens[:10], f"{name} column "))


# Memoised for the last two texts: the history's counters (analyse/counters.py) read the
# second sample again after the deltas did; the result is immutable, so it is shared.
@functools.lru_cache(maxsize=2)
def parse_stat(text: str) -> Stat:
    """Parse /proc/stat; the aggregate `cpu` line is required."""
    fast = _stat_fast(text)
    return fast if fast is not None else _stat_lines(text)


def _stat_fast(text: str) -> Stat | None:
    """parse_stat() of the usual file (its cpu lines first, each with ten or more columns),
    with one check and one int() pass over every tick of every CPU; None for anything else,
    left to the line-by-line parser (which names the first bad line)."""
    lines = text.split("\n")
    n = 0
    for line in lines:
        if line[:3] != "cpu":
            break
        n += 1
    # The usual file: eleven tokens a cpu line (a name, ten columns), split at once. Each
    # line's first token starts with "cpu" and every other one must be digits (below), so
    # n such tokens in n places eleven apart are the n lines' names: eleven tokens each.
    ticks = " ".join(lines[:n]).split()
    if n and len(ticks) == 11 * n:
        heads = ticks[::11]
        del ticks[::11]
    else:  # more columns (a newer kernel) or fewer (an older one): a split per line
        rows = [line.split() for line in lines[:n]]
        if not rows or min(map(len, rows)) < 11:
            return None
        heads = [row[0] for row in rows]
        ticks = list(chain.from_iterable(row[1:11] for row in rows))
    if heads[0] != "cpu":
        return None
    # Each cpuN name: "cpu" then ASCII digits, at most MAX_DIGITS of them.
    names = heads[1:]
    digits = "".join(names).replace("cpu", "")
    if names and (
        min(map(len, names)) < 4
        or max(map(len, names)) > 3 + MAX_DIGITS
        or "".join(names).count("cpu") != len(names)
        or not (digits.isascii() and digits.isdigit())
    ):
        return None
    joined = "".join(ticks)
    if not (joined.isascii() and joined.isdigit()) or max(map(len, ticks)) >= MAX_DIGITS:
        return None
    values = list(map(int, ticks))
    # Ten values a line (row[1:11] of rows of 11+ tokens): each CpuTimes made at C speed
    # by tuple.__new__, as _make makes it, without _make's Python call and length check.
    times = list(map(tuple.__new__, repeat(CpuTimes), zip(*[iter(values)] * 10, strict=True)))
    scalars: dict[str, int] = {}
    for line in lines[n:]:
        parts = line.split(None, 2)
        if not parts:
            continue
        key = parts[0]
        if key in _SCALARS:
            if len(parts) < 2:
                raise ProbeParseError("stat", f"{key}: no value")
            scalars[key] = to_int("stat", parts[1], key)
        elif key[:3] == "cpu":
            return None  # a cpu line out of its place: the line-by-line parser's case
    return _stat(times[0], tuple(zip(names, times[1:], strict=True)), scalars)


def _stat_lines(text: str) -> Stat:
    """parse_stat(), one line at a time."""
    total: CpuTimes | None = None
    cpus: list[tuple[str, CpuTimes]] = []
    scalars: dict[str, int] = {}
    for line in lines_of(text):
        parts = line.split()
        key = parts[0]
        if key == "cpu":
            total = _cpu_times(key, parts[1:])
        elif key.startswith("cpu") and key[3:].isascii() and key[3:].isdigit():
            if len(key) > 3 + MAX_DIGITS:
                raise ProbeParseError("stat", f"cpu line name of {len(key)} characters")
            cpus.append((key, _cpu_times(key, parts[1:])))
        elif key in _SCALARS:
            if len(parts) < 2:
                raise ProbeParseError("stat", f"{key}: no value")
            scalars[key] = to_int("stat", parts[1], key)
    if total is None:
        raise ProbeParseError("stat", "no aggregate 'cpu' line")
    return _stat(total, tuple(cpus), scalars)


def _stat(total: CpuTimes, cpus: tuple[tuple[str, CpuTimes], ...], scalars: dict[str, int]) -> Stat:
    return Stat(
        total=total,
        cpus=cpus,
        intr_total=scalars.get("intr"),
        ctxt=scalars.get("ctxt"),
        btime=scalars.get("btime"),
        processes=scalars.get("processes"),
        procs_running=scalars.get("procs_running"),
        procs_blocked=scalars.get("procs_blocked"),
    )


@dataclass(frozen=True, slots=True)
class CpuShares:
    """Percent of the ticks of an interval per state (METRICS.md cpu.*)."""

    user_pct: float
    nice_pct: float
    system_pct: float
    iowait_pct: float | None
    irq_pct: float | None
    softirq_pct: float | None
    steal_pct: float | None
    guest_pct: float | None
    idle_pct: float
    busy_pct: float


def _delta(prev: int | None, cur: int | None) -> int | None:
    if prev is None or cur is None:
        return None
    return max(cur - prev, 0)


def _deltas(prev: CpuTimes, cur: CpuTimes) -> tuple[dict[str, int | None], int]:
    """Each column's clamped Δ, and T: the Δ of every column but guest/guest_nice."""
    d = dict(zip(_FIELDS, map(_delta, prev, cur), strict=True))
    # T leaves out guest/guest_nice: they are already inside user/nice.
    total = sum(v for k, v in d.items() if k in _TOTAL_COLUMNS and v is not None)
    return d, total


def cpu_shares(prev: CpuTimes, cur: CpuTimes) -> CpuShares | None:
    """mpstat's shares between two samples of one cpu line; None when no tick passed."""
    d, total = _deltas(prev, cur)
    if total == 0:
        return None
    guest = d["guest"] or 0
    guest_nice = d["guest_nice"] or 0

    def pct(value: int | None) -> float | None:
        return None if value is None else 100.0 * value / total

    user = max((d["user"] or 0) - guest, 0)
    nice = max((d["nice"] or 0) - guest_nice, 0)
    idle_pct = 100.0 * (d["idle"] or 0) / total
    iowait_pct = pct(d["iowait"])
    guest_pct = None if d["guest"] is None else 100.0 * (guest + guest_nice) / total
    return CpuShares(
        user_pct=100.0 * user / total,
        nice_pct=100.0 * nice / total,
        system_pct=100.0 * (d["system"] or 0) / total,
        iowait_pct=iowait_pct,
        irq_pct=pct(d["irq"]),
        softirq_pct=pct(d["softirq"]),
        steal_pct=pct(d["steal"]),
        guest_pct=guest_pct,
        idle_pct=idle_pct,
        # Not below 0: idle and iowait's shares can add up to 100 plus a rounding error.
        busy_pct=max(0.0, 100.0 - idle_pct - (iowait_pct or 0.0)),
    )


def max_core_busy_pct(prev: Stat, cur: Stat) -> tuple[float | None, tuple[str, ...]]:
    """The busiest cpuN present in both samples, and the cpuN lines seen in one sample only."""
    fast = _max_busy_fast(prev, cur)
    return (fast, ()) if fast is not None else _max_busy_loop(prev, cur)


def _max_busy_loop(prev: Stat, cur: Stat) -> tuple[float | None, tuple[str, ...]]:
    """max_core_busy_pct(), one CPU at a time (CPUs in one sample only, columns missing)."""
    before = dict(prev.cpus)
    after = dict(cur.cpus)
    one_side = tuple(sorted(set(before) ^ set(after), key=lambda n: int(n[3:])))
    busiest: float | None = None
    for name, times in cur.cpus:
        old = before.get(name)
        if old is None:
            continue
        # cpu_shares(...).busy_pct, without the other nine shares (hosts have 100s of CPUs):
        # the Δ of the eight columns of T (user..steal), each clamped at 0.
        a, b = old[:8], times[:8]
        if None in a or None in b:
            d = list(map(_delta, a, b))
        else:  # every column printed (the usual kernel): _delta's max(Δ, 0) at C speed
            d = list(map(max, map(sub, _ints(b), _ints(a)), repeat(0)))
        total = sum(v for v in d if v is not None)
        if total == 0:
            continue
        idle_pct = 100.0 * (d[3] or 0) / total
        iowait = d[4]
        busy = 100.0 - idle_pct - ((None if iowait is None else 100.0 * iowait / total) or 0.0)
        busy = max(0.0, busy)  # as cpu_shares' busy_pct
        if busiest is None or busy > busiest:
            busiest = busy
    return busiest, one_side


def _max_busy_fast(prev: Stat, cur: Stat) -> float | None:
    """max_core_busy_pct()'s figure when both samples list the same CPUs in the same order,
    each with the eight columns of T, and every CPU's T moved: the same arithmetic, column
    by column over every CPU at C speed instead of a loop per CPU (hosts have 100s). None
    for anything else, which the loop then handles."""
    names = list(map(itemgetter(0), cur.cpus))
    if not names or names != list(map(itemgetter(0), prev.cpus)) or len(set(names)) < len(names):
        return None
    # user..steal of every CPU, a tuple per column.
    cols_a = list(zip(*map(itemgetter(1), prev.cpus), strict=True))[:8]
    cols_b = list(zip(*map(itemgetter(1), cur.cpus), strict=True))[:8]
    try:
        d = [list(map(sub, y, x)) for x, y in zip(cols_a, cols_b, strict=True)]
    except TypeError:  # a column this kernel does not print (None): the loop's case
        return None
    # Each Δ clamped at 0, as _delta (only a column that went down needs it: a max() per
    # value costs more than the Δ); then T per CPU, and busy = 100 - idle - iowait.
    d = [col if min(col) >= 0 else list(map(max, col, repeat(0))) for col in d]
    totals = list(map(sum, zip(*d, strict=True)))
    if 0 in totals:
        return None
    idle = map(truediv, map(mul, repeat(100.0), d[3]), totals)
    iowait = map(truediv, map(mul, repeat(100.0), d[4]), totals)
    busiest: float = max(map(sub, map(sub, repeat(100.0), idle), iowait))
    return max(0.0, busiest)  # as cpu_shares' busy_pct


def _ints(times: Sequence[int | None]) -> Sequence[int]:
    """Columns already checked for None."""
    return cast("Sequence[int]", times)
