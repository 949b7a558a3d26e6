"""Deltas stage for host, disk, NIC and filesystem metrics (pure): ProbeOutput -> HostMetrics.

Rates use Δt = Δ of /proc/uptime's first field (the remote clock). A missing file, a reboot
between the samples or a non-positive interval gives None plus a note, never a made-up 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import TypeVar

from fleetmon.analyse.counters import counters_down
from fleetmon.analyse.fsrows import filesystems
from fleetmon.analyse.hv import few
from fleetmon.model import HostMetrics, MetricValue, Row
from fleetmon.model.catalog import DISK, HOST
from fleetmon.sources import rate
from fleetmon.sources.diskstats import (
    DiskStats,
    disk_rates,
    kept_disks,
    parse_diskstats,
)
from fleetmon.sources.loadavg import parse_loadavg
from fleetmon.sources.meminfo import memory_metrics, parse_meminfo
from fleetmon.sources.netdev import NIC_METRICS, NetDev, nic_rates, parse_net_dev
from fleetmon.sources.pressure import SECTION_PARSERS, Pressure
from fleetmon.sources.sections import ProbeOutput
from fleetmon.sources.stat import Stat, cpu_shares, max_core_busy_pct, parse_stat
from fleetmon.sources.uptime import Uptime, parse_boot_id, parse_uptime
from fleetmon.sources.vmstat import VmStat, parse_vmstat

T = TypeVar("T")

#: Host metrics this stage owns (hv.* come from the hypervisor sources).
HOST_METRICS = tuple(m.name for m in HOST if not m.name.startswith("hv."))
DISK_METRICS = tuple(m.name for m in DISK)

_NAME = attrgetter("name")

#: btime is computed by the kernel as now - uptime and may move by a second (NTP).
BTIME_TOLERANCE_S = 1


@dataclass(frozen=True, slots=True)
class HostOptions:
    """Which rows to keep (METRICS.md defaults leave these out)."""

    include_partitions: bool = False
    include_loop: bool = False  # loop*, ram*, zram*, sr*, fd*
    include_idle_disks: bool = False
    include_lo: bool = False
    include_pseudo_fs: bool = False


class _Notes:
    """Notes in order, each once (a dict: one per device can be 100,000s, `in` on a list
    made that quadratic)."""

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}

    @property
    def items(self) -> list[str]:
        return list(self._seen)

    def add(self, note: str) -> None:
        self._seen.setdefault(note)


def _parse(out: ProbeOutput, sample: int, name: str, parser: Callable[[str], T]) -> T | None:
    return out.parsed(sample, name, parser)


def _pair(out: ProbeOutput, name: str, parser: Callable[[str], T]) -> tuple[T | None, T | None]:
    return _parse(out, 1, name, parser), _parse(out, 2, name, parser)


def _counter_delta(prev: int | None, cur: int | None) -> int | None:
    """A 64-bit counter's Δ; None when unknown or when it went down (not a real count)."""
    if prev is None or cur is None or cur < prev:
        return None
    return cur - prev


def _reboot(out: ProbeOutput, st1: Stat | None, st2: Stat | None, notes: _Notes) -> bool | None:
    b1, b2 = _pair(out, "boot_id", parse_boot_id)
    if b1 is not None and b2 is not None:
        rebooted = b1 != b2
    elif st1 is not None and st2 is not None and st1.btime is not None and st2.btime is not None:
        rebooted = abs(st2.btime - st1.btime) > BTIME_TOLERANCE_S
    else:
        notes.add("no boot id or btime: a reboot between samples cannot be detected")
        return None
    if rebooted:
        notes.add("host rebooted between the two samples: every rate and delta is null")
    return rebooted


