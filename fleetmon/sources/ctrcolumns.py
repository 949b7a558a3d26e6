"""Deltas stage for containers (pure): every container's ctr.* metrics a column at a time.

When the three cgroup sections name the same containers in the same order, each with the
same files (the usual host: one runtime, one layout), the values are read as columns
(read_columns) and each metric computed over a whole column with the arithmetic of
containers.container_metrics, in the same order of operations: the same floats. Anything
else goes container by container (containers.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetmon.model import MetricValue
from fleetmon.sources.cgroups import COMPACT_HEAD, UNLIMITED, cgroup_lines, plain_tokens

Column = list[int | None]


@dataclass(frozen=True, slots=True)
class Columns:
    """A cgroup section as columns: its cgroups' paths, and each key's values in their
    order (read_columns)."""

    version: int
    paths: list[str]
    values: dict[str, list[int | None]]


def read_columns(text: str) -> Columns | None:
    """read_compact's values as columns, when the section is as the awk prints it for
    containers of one layout: blocks of lines (one; v1: one a mount) each naming the same
    cgroups in the same order, every line of a block with the same keys. None otherwise
    (read_compact reads it). A key of two lines of a cgroup: the later line's value, as
    read_compact merges them."""
    lines = text.split("\n")
    paths, rests = cgroup_lines(lines)
    split = plain_tokens(rests) if paths else None
    if split is None:
        return None
    keys, ints, ends = split
    first = paths[0]
    m = paths.index(first, 1) if paths.count(first) > 1 else len(paths)
    blocks = len(paths) // m
    if paths != paths[:m] * blocks or len(set(paths[:m])) != m:
        return None
    values: dict[str, list[int | None]] = {}
    start = 0
    for b in range(blocks):
        end = ends[(b + 1) * m - 1]
        layout = keys[start : ends[b * m]]
        n = len(layout)
        if n and end - start == n * m and keys[start:end] == layout * m:
            for j, key in enumerate(layout):
                values[key] = ints[start + j : end : n]
        elif blocks == 1:  # v2: a container without a file's keys (no I/O: no r=, w=)
            return _unlike(version_of(lines), paths, keys, ints, ends)
        else:
            return None
        start = end
    return Columns(version_of(lines), paths[:m], values)


def version_of(lines: list[str]) -> int:
    """The cgroup version AWK_READ's first line names."""
    return 1 if lines[0] == COMPACT_HEAD + "1" else 2


def _unlike(
    version: int, paths: list[str], keys: list[str], ints: list[int | None], ends: list[int]
) -> Columns | None:
    """Columns of lines with keys of their own, one line a cgroup: a key a line lacks is
    None there, as a container's missing key is to container_metrics. None (read it
    container by container) when some lines have `ca` and others not: whether `ca` is
    there decides which CPU counter a container's rate is of."""
    lined = [
        dict(zip(keys[a:b], ints[a:b], strict=True))
        for a, b in zip([0, *ends[:-1]], ends, strict=True)
    ]
    union = dict.fromkeys(k for d in lined for k in d)
    if "ca" in union and not all("ca" in d for d in lined):
        return None
    return Columns(version, paths, {k: [d.get(k) for d in lined] for k in union})


#: The ctr.* metrics in container_metrics' order.
METRICS = (
    "ctr.cpu_pct", "ctr.cpu_host_pct", "ctr.cpu_throttled_pct", "ctr.mem_bytes",
    "ctr.mem_limit_bytes", "ctr.mem_limit_pct", "ctr.mem_anon_bytes", "ctr.mem_file_bytes",
    "ctr.oom_kills", "ctr.disk_read_bytes_per_s", "ctr.disk_write_bytes_per_s",
    "ctr.psi_cpu_some_pct", "ctr.psi_memory_some_pct", "ctr.psi_memory_full_pct",
    "ctr.psi_io_some_pct", "ctr.psi_io_full_pct", "ctr.pids",
)  # fmt: skip


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

    if "ca" in s2.values:  # cpuacct.usage (ns), preferred to a hybrid host's usage_usec
        used = _deltas(col(s1, "ca"), col(s2, "ca"))
    else:
        used = [None if d is None else d * 1000 for d in _deltas(col(s1, "u"), col(s2, "u"))]
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
