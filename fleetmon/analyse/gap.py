"""Averages over the gap between two runs (pure): `sar -f` between two records.

Each run keeps the counters of its second sample (analyse/counters.py). With the previous
run's, the Δ of every counter over Δ of the host's /proc/uptime gives the exact average of
the whole gap (5 minutes from cron, not the 1-5 s spot sample), with the same formulas as
the spot metrics (sources' cpu_shares, disk_rates, nic_rates; METRICS.md for VMs), and a
container's OOM kills over the gap. A reboot in between (another boot id, or uptime gone
back) gives no average, with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetmon.analyse.vmcommon import kvm_rates
from fleetmon.model import MetricValue
from fleetmon.sources.diskstats import DiskStat, disk_rates
from fleetmon.sources.netdev import NetDev, nic_rates
from fleetmon.sources.stat import CpuTimes, cpu_shares

#: One subject's counters, as analyse/counters.py gives them or the history kept them.
Counters = Mapping[str, int | float | str | None]
_CPU = CpuTimes._fields
_PSI = (
    ("psi.cpu_some_pct", "psi.cpu.some_us"),
    ("psi.memory_some_pct", "psi.memory.some_us"),
    ("psi.memory_full_pct", "psi.memory.full_us"),
    ("psi.io_some_pct", "psi.io.some_us"),
    ("psi.io_full_pct", "psi.io.full_us"),
)


def _num(c: Counters, key: str) -> int | None:
    v = c.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _delta(a: Counters, b: Counters, key: str) -> int | None:
    x, y = _num(a, key), _num(b, key)
    return None if x is None or y is None or y < x else y - x


def _rate(delta: int | None, dt: float, scale: float = 1.0) -> float | None:
    return None if delta is None else delta * scale / dt


def gap_s(prev: Counters, cur: Counters) -> tuple[float | None, str | None]:
    """Seconds between two runs' second samples on the host's clock, or None and why."""
    if prev.get("boot_id") and cur.get("boot_id") and prev["boot_id"] != cur["boot_id"]:
        return None, "rebooted since the last run: no average over the gap"
    up1, up2 = prev.get("uptime_s"), cur.get("uptime_s")
    if not isinstance(up1, float | int) or not isinstance(up2, float | int):
        return None, None
    if up2 <= up1:
        return None, "uptime went back since the last run (a reboot): no average over the gap"
    return round(float(up2) - float(up1), 6), None


def host_gap(prev: Counters, cur: Counters, dt: float) -> dict[str, MetricValue]:
    """The host's averages over the gap: CPU shares, rates, paging, PSI."""
    m: dict[str, MetricValue] = {}
    t1 = _fields(CpuTimes, {k.removeprefix("cpu."): v for k, v in prev.items()})
    t2 = _fields(CpuTimes, {k.removeprefix("cpu."): v for k, v in cur.items()})
    usable = t1 is not None and t2 is not None and isinstance(t1.user, int)
    shares = cpu_shares(t1, t2) if usable else None
    if shares is not None:
        for name in ("user", "nice", "system", "iowait", "irq", "softirq", "steal", "guest"):
            m[f"cpu.{name}_pct"] = getattr(shares, f"{name}_pct")
        m["cpu.idle_pct"], m["cpu.busy_pct"] = shares.idle_pct, shares.busy_pct
    m["cpu.ctxt_per_s"] = _rate(_delta(prev, cur, "ctxt"), dt)
    m["cpu.intr_per_s"] = _rate(_delta(prev, cur, "intr"), dt)
    m["cpu.forks_per_s"] = _rate(_delta(prev, cur, "processes"), dt)
    m["paging.swap_in_pages_per_s"] = _rate(_delta(prev, cur, "pswpin"), dt)
    m["paging.swap_out_pages_per_s"] = _rate(_delta(prev, cur, "pswpout"), dt)
    m["paging.major_faults_per_s"] = _rate(_delta(prev, cur, "pgmajfault"), dt)
    if not ("oom_kill" in cur and cur["oom_kill"] is None):  # None: the kernel has none
        m["oom.kills"] = _delta(prev, cur, "oom_kill")
    for metric, key in _PSI:
        if key not in prev and key not in cur:
            continue  # no /proc/pressure in either run: not offered (METRICS.md), absent
        d = _delta(prev, cur, key)
        m[metric] = None if d is None else 100.0 * d / (dt * 1e6)
    return m