def _cpu(st1: Stat | None, st2: Stat | None, ok: bool, dt: float | None) -> dict[str, MetricValue]:
    m: dict[str, MetricValue] = {}
    if st2 is not None:
        m["cpu.count"] = len(st2.cpus) or None
        m["procs.running"] = st2.procs_running
        m["procs.blocked"] = st2.procs_blocked
    if st1 is None or st2 is None or not ok:
        return m
    shares = cpu_shares(st1.total, st2.total)
    if shares is not None:
        m.update(
            {
                "cpu.user_pct": shares.user_pct,
                "cpu.nice_pct": shares.nice_pct,
                "cpu.system_pct": shares.system_pct,
                "cpu.iowait_pct": shares.iowait_pct,
                "cpu.irq_pct": shares.irq_pct,
                "cpu.softirq_pct": shares.softirq_pct,
                "cpu.steal_pct": shares.steal_pct,
                "cpu.guest_pct": shares.guest_pct,
                "cpu.idle_pct": shares.idle_pct,
                "cpu.busy_pct": shares.busy_pct,
            }
        )
    m["cpu.max_core_busy_pct"] = max_core_busy_pct(st1, st2)[0]
    m["cpu.ctxt_per_s"] = rate(_counter_delta(st1.ctxt, st2.ctxt), dt)
    m["cpu.intr_per_s"] = rate(_counter_delta(st1.intr_total, st2.intr_total), dt)
    m["cpu.forks_per_s"] = rate(_counter_delta(st1.processes, st2.processes), dt)
    return m


def _vm(
    v1: VmStat | None, v2: VmStat | None, ok: bool, dt: float | None, notes: _Notes
) -> dict[str, MetricValue]:
    if v2 is not None and v2.get("oom_kill") is None:
        notes.add("oom_kill absent from /proc/vmstat (kernel < 4.13): oom.kills not offered")
    if v1 is None or v2 is None or not ok:
        return {}

    def d(name: str) -> int | None:
        return _counter_delta(v1.get(name), v2.get(name))

    return {
        "paging.swap_in_pages_per_s": rate(d("pswpin"), dt),
        "paging.swap_out_pages_per_s": rate(d("pswpout"), dt),
        "paging.major_faults_per_s": rate(d("pgmajfault"), dt),
        "oom.kills": d("oom_kill"),
    }


_PSI = (
    ("psi.cpu_some_pct", "pressure_cpu", "some"),
    ("psi.memory_some_pct", "pressure_memory", "some"),
    ("psi.memory_full_pct", "pressure_memory", "full"),
    ("psi.io_some_pct", "pressure_io", "some"),
    ("psi.io_full_pct", "pressure_io", "full"),
)


def _psi(
    out: ProbeOutput, ok: bool, dt: float | None, notes: _Notes
) -> tuple[dict[str, MetricValue], set[str]]:
    """PSI metrics, and those the kernel does not offer: a file missing from both samples
    (before 4.20, CONFIG_PSI off, or psi=0 as RHEL 8 boots) is absent, not null."""
    m: dict[str, MetricValue] = {}
    files: dict[str, tuple[Pressure | None, Pressure | None]] = {}
    absent: set[str] = set()
    for section, parser in SECTION_PARSERS:
        files[section] = (_parse(out, 1, section, parser), _parse(out, 2, section, parser))
        name = section.removeprefix("pressure_")
        if files[section] == (None, None):
            absent.add(section)
            notes.add(
                f"/proc/pressure/{name} absent (kernel < 4.20 or PSI off): psi.{name}_* not offered"
            )
        elif None in files[section]:
            notes.add(f"/proc/pressure/{name} read in one sample only: psi.{name}_* null")
    not_offered = {metric for metric, section, _ in _PSI if section in absent}
    if not ok:
        return m, not_offered
    for metric, section, kind in _PSI:
        p1, p2 = files[section]
        l1 = None if p1 is None else getattr(p1, kind)
        l2 = None if p2 is None else getattr(p2, kind)
        if l1 is None or l2 is None or dt is None:
            continue
        delta = _counter_delta(l1.total_us, l2.total_us)
        m[metric] = None if delta is None else 100.0 * delta / (dt * 1e6)
    return m, not_offered


