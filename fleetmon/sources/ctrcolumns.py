"""Deltas stage for containers (pure): every container's ctr.* metrics a column at a time.

When the three cgroup sections name the same containers in the same order (the usual
host: none started or stopped between the samples), each metric is computed over a whole
column with the arithmetic of containers.container_metrics, in the same order of
operations: the same floats. Anything else goes container by container (containers.py).
Each container's metrics are then a dict display (metric_dicts), or for a streamed host's
later pairs a copy of its template of gauges with the counters' five set (with_counters):
the metrics of cgroup_mem alone (gauge_columns) are the same until it is read again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import truediv
from typing import cast

from fleetmon.model import MetricValue
from fleetmon.sources.cgroupcols import Columns
from fleetmon.sources.cgroups import UNLIMITED

Column = list[int | None]


#: The ctr.* metrics in container_metrics' order.
METRICS = (
    "ctr.cpu_pct", "ctr.cpu_host_pct", "ctr.cpu_throttled_pct", "ctr.mem_bytes",
    "ctr.mem_limit_bytes", "ctr.mem_limit_pct", "ctr.mem_anon_bytes", "ctr.mem_file_bytes",
    "ctr.oom_kills", "ctr.disk_read_bytes_per_s", "ctr.disk_write_bytes_per_s",
    "ctr.psi_cpu_some_pct", "ctr.psi_memory_some_pct", "ctr.psi_memory_full_pct",
    "ctr.psi_io_some_pct", "ctr.psi_io_full_pct", "ctr.pids", "ctr.state",
)  # fmt: skip


def states(frozen: Column) -> list[str]:
    """ctr.state of each container from its freezer (cgroups.py `fz`): paused when frozen
    (`podman pause`, `docker pause`), else running; a host without a freezer to read (v1
    without its mount, v2 before 5.2) cannot pause a container, so running."""
    return ["paused" if f else "running" for f in frozen]


#: The PSI metrics and the awk's keys of their files: absent (not offered: rules do not judge
#: them) from every row of a host whose cgroup_mem section has no value of the key (cgroup
#: v1 has no PSI files; a host whose PSI is off has them unreadable, and the probe does not
#: read them), rather than null on every run.
PSI_KEYS = {
    "ctr.psi_cpu_some_pct": "pcs", "ctr.psi_memory_some_pct": "pms",
    "ctr.psi_memory_full_pct": "pmf", "ctr.psi_io_some_pct": "pis", "ctr.psi_io_full_pct": "pif",
}  # fmt: skip
#: The host note when a container PSI metric is not offered.
NO_PSI_NOTE = "no container PSI files read (cgroup v1, or PSI off): ctr.psi_* not offered"


def not_offered(has: Callable[[str], bool]) -> frozenset[str]:
    """The ctr.psi_* metrics whose key `has` says no container has a value of."""
    return frozenset(m for m, key in PSI_KEYS.items() if not has(key))


def _deltas(a: Column, b: Column) -> Column:
    # A counter that went down: a new cgroup, no rate (containers._delta).
    return [None if x is None or y is None or y < x else y - x for x, y in zip(a, b, strict=True)]


def _rates(a: Column, b: Column, dt: float | None) -> list[float | None]:
    """_rate(_delta()) of each pair (containers.py), in one pass."""
    if not dt:
        return [None] * len(b)
    return [
        None if x is None or y is None or y < x else (y - x) / dt for x, y in zip(a, b, strict=True)
    ]


def _pcts(avg_x100: Column) -> list[float | None]:
    if None in avg_x100:
        return [None if x is None else x / 100 for x in avg_x100]
    return list(map(truediv, cast(list[int], avg_x100), repeat(100)))  # x / 100 each


def _cpu(s1: Columns, s2: Columns, dt: float | None, none: Column) -> list[float | None]:
    """ctr.cpu_pct: cpuacct.usage's ns where a container has it, else usage_usec's µs."""
    if not dt:
        return [None] * len(none)
    u1, u2 = s1.values.get("u", none), s2.values.get("u", none)
    if "ca" not in s2.values:  # the usual host: in one pass, the same arithmetic
        return [
            None if x is None or y is None or y < x else (y - x) * 1000 / dt * (100 / 1e9)
            for x, y in zip(u1, u2, strict=True)
        ]
    used = [
        None if x is None or y is None or y < x else (y - x) * 1000
        for x, y in zip(u1, u2, strict=True)
    ]
    # cpuacct.usage (ns), preferred to a hybrid host's usage_usec
    ca = _deltas(s1.values.get("ca", none), s2.values["ca"])
    used = [u if c is None else a for u, a, c in zip(used, ca, s2.values["ca"], strict=True)]
    return [None if u is None else u / dt * (100 / 1e9) for u in used]


def _throttled(s1: Columns, s2: Columns, none: Column) -> list[float | None]:
    """ctr.cpu_throttled_pct: throttled periods of those run (no quota, or no CPU wanted:
    0), container_metrics' arithmetic in one pass."""
    p1, p2 = s1.values.get("np", none), s2.values.get("np", none)
    t1, t2 = s1.values.get("nt", none), s2.values.get("nt", none)
    return [
        None if a is None or b is None or b < a else 0.0 if b == a else
        None if x is None or y is None or y < x else min(100.0, (y - x) / (b - a) * 100)
        for a, b, x, y in zip(p1, p2, t1, t2, strict=True)
    ]  # fmt: skip


