"""The cumulative counters of one sample (pure): what the history keeps to average a gap.

`sar -f` averages a whole interval from two snapshots of the kernel's counters; fleetmon
keeps the counters of each run's second sample, so two consecutive runs give the exact
average over the gap between them (analyse/gap.py), not only the 1-5 s spot sample of
each. Per subject: the host (/proc/stat CPU ticks and totals, /proc/vmstat, PSI totals,
the uptime and boot id that guard the gap), each disk and NIC row (their diskstats and
net/dev fields), each KVM VM (domstats cpu.time, vCPU delay, block and net sums, balloon),
each container (its cgroup's OOM kill count: memory.events oom_kill, read once a run).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from itertools import repeat
from typing import Any

from fleetmon.analyse.vmcommon import KVM_DEVICE_SUMS
from fleetmon.errors import ProbeParseError
from fleetmon.model import Row
from fleetmon.sources import virsh
from fleetmon.sources.diskstats import parse_diskstats
from fleetmon.sources.netdev import parse_net_dev
from fleetmon.sources.pressure import SECTION_PARSERS
from fleetmon.sources.sections import ProbeOutput
from fleetmon.sources.stat import parse_stat
from fleetmon.sources.uptime import parse_boot_id, parse_uptime
from fleetmon.sources.vmstat import parse_vmstat

#: One subject's counters: numbers, and the host's boot id.
Counters = dict[str, int | float | str | None]

#: /proc/vmstat fields kept (paging.*, oom.kills).
VMSTAT = ("pswpin", "pswpout", "pgmajfault", "oom_kill")
VM_FIELDS = ("cpu.time", "vcpu.current", "balloon.swap_in", "balloon.major_fault")


def _parse(out: ProbeOutput, sample: int, name: str, parser: Any) -> Any:
    if not out.text(sample, name):
        return None
    try:
        return out.parsed(sample, name, parser)
    except (ValueError, IndexError, KeyError, ProbeParseError):
        return None


def host_counters(out: ProbeOutput, sample: int = 2) -> Counters:
    """The host's counters in one sample: uptime, boot id, CPU ticks, totals, PSI."""
    c: Counters = {}
    up = _parse(out, sample, "uptime", parse_uptime)
    c["uptime_s"] = up.up_s if up is not None else None
    c["boot_id"] = _parse(out, sample, "boot_id", parse_boot_id)
    st = _parse(out, sample, "stat", parse_stat)
    if st is not None:
        c.update({f"cpu.{k}": v for k, v in _fields(st.total).items()})
        c.update(ctxt=st.ctxt, intr=st.intr_total, processes=st.processes, btime=st.btime)
    vm = _parse(out, sample, "vmstat", parse_vmstat)
    if vm is not None:
        c.update({k: vm.get(k) for k in VMSTAT})
    for section, parser in SECTION_PARSERS:
        res = section.removeprefix("pressure_")
        p = _parse(out, sample, section, parser)
        if p is not None:
            c[f"psi.{res}.some_us"] = p.some.total_us if p.some else None
            c[f"psi.{res}.full_us"] = p.full.total_us if p.full else None
    return c


#: host_counters' numbers that are not counters of one boot, or that proc(5) says can
#: decrease (iowait, on a tickless kernel: mpstat and psutil count its Δ as 0, as we do).
_NOT_COUNTERS = frozenset(("uptime_s", "btime", "cpu.iowait"))


def counters_down(out: ProbeOutput) -> tuple[str, ...]:
    """The host counters (host_counters' names) that went down from sample 1 to sample 2: a
    kernel's accounting bug, a CPU taken offline (the cpu line sums the online CPUs) or
    output not from /proc. Meaningful when the host did not reboot between the samples."""
    c1, c2 = host_counters(out, 1), host_counters(out, 2)
    return tuple(
        k
        for k, v in c2.items()
        if k not in _NOT_COUNTERS
        and isinstance(v, int)
        and isinstance(prev := c1.get(k), int)
        and v < prev
    )


def row_counters(
    out: ProbeOutput, scope: str, names: Collection[str], sample: int = 2
) -> dict[str, Counters]:
    """The counters of the disks or NICs called `names` in one sample, by device name."""
    if scope == "disk":
        ds = _parse(out, sample, "diskstats", parse_diskstats)
        devices: tuple[Any, ...] = ds.devices if ds is not None else ()
    elif scope == "nic":
        devices = _parse(out, sample, "net_dev", parse_net_dev) or ()
    else:
        return {}
    return {d.name: _fields(d) for d in devices if d.name in names}


def _fields(obj: Any) -> Counters:
    """A parsed record's fields but its name (CpuTimes, DiskStat, NetDev: NamedTuples)."""
    fields: Counters = obj._asdict()
    fields.pop("name", None)
    return fields


def vm_counters(out: ProbeOutput, sample: int = 2) -> dict[str, Counters]:
    """Each KVM domain's counters in one sample (sums over its devices and vCPUs)."""
    sec = out.get(sample, "virsh_domstats")
    if sec is None or sec.rc != 0 or not sec.text:
        return {}
    out_: dict[str, Counters] = {}
    for d in out.parsed(sample, "virsh_domstats", virsh.parse_domstats) or ():
        if d.state not in virsh.ACTIVE_STATES:
            continue
        c: Counters = {k: d.num(k) for k in VM_FIELDS}
        delays = [d.num(key) for key in d.vcpu_keys("delay")]
        c["vcpu.delay"] = None if not delays or None in delays else sum(delays)  # type: ignore[arg-type]
        get = d.fields.get  # device_field(), without a call more per device and key
        # Summed over its devices (KVM_DEVICE_SUMS), as the spot sample's deltas are.
        for group, (keys, names) in KVM_DEVICE_SUMS.items():
            prefixes = [f"{group}.{slot}." for slot in d.device_slots(group).values()]
            for key, name in zip(keys, names, strict=True):
                vals = [get(p + key) for p in prefixes]
                ok = all(map(isinstance, vals, repeat(int)))
                c[name] = sum(vals) if ok and vals else None  # type: ignore[arg-type]
        out_[d.name] = c
    return out_


def ctr_counters(rows: Sequence[Row]) -> dict[str, Counters]:
    """Each container's OOM kill count (ctr.oom_kills, counted since its cgroup was made),
    by row name: what the kills since the last run are the Δ of (analyse/gap.py)."""
    out: dict[str, Counters] = {}
    for r in rows:
        kills = r.metrics.get("ctr.oom_kills")
        if isinstance(kills, int) and not isinstance(kills, bool):
            out[r.name] = {"oom_kill": kills}
    return out


def all_counters(
    out: ProbeOutput, rows: Mapping[str, tuple[str, ...]], sample: int = 2
) -> dict[tuple[str, str], Counters]:
    """(scope, name) -> counters of the host (name "") and of the rows the report keeps."""
    found: dict[tuple[str, str], Counters] = {("host", ""): host_counters(out, sample)}
    for scope, names in rows.items():
        if not names:
            continue
        wanted = set(names)
        per = (
            vm_counters(out, sample) if scope == "vm" else row_counters(out, scope, wanted, sample)
        )
        for name in names:
            if name in per:
                found[scope, name] = per[name]
    return found