def _disks(
    d1: DiskStats | None,
    d2: DiskStats | None,
    ok: bool,
    dt: float | None,
    opts: HostOptions,
    notes: _Notes,
) -> tuple[Row, ...]:
    if d2 is None:
        notes.add("/proc/diskstats unreadable: no disk rows")
        return ()
    if d2.old_partitions:
        notes.add("diskstats: 7-field partition lines (kernel < 2.6.25) skipped")
    before = {} if d1 is None else {d.name: d for d in d1.devices}
    second = tuple(map(_NAME, d2.devices))
    keep = kept_disks(second, tuple(before), opts.include_partitions, opts.include_loop)
    rows: list[Row] = []
    for cur in d2.devices:
        if cur.name not in keep:
            continue
        if not opts.include_idle_disks and cur.ios == 0:
            continue
        metrics: dict[str, MetricValue] = dict.fromkeys(DISK_METRICS)
        prev = before.get(cur.name)
        if prev is None and d1 is not None:
            notes.add(f"disk {cur.name} present in the second sample only: skipped")
            continue
        if prev is not None and ok and dt is not None:
            r = disk_rates(prev, cur, dt)
            if r.reregistered:
                notes.add(f"disk {cur.name}: counters went down (device re-added), counted from 0")
            metrics.update(
                {
                    "disk.reads_per_s": r.reads_per_s,
                    "disk.writes_per_s": r.writes_per_s,
                    "disk.read_bytes_per_s": r.read_bytes_per_s,
                    "disk.write_bytes_per_s": r.write_bytes_per_s,
                    "disk.r_await_ms": r.r_await_ms,
                    "disk.w_await_ms": r.w_await_ms,
                    "disk.queue_depth": r.queue_depth,
                    "disk.util_pct": r.util_pct,
                }
            )
        rows.append(Row(cur.name, metrics))
    current = set(second)
    for name in before:
        if name not in current and name in keep:
            notes.add(f"disk {name} present in the first sample only: skipped")
    return tuple(rows)


def _nics(
    n1: tuple[NetDev, ...] | None,
    n2: tuple[NetDev, ...] | None,
    ok: bool,
    dt: float | None,
    opts: HostOptions,
    notes: _Notes,
) -> tuple[Row, ...]:
    if n2 is None:
        notes.add("/proc/net/dev unreadable: no NIC rows")
        return ()
    before = {} if n1 is None else {n.name: n for n in n1}
    rows: list[Row] = []
    for cur in n2:
        if cur.name == "lo" and not opts.include_lo:
            continue
        prev = before.get(cur.name)
        if prev is None and n1 is not None:
            notes.add(f"NIC {cur.name} present in the second sample only: skipped")
            continue
        metrics: dict[str, MetricValue] = dict.fromkeys(NIC_METRICS)
        if prev is not None and ok and dt is not None:
            r = nic_rates(prev, cur, dt)
            if r.recreated:
                notes.add(f"NIC {cur.name}: counters went down (re-created), counted from 0")
            metrics.update(r.rates)
        rows.append(Row(cur.name, metrics))
    current = {n.name for n in n2}
    for name in before:
        if name not in current and (name != "lo" or opts.include_lo):
            notes.add(f"NIC {name} present in the first sample only: skipped")
    return tuple(rows)


def _load_and_memory(out: ProbeOutput, metrics: dict[str, MetricValue], notes: _Notes) -> None:
    """load.* (per CPU once cpu.count is in `metrics`) and mem.* of the second sample."""
    load = _parse(out, 2, "loadavg", parse_loadavg)
    if load is None:
        notes.add("/proc/loadavg unreadable: load.* null")
    else:
        metrics["load.1m"], metrics["load.5m"] = load.load_1m, load.load_5m
        metrics["load.15m"] = load.load_15m
        count = metrics.get("cpu.count")
        if isinstance(count, int) and count > 0:
            metrics["load.per_cpu"] = load.load_1m / count
    mem = _parse(out, 2, "meminfo", parse_meminfo)
    if mem is None:
        notes.add("/proc/meminfo unreadable: mem.* null")
    else:
        values, mem_notes = memory_metrics(mem)
        metrics.update(values)
        for note in mem_notes:
            notes.add(note)