def gauge_columns(g: Columns) -> list[Sequence[MetricValue]]:
    """The metrics of METRICS from the cgroup_mem section alone, in their order: memory,
    limit and its %, anon, file, OOM kills, PSI, pids, state (the same at every tick of a streamed
    host until that section is read again: kept with it, containers._Gauges)."""
    none: Column = [None] * len(g.paths)

    def col(key: str) -> Column:
        return g.values.get(key, none)

    limits = [None if x is not None and x >= UNLIMITED else x for x in col("l")]
    # max(0, usage - inactive file) without a call each (the same int)
    used_mem = [
        None if u is None else d if (d := u - (i or 0)) > 0 else 0
        for u, i in zip(col("m"), col("i"), strict=True)
    ]
    return [
        used_mem,
        limits,
        [
            None if u is None or not lim else u / lim * 100
            for u, lim in zip(used_mem, limits, strict=True)
        ],
        col("a"),
        col("f"),
        col("o"),
        *(_pcts(col(key)) for key in PSI_KEYS.values()),
        col("p"),
        states(col("fz")),
    ]


def metric_columns(
    s1: Columns,
    s2: Columns,
    g: Columns,
    host_cpus: int | None,
    dt: float | None,
    gauges: Sequence[Sequence[MetricValue]] | None = None,
) -> list[Sequence[MetricValue]]:
    """Each metric of METRICS over the containers of s2.paths (s1 and g: the same paths);
    `gauges`: gauge_columns(g) when already made."""
    none: Column = [None] * len(s2.paths)
    gauge = gauge_columns(g) if gauges is None else gauges
    cpu = _cpu(s1, s2, dt, none)
    return [
        cpu,
        [c / host_cpus if c is not None else None for c in cpu] if host_cpus else none,
        _throttled(s1, s2, none),
        *gauge[:6],
        _rates(s1.values.get("r", none), s2.values.get("r", none), dt),
        _rates(s1.values.get("w", none), s2.values.get("w", none), dt),
        *gauge[6:],
    ]