def _fields(cls: Any, c: Counters, **fixed: Any) -> Any:
    names = set(cls._fields)  # a NamedTuple's
    try:
        return cls(**fixed, **{k: v for k, v in c.items() if k in names})
    except TypeError:
        return None


def disk_gap(prev: Counters, cur: Counters, dt: float) -> dict[str, MetricValue]:
    """A disk's iostat -x figures over the gap."""
    a = _fields(DiskStat, prev, name="")
    b = _fields(DiskStat, cur, name="")
    if a is None or b is None:
        return {}
    r = disk_rates(a, b, dt)
    return {
        "disk.reads_per_s": r.reads_per_s,
        "disk.writes_per_s": r.writes_per_s,
        "disk.read_bytes_per_s": r.read_bytes_per_s,
        "disk.write_bytes_per_s": r.write_bytes_per_s,
        "disk.r_await_ms": r.r_await_ms,
        "disk.w_await_ms": r.w_await_ms,
        "disk.queue_depth": r.queue_depth,
        "disk.util_pct": r.util_pct,
    }


def nic_gap(prev: Counters, cur: Counters, dt: float) -> dict[str, MetricValue]:
    """A NIC's rates over the gap."""
    a = _fields(NetDev, prev, name="")
    b = _fields(NetDev, cur, name="")
    if a is None or b is None:
        return {}
    return dict(nic_rates(a, b, dt).rates)


def vm_gap(
    prev: Counters, cur: Counters, dt: float, host_cpus: int | None
) -> dict[str, MetricValue]:
    """A KVM VM's averages over the gap (the spot sample's formulas on the summed counters);
    a VM restarted in between (cpu.time gone back) has none."""
    if _delta(prev, cur, "cpu.time") is None:
        return {}
    return kvm_rates(lambda key: _delta(prev, cur, key), _num(cur, "vcpu.current"), host_cpus, dt)


def ctr_gap(prev: Counters, cur: Counters) -> dict[str, MetricValue]:
    """A container's OOM kills over the gap: the Δ of its cgroup's count (PromQL increase()
    of cAdvisor's container_oom_events_total); None when the count went down (the cgroup
    was made again: a restart), as the kills before it are not in it any more."""
    return {"ctr.oom_kills": _delta(prev, cur, "oom_kill")}


def since_last_run(
    prev: Mapping[tuple[str, str], Counters],
    cur: Mapping[tuple[str, str], Counters],
    host_cpus: int | None,
) -> tuple[float | None, dict[tuple[str, str], dict[str, MetricValue]], str | None]:
    """The gap in seconds, each subject's averages over it ((scope, name); the host is
    ("host", "")), and a note when there is no average (reboot) or a container restarted."""
    ph, ch = prev.get(("host", "")), cur.get(("host", ""))
    if ph is None or ch is None:
        return None, {}, None
    dt, why = gap_s(ph, ch)
    if dt is None:
        return None, {}, why
    out: dict[tuple[str, str], dict[str, MetricValue]] = {("host", ""): host_gap(ph, ch, dt)}
    restarted = 0
    for key, c in cur.items():
        scope = key[0]
        p = prev.get(key)
        # Only counters of the same earlier run as the host's: Δt is the host's uptime.
        if p is None or scope == "host" or p.get("_t") != ph.get("_t"):
            continue
        if scope == "disk":
            out[key] = disk_gap(p, c, dt)
        elif scope == "nic":
            out[key] = nic_gap(p, c, dt)
        elif scope == "vm":
            out[key] = vm_gap(p, c, dt, host_cpus)
        elif scope == "ctr":
            out[key] = ctr_gap(p, c)
            restarted += out[key]["ctr.oom_kills"] is None
    note = (
        f"{restarted} container(s) restarted since the last run (OOM kill count went down):"
        " their OOM kills since the last run are not known"
        if restarted
        else None
    )
    return dt, out, note