def _paging_and_pressure(
    out: ProbeOutput, metrics: dict[str, MetricValue], ok: bool, dt: float | None, notes: _Notes
) -> None:
    """paging.*, oom.kills and psi.*: a metric the kernel does not offer is removed."""
    v1, v2 = _pair(out, "vmstat", parse_vmstat)
    if v1 is None or v2 is None:
        notes.add("/proc/vmstat unreadable: paging.* and oom.kills null")
    metrics.update(_vm(v1, v2, ok, dt, notes))
    if v2 is not None and v2.get("oom_kill") is None:
        del metrics["oom.kills"]  # not offered by the kernel: absent (METRICS.md)
    psi, not_offered = _psi(out, ok, dt, notes)
    metrics.update(psi)
    for name in not_offered:
        del metrics[name]


def _interval(u1: Uptime | None, u2: Uptime | None, rebooted: bool, notes: _Notes) -> float | None:
    """Sample 2's uptime minus sample 1's; None (every rate null, a note) when unreadable or
    not positive (sar prints nothing for a non-increasing interval): a negative one would
    reach the VM and container rates, and the report, as a figure."""
    if u1 is None or u2 is None:
        notes.add("/proc/uptime unreadable: no interval, every rate is null")
        return None
    interval_s = round(u2.up_s - u1.up_s, 6)
    if interval_s <= 0:
        if not rebooted:  # else the reboot's note says why
            notes.add(
                f"uptime went from {u1.up_s} s to {u2.up_s} s (samples out of order or"
                " the clock went back): no interval, every rate is null"
            )
        return None
    return interval_s


def compute_host(out: ProbeOutput, opts: HostOptions = HostOptions()) -> HostMetrics:
    """Every host, disk, NIC and filesystem metric of METRICS.md from one probe output.

    Raises ProbeParseError (naming the section) when a section is garbled.
    """
    notes = _Notes()
    metrics: dict[str, MetricValue] = dict.fromkeys(HOST_METRICS)
    u1, u2 = _pair(out, "uptime", parse_uptime)
    st1, st2 = _pair(out, "stat", parse_stat)
    rebooted = _reboot(out, st1, st2, notes)
    metrics["host.rebooted"] = rebooted
    interval_s = dt = _interval(u1, u2, rebooted is True, notes)
    ok = rebooted is not True
    if u2 is not None:
        metrics["uptime_s"] = u2.up_s
    if st1 is None or st2 is None:
        notes.add("/proc/stat unreadable: cpu.* and procs.* null")
    metrics.update(_cpu(st1, st2, ok, dt))
    down = counters_down(out) if ok else ()
    if down:
        # A CPU column's Δ is counted as 0 (mpstat's clamp), any other counter's rate null.
        notes.add(f"counters went down between the samples: {few(down)}: their rates null or 0")

    _load_and_memory(out, metrics, notes)
    _paging_and_pressure(out, metrics, ok, dt, notes)

    d1, d2 = _pair(out, "diskstats", parse_diskstats)
    n1, n2 = _pair(out, "net_dev", parse_net_dev)
    rows = {
        "disk": _disks(d1, d2, ok, dt, opts, notes),
        "nic": _nics(n1, n2, ok, dt, opts, notes),
        "fs": filesystems(out, opts.include_pseudo_fs, notes.add),
    }
    return HostMetrics(
        interval_s=interval_s,
        metrics=metrics,
        rows=rows,
        notes=tuple(notes.items),
        sampled_at_ns=_sampled_at_ns(u2, st2),
    )


def _sampled_at_ns(up: Uptime | None, st: Stat | None) -> int | None:
    """The remote clock at a sample: boot time + uptime, in nanoseconds (the kernel derives
    btime as now - uptime, in whole seconds: within a second of the host's clock)."""
    if up is None or st is None or st.btime is None:
        return None
    return st.btime * 1_000_000_000 + round(up.up_s * 1e9)
