"""Deltas stage for containers (pure): every container's ctr.* metrics a column at a time.

When the three cgroup sections name the same containers in the same order (the usual
host: none started or stopped between the samples), each metric is computed over a whole
column with the arithmetic of containers.container_metrics, in the same order of
operations: the same floats. Anything else goes container by container (containers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    "ctr.psi_io_some_pct", "ctr.psi_io_full_pct", "ctr.pids",
)  # fmt: skip


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


def _rates(d: Column, dt: float | None) -> list[float | None]:
    return [None if x is None or not dt else x / dt for x in d]


def _pcts(avg_x100: Column) -> list[float | None]:
    return [None if x is None else x / 100 for x in avg_x100]


def metric_columns(
    s1: Columns, s2: Columns, g: Columns, host_cpus: int | None, dt: float | None
) -> list[Sequence[MetricValue]]:
    """Each metric of METRICS over the containers of s2.paths (s1 and g: the same paths)."""
    none: Column = [None] * len(s2.paths)

    def col(s: Columns, key: str) -> Column:
        return s.values.get(key, none)

    used = [None if d is None else d * 1000 for d in _deltas(col(s1, "u"), col(s2, "u"))]
    if "ca" in s2.values:  # cpuacct.usage (ns), preferred to a hybrid host's usage_usec
        ca = _deltas(col(s1, "ca"), col(s2, "ca"))
        used = [u if c is None else a for u, a, c in zip(used, ca, col(s2, "ca"), strict=True)]
    cpu = [None if u is None or not dt else u / dt * (100 / 1e9) for u in used]
    periods, throttled = (
        _deltas(col(s1, "np"), col(s2, "np")),
        _deltas(col(s1, "nt"), col(s2, "nt")),
    )
    limits = [None if x is not None and x >= UNLIMITED else x for x in col(g, "l")]
    used_mem = [
        None if u is None else max(0, u - (i or 0))
        for u, i in zip(col(g, "m"), col(g, "i"), strict=True)
    ]
    return [
        cpu,
        [c / host_cpus if c is not None and host_cpus else None for c in cpu],
        [
            None if p is None else 0.0 if p == 0 else
            None if t is None else min(100.0, t / p * 100)
            for p, t in zip(periods, throttled, strict=True)
        ],
        used_mem,
        limits,
        [
            None if u is None or not lim else u / lim * 100
            for u, lim in zip(used_mem, limits, strict=True)
        ],
        col(g, "a"),
        col(g, "f"),
        col(g, "o"),
        _rates(_deltas(col(s1, "r"), col(s2, "r")), dt),
        _rates(_deltas(col(s1, "w"), col(s2, "w")), dt),
        _pcts(col(g, "pcs")),
        _pcts(col(g, "pms")),
        _pcts(col(g, "pmf")),
        _pcts(col(g, "pis")),
        _pcts(col(g, "pif")),
        col(g, "p"),
    ]  # fmt: skip
