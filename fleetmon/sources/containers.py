"""Deltas stage for containers (pure): `ctr.*` rows, and libvirt VMs' host-side figures.

From the `cgroup` section of both samples (counters), the `cgroup_mem` section read once
(memory, limits, pids) and `ctr_names` (sources/cgroups.py). Rates use the host's Δt. As
`podman stats` and cAdvisor do: CPU as % of one CPU, memory as the working set (usage
minus inactive file cache: what the kernel cannot reclaim without I/O), the limit as set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetmon.model import MetricValue, Row
from fleetmon.sources.cgrouplines import parse_cgroup_lines
from fleetmon.sources.cgroups import (
    COMPACT_HEAD,
    TOO_MANY,
    CgroupValues,
    parse_cgroups,
    parse_names,
)
from fleetmon.sources.ctrpaths import Ident, identify
from fleetmon.sources.sections import ProbeOutput


@dataclass(frozen=True, slots=True)
class CtrResult:
    """A host's container rows, and host-side metrics of its libvirt VMs by VM name."""

    rows: tuple[Row, ...] = ()
    vm_metrics: Mapping[str, Mapping[str, MetricValue]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


Values = Mapping[str, int | None]


def _delta(v1: Values, v2: Values, key: str) -> int | None:
    a, b = v1.get(key), v2.get(key)
    if a is None or b is None or b < a:  # a counter that went down: a new cgroup, no rate
        return None
    return b - a


def _rate(d: int | None, dt: float | None, scale: float = 1.0) -> float | None:
    return None if d is None or not dt else d / dt * scale


def _throttled_pct(v1: Values, v2: Values) -> float | None:
    periods = _delta(v1, v2, "nr_periods")
    if periods is None:
        return None
    if periods == 0:  # no quota, or no CPU wanted: not throttled
        return 0.0
    throttled = _delta(v1, v2, "nr_throttled")
    return None if throttled is None else min(100.0, throttled / periods * 100)


def _memory(g: Values) -> dict[str, MetricValue]:
    usage, limit = g.get("mem_usage"), g.get("mem_limit")
    inactive = g.get("inactive_file") or 0
    used = None if usage is None else max(0, usage - inactive)
    pct = None if used is None or not limit else used / limit * 100
    return {
        "ctr.mem_bytes": used,
        "ctr.mem_limit_bytes": limit,
        "ctr.mem_limit_pct": pct,
        "ctr.mem_anon_bytes": g.get("mem_anon"),
        "ctr.mem_file_bytes": g.get("mem_file"),
    }


def container_metrics(
    v1: Values, v2: Values, g: Values, host_cpus: int | None, dt: float | None
) -> dict[str, MetricValue]:
    """One container's ctr.* metrics from its two counter samples and its gauges."""
    used = _delta(v1, v2, "cpuacct_ns") if "cpuacct_ns" in v2 else _delta(v1, v2, "cpu_ns")
    cpu = _rate(used, dt, 100 / 1e9)
    m: dict[str, MetricValue] = {
        "ctr.cpu_pct": cpu,
        "ctr.cpu_host_pct": cpu / host_cpus if cpu is not None and host_cpus else None,
        "ctr.cpu_throttled_pct": _throttled_pct(v1, v2),
    }
    m.update(_memory(g))
    m["ctr.oom_kills"] = g.get("oom_kills")
    m["ctr.disk_read_bytes_per_s"] = _rate(_delta(v1, v2, "read_bytes"), dt)
    m["ctr.disk_write_bytes_per_s"] = _rate(_delta(v1, v2, "write_bytes"), dt)
    for res, kinds in (("cpu", ("some",)), ("memory", ("some", "full")), ("io", ("some", "full"))):
        for kind in kinds:
            avg = g.get(f"psi_{res}_{kind}_avg10_x100")
            m[f"ctr.psi_{res}_{kind}_pct"] = None if avg is None else avg / 100
    m["ctr.pids"] = g.get("pids")
    return m


def _vm_metrics(v1: Values, v2: Values, g: Values, dt: float | None) -> dict[str, MetricValue]:
    return {
        "vm.host_rss_bytes": g.get("mem_anon"),
        "vm.host_read_bytes_per_s": _rate(_delta(v1, v2, "read_bytes"), dt),
        "vm.host_write_bytes_per_s": _rate(_delta(v1, v2, "write_bytes"), dt),
    }


def _labels(ident: Ident, version: int) -> dict[str, str]:
    # Not the cgroup path: runtime and id name it, and 200 containers' paths would be a
    # fifth of a host's JSON.
    labels = {"runtime": ident.kind, "id": ident.id, "cgroup": f"v{version}"}
    if ident.pod:
        labels["pod"] = ident.pod
    if ident.qos:
        labels["qos"] = ident.qos
    return labels


def _parse(text: str, section: str) -> dict[str, CgroupValues]:
    """The probe's awk lines, or an earlier probe's grep lines (a raw folder saved then)."""
    if not text or text.startswith(COMPACT_HEAD):
        return parse_cgroups(text, section)
    return parse_cgroup_lines(text, section)


def _sections(out: ProbeOutput) -> tuple[dict[str, CgroupValues], ...]:
    return tuple(
        _parse(out.text(sample, name) or "", name)
        for sample, name in ((1, "cgroup"), (2, "cgroup"), (0, "cgroup_mem"))
    )


def compute_containers(
    out: ProbeOutput, host_cpus: int | None, interval_s: float | None
) -> CtrResult:
    """Container rows (sorted by name) and libvirt VMs' host-side metrics."""
    if out.text(2, "cgroup") is None and out.text(0, "cgroup_mem") is None:
        return CtrResult()
    if any(TOO_MANY in (out.text(s, n) or "") for s, n in ((1, "cgroup"), (2, "cgroup"),
                                                          (0, "cgroup_mem"))):  # fmt: skip
        return CtrResult(notes=("too many containers for the probe's one awk (ARG_MAX):"
                                " containers not reported",))  # fmt: skip
    c1, c2, gauges = _sections(out)
    names = parse_names(out.text(0, "ctr_names") or "")
    empty = CgroupValues(2, {})
    rows: list[Row] = []
    vms: dict[str, Mapping[str, MetricValue]] = {}
    started = 0
    for path in sorted(set(c2) | set(gauges)):
        ident = identify(path)
        if ident is None:
            continue
        s1, s2, g = c1.get(path, empty), c2.get(path, empty), gauges.get(path, empty)
        if path not in c1 and path in c2:
            started += 1
        if ident.kind == "qemu":
            vms[ident.id] = _vm_metrics(s1.values, s2.values, g.values, interval_s)
            continue
        name = names.get(ident.id) or ident.name or ident.id[:12]
        metrics = container_metrics(s1.values, s2.values, g.values, host_cpus, interval_s)
        version = s2.version if path in c2 else g.version
        rows.append(Row(name, metrics, _labels(ident, version)))
    rows = _unique(rows)
    notes = (
        (f"{started} container(s) started between the two samples: no rates for them",)
        if started
        else ()
    )
    return CtrResult(tuple(sorted(rows, key=lambda r: r.name)), vms, notes)


def _unique(rows: list[Row]) -> list[Row]:
    """Two containers of one name (two runtimes): each named with its short id too."""
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.name] = seen.get(r.name, 0) + 1
    return [
        Row(f"{r.name} ({r.labels['id'][:12]})", r.metrics, r.labels) if seen[r.name] > 1 else r
        for r in rows
    ]
