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
from dataclasses import dataclass, fields

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, lines_of, to_int, to_ints

_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest")
_TOTAL_COLUMNS = frozenset(_COLUMNS[:8])


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """One cpu line, in ticks; None for a column this kernel does not print."""

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


_FIELDS = tuple(f.name for f in fields(CpuTimes))


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
        elif key in ("intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked"):
            if len(parts) < 2:
                raise ProbeParseError("stat", f"{key}: no value")
            scalars[key] = to_int("stat", parts[1], key)
    if total is None:
        raise ProbeParseError("stat", "no aggregate 'cpu' line")
    return Stat(
        total=total,
        cpus=tuple(cpus),
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
    d = {name: _delta(getattr(prev, name), getattr(cur, name)) for name in _FIELDS}
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
        busy_pct=100.0 - idle_pct - (iowait_pct or 0.0),
    )


def max_core_busy_pct(prev: Stat, cur: Stat) -> tuple[float | None, tuple[str, ...]]:
    """The busiest cpuN present in both samples, and the cpuN lines seen in one sample only."""
    before = dict(prev.cpus)
    after = dict(cur.cpus)
    one_side = tuple(sorted(set(before) ^ set(after), key=lambda n: int(n[3:])))
    busiest: float | None = None
    for name, times in cur.cpus:
        if name not in before:
            continue
        # cpu_shares(...).busy_pct, without the other nine shares (hosts have 100s of CPUs).
        d, total = _deltas(before[name], times)
        if total == 0:
            continue
        idle_pct = 100.0 * (d["idle"] or 0) / total
        iowait = d["iowait"]
        busy = 100.0 - idle_pct - ((None if iowait is None else 100.0 * iowait / total) or 0.0)
        if busiest is None or busy > busiest:
            busiest = busy
    return busiest, one_side