def _all(
    cpu: MetricValue,
    cpu_host: MetricValue,
    throttled: MetricValue,
    mem: MetricValue,
    limit: MetricValue,
    limit_pct: MetricValue,
    anon: MetricValue,
    file: MetricValue,
    ooms: MetricValue,
    read: MetricValue,
    write: MetricValue,
    cpu_some: MetricValue,
    mem_some: MetricValue,
    mem_full: MetricValue,
    io_some: MetricValue,
    io_full: MetricValue,
    pids: MetricValue,
    state: MetricValue,
) -> dict[str, MetricValue]:
    """One container's METRICS as a dict (a dict display: a third faster than dict(zip()))."""
    return {
        "ctr.cpu_pct": cpu, "ctr.cpu_host_pct": cpu_host, "ctr.cpu_throttled_pct": throttled,
        "ctr.mem_bytes": mem, "ctr.mem_limit_bytes": limit, "ctr.mem_limit_pct": limit_pct,
        "ctr.mem_anon_bytes": anon, "ctr.mem_file_bytes": file, "ctr.oom_kills": ooms,
        "ctr.disk_read_bytes_per_s": read, "ctr.disk_write_bytes_per_s": write,
        "ctr.psi_cpu_some_pct": cpu_some, "ctr.psi_memory_some_pct": mem_some,
        "ctr.psi_memory_full_pct": mem_full, "ctr.psi_io_some_pct": io_some,
        "ctr.psi_io_full_pct": io_full, "ctr.pids": pids, "ctr.state": state,
    }  # fmt: skip


def _no_psi(
    cpu: MetricValue,
    cpu_host: MetricValue,
    throttled: MetricValue,
    mem: MetricValue,
    limit: MetricValue,
    limit_pct: MetricValue,
    anon: MetricValue,
    file: MetricValue,
    ooms: MetricValue,
    read: MetricValue,
    write: MetricValue,
    pids: MetricValue,
    state: MetricValue,
) -> dict[str, MetricValue]:
    """One container's METRICS but the PSI ones (cgroup v1, PSI off) as a dict."""
    return {
        "ctr.cpu_pct": cpu, "ctr.cpu_host_pct": cpu_host, "ctr.cpu_throttled_pct": throttled,
        "ctr.mem_bytes": mem, "ctr.mem_limit_bytes": limit, "ctr.mem_limit_pct": limit_pct,
        "ctr.mem_anon_bytes": anon, "ctr.mem_file_bytes": file, "ctr.oom_kills": ooms,
        "ctr.disk_read_bytes_per_s": read, "ctr.disk_write_bytes_per_s": write,
        "ctr.pids": pids, "ctr.state": state,
    }  # fmt: skip


def metric_dicts(
    columns: Sequence[Sequence[MetricValue]], absent: frozenset[str]
) -> list[dict[str, MetricValue]]:
    """Each container's metrics (METRICS but those `absent`, in that order) from
    metric_columns' columns."""
    if not absent:
        return list(map(_all, *columns))
    kept = [(m, c) for m, c in zip(METRICS, columns, strict=True) if m not in absent]
    if absent == PSI_KEYS.keys():
        return list(map(_no_psi, *(c for _m, c in kept)))
    names = tuple(m for m, _c in kept)
    rows = zip(*(c for _m, c in kept), strict=True)
    return [dict(zip(names, each, strict=True)) for each in rows]


def with_counters(
    template: dict[str, MetricValue],
    cpu: MetricValue,
    cpu_host: MetricValue,
    throttled: MetricValue,
    read: MetricValue,
    write: MetricValue,
) -> dict[str, MetricValue]:
    """A copy of a container's metrics with the counters' five set (a streamed host's
    gauges are the same from pair to pair: a copy and five keys, not a dict of 17; the
    keys keep their order)."""
    metrics = template.copy()
    metrics["ctr.cpu_pct"] = cpu
    metrics["ctr.cpu_host_pct"] = cpu_host
    metrics["ctr.cpu_throttled_pct"] = throttled
    metrics["ctr.disk_read_bytes_per_s"] = read
    metrics["ctr.disk_write_bytes_per_s"] = write
    return metrics
