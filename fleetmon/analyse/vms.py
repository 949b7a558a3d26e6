"""Deltas stage for virtual machines (pure): per-VM `vm.*` rows and the host's `hv.*` figures.

KVM from two `virsh domstats` samples, Xen from `xl list`, `xl info` and two xentop
iterations (without xentop, VM CPU from the Δ of xl list's Time(s)); formulas of METRICS.md.
A failed hypervisor command costs the VMs, never the host.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetmon.analyse.hv import hv_metrics, share
from fleetmon.errors import ProbeParseError
from fleetmon.model import MetricValue, Row
from fleetmon.model.catalog import HOST, VM
from fleetmon.sources import virsh, xen
from fleetmon.sources.sections import ProbeOutput

NS = 1_000_000_000
MIB = 1024 * 1024

#: Every vm.* metric of a VM that has counters, in catalogue order.
VM_METRICS = tuple(m.name for m in VM)

#: The host's hypervisor figures: null, not absent, when its hypervisor's tools failed
#: (not computable this run; absent means the host runs no hypervisor).
HV_METRICS = tuple(m.name for m in HOST if m.name.startswith("hv."))


@dataclass(frozen=True, slots=True)
class VmResult:
    """The VMs of one host, its hv.* metrics, and facts the host rows need."""

    vms: tuple[Row, ...] = ()  # the rows of scope "vm"
    hv_metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    #: Host interface name (tap/vif) -> the VM it belongs to.
    nic_vm: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    hypervisor: str = "none"  # "kvm", "xen" or "none"
    #: The machine's CPUs and memory when /proc does not describe them (Xen dom0).
    host_cpus: int | None = None
    host_mem_bytes: int | None = None


def probe_meta(out: ProbeOutput) -> Mapping[str, str]:
    """The probe's `meta` section (probe version, hypervisor found, tool paths)."""
    # Through the memo: a streamed host's meta is read once, not at every tick.
    return out.parsed(0, "meta", parse_meta) or {}


def parse_meta(text: str) -> dict[str, str]:
    """`key=value` lines of the `meta` section."""
    meta: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def compute_vms(
    out: ProbeOutput,
    host_cpus: int | None,
    host_mem_bytes: int | None,
    interval_s: float | None,
) -> VmResult:
    """VM rows and hv.* metrics from a host's probe output; empty when it runs no VMs."""
    hv = probe_meta(out).get("hypervisor")
    if hv is None:  # an older probe without meta: go by the sections present
        hv = "kvm" if out.get(1, "virsh_domstats") else "xen" if out.get(1, "xl_list") else "none"
    try:
        if hv == "kvm":
            return _kvm(out, host_cpus, host_mem_bytes, interval_s)
        if hv == "xen":
            return _xen(out, host_cpus, host_mem_bytes, interval_s)
    except ProbeParseError as exc:
        # The host's own figures are still good: lose the VMs, say why.
        return _not_reported(hv, f"{hv} output unreadable: {exc}")
    return VmResult()


def _not_reported(hv: str, reason: str) -> VmResult:
    """A hypervisor whose VMs could not be listed: hv.* null, and why."""
    return VmResult(
        hypervisor=hv, hv_metrics=dict.fromkeys(HV_METRICS), notes=(f"VMs not reported: {reason}",)
    )


def _failed(out: ProbeOutput, sample: int, name: str) -> str | None:
    sec = out.get(sample, name)
    if sec is None:
        return f"no {name} section in the probe output"
    if sec.rc != 0:
        return f"{name.replace('_', ' ', 1)} failed: {virsh.failure_reason(sec.text, sec.rc)}"
    return None


def _rate(delta: int | None, dt: float | None, scale: float = 1.0) -> float | None:
    return None if delta is None or not dt else delta * scale / dt


def _pct_of(delta: int | None, units: int | None, dt: float | None) -> float | None:
    """100·Δns/(units·10⁹·Δt): the share of `units` CPUs busy."""
    return (
        None if delta is None or not units or not dt else share(100.0 * delta / (units * NS * dt))
    )


# ------------------------------------------------------------------------------ KVM


def _kvm(
    out: ProbeOutput, host_cpus: int | None, host_mem_bytes: int | None, dt: float | None
) -> VmResult:
    reason = _failed(out, 1, "virsh_domstats") or _failed(out, 2, "virsh_domstats")
    if reason:
        return _not_reported("kvm", reason)
    s1 = {d.name: d for d in out.parsed(1, "virsh_domstats", virsh.parse_domstats) or ()}
    s2 = out.parsed(2, "virsh_domstats", virsh.parse_domstats) or ()
    node_text = out.text(0, "virsh_nodeinfo")
    node = out.parsed(0, "virsh_nodeinfo", virsh.parse_nodeinfo) if node_text else None
    node = node or virsh.NodeInfo(None, None)
    cpus = host_cpus or node.cpus
    mem = host_mem_bytes or node.mem_bytes
    notes: list[str] = []
    rows: list[Row] = []
    nic_vm: dict[str, str] = {}
    for d2 in s2:
        d1 = s1.get(d2.name)
        state = d2.state
        was_active = d1 is not None and d1.state in virsh.ACTIVE_STATES
        if state not in virsh.ACTIVE_STATES:
            rows.append(Row(d2.name, {"vm.state": state}))
            if was_active:
                notes.append(f"VM {d2.name} stopped between the samples")
            continue
        for port in d2.device_slots("net"):
            if not port.startswith("#"):
                nic_vm[port] = d2.name
        usable = d1 if was_active and dt else None
        if d1 is None or not was_active:
            notes.append(f"VM {d2.name} started between the samples: no rates for it")
        elif _delta(d1, d2, "cpu.time") is None:
            usable = None
            notes.append(f"VM {d2.name} restarted between the samples: no rates for it")
        rows.append(Row(d2.name, _kvm_vm(d2, usable, cpus, dt)))
    names2 = {d.name for d in s2}
    notes += [f"VM {n} disappeared between the samples" for n in s1 if n not in names2]
    hv, hv_notes = hv_metrics(rows, cpus, mem, "no balloon.maximum in virsh domstats")
    return VmResult(
        vms=tuple(rows),
        hv_metrics=hv,
        nic_vm=nic_vm,
        notes=(*notes, *hv_notes),
        hypervisor="kvm",
    )


def _delta(d1: virsh.DomainStats, d2: virsh.DomainStats, key: str) -> int | None:
    """Δ of one counter; None when missing or when it went down (a new QEMU process)."""
    a, b = d1.fields.get(key), d2.fields.get(key)  # num(), without two calls more
    return b - a if isinstance(a, int) and isinstance(b, int) and b >= a else None


def _device_sums(
    d1: virsh.DomainStats, d2: virsh.DomainStats, group: str, keys: tuple[str, ...]
) -> dict[str, int | None]:
    """Per key, ΣΔ of `group.N.key` over the devices (matched by name) present in both
    samples; None for a key when a device lacks it or its counter went down."""
    before, after = d1.device_slots(group), d2.device_slots(group)
    # Slots rather than indexed(): the same devices, matched by name, without a dict of
    # every device's fields. A device hot-plugged between the samples has no Δ.
    pairs = [
        (_slot_keys(group, before[n], keys), _slot_keys(group, slot, keys))
        for n, slot in after.items()
        if n in before
    ]
    get1, get2 = d1.fields.get, d2.fields.get
    sums: dict[str, int | None] = {}
    for j, key in enumerate(keys):
        total: int | None = None
        for k1, k2 in pairs:
            a, b = get1(k1[j]), get2(k2[j])
            if not isinstance(a, int) or not isinstance(b, int) or b < a:
                total = None
                break
            total = (total or 0) + b - a
        sums[key] = total
    return sums


# The same few slots tick after tick: their keys made once (and hashed once), not per VM.
@functools.lru_cache(maxsize=1024)
def _slot_keys(group: str, slot: int, keys: tuple[str, ...]) -> tuple[str, ...]:
    """`group.<slot>.<key>` for each of `keys`."""
    return tuple(f"{group}.{slot}.{key}" for key in keys)


#: The domstats counters of a VM's disks and NICs that its metrics sum.
_BLOCK_KEYS = ("rd.reqs", "wr.reqs", "rd.times", "wr.times", "rd.bytes", "wr.bytes")
_NET_KEYS = ("rx.bytes", "tx.bytes", "rx.pkts", "tx.pkts", "rx.drop", "tx.drop")


def _kib(value: int | None) -> int | None:
    return None if value is None else value * 1024


def _kvm_vm(
    d2: virsh.DomainStats, d1: virsh.DomainStats | None, host_cpus: int | None, dt: float | None
) -> dict[str, MetricValue]:
    m: dict[str, MetricValue] = dict.fromkeys(VM_METRICS)
    vcpus = d2.num("vcpu.current")
    avail, usable = d2.num("balloon.available"), d2.num("balloon.usable")
    m.update({
        "vm.state": d2.state,
        "vm.vcpus": vcpus,
        "vm.mem_max_bytes": _kib(d2.num("balloon.maximum")),
        "vm.mem_current_bytes": _kib(d2.num("balloon.current")),
        # usable/available only when the guest's balloon driver reports them (stats period).
        "vm.mem_used_pct": 100.0 * (avail - usable) / avail
        if avail and usable is not None
        else None,
    })  # fmt: skip
    if d1 is None:
        return m
    cpu = _delta(d1, d2, "cpu.time")
    # vcpu.N.delay: libvirt 6.x+ on Linux (schedstat of the vCPU thread); absent = unknown.
    delays = [_delta(d1, d2, key) for key in d2.vcpu_keys("delay")]
    delay = None if not delays or None in delays else sum(x for x in delays if x is not None)

    blk = _device_sums(d1, d2, "block", _BLOCK_KEYS).__getitem__
    net = _device_sums(d1, d2, "net", _NET_KEYS).__getitem__
    rd_reqs, wr_reqs = blk("rd.reqs"), blk("wr.reqs")
    rd_ns, wr_ns = blk("rd.times"), blk("wr.times")
    m.update({
        "vm.cpu_pct": _pct_of(cpu, vcpus, dt),
        "vm.cpu_host_pct": _pct_of(cpu, host_cpus, dt),
        "vm.vcpu_delay_pct": _pct_of(delay, vcpus, dt),
        # balloon.swap_in is KiB (virDomainMemoryStatTags VIR_DOMAIN_MEMORY_STAT_SWAP_IN).
        "vm.swap_in_bytes_per_s": _rate(_delta(d1, d2, "balloon.swap_in"), dt, 1024),
        "vm.major_faults_per_s": _rate(_delta(d1, d2, "balloon.major_fault"), dt),
        "vm.disk_reads_per_s": _rate(rd_reqs, dt),
        "vm.disk_writes_per_s": _rate(wr_reqs, dt),
        "vm.disk_read_bytes_per_s": _rate(blk("rd.bytes"), dt),
        "vm.disk_write_bytes_per_s": _rate(blk("wr.bytes"), dt),
        "vm.disk_r_await_ms": rd_ns / rd_reqs / 1e6 if rd_ns is not None and rd_reqs else None,
        "vm.disk_w_await_ms": wr_ns / wr_reqs / 1e6 if wr_ns is not None and wr_reqs else None,
        "vm.net_rx_bytes_per_s": _rate(net("rx.bytes"), dt),
        "vm.net_tx_bytes_per_s": _rate(net("tx.bytes"), dt),
        "vm.net_rx_packets_per_s": _rate(net("rx.pkts"), dt),
        "vm.net_tx_packets_per_s": _rate(net("tx.pkts"), dt),
        "vm.net_rx_drops_per_s": _rate(net("rx.drop"), dt),
        "vm.net_tx_drops_per_s": _rate(net("tx.drop"), dt),
    })  # fmt: skip
    return m


# ------------------------------------------------------------------------------ Xen


def _xen(
    out: ProbeOutput, host_cpus: int | None, host_mem_bytes: int | None, dt: float | None
) -> VmResult:
    reason = _failed(out, 2, "xl_list")
    if reason:
        return _not_reported("xen", reason)
    notes: list[str] = []
    info_text = out.text(0, "xl_info")
    info = xen.parse_xl_info(info_text) if info_text else xen.XlInfo(None, None, None)
    cpus = info.nr_cpus or host_cpus
    mem = info.total_memory_bytes or host_mem_bytes
    if info_text:
        notes.append(
            "Xen dom0: /proc describes dom0 only; host capacity from xl info "
            f"({info.nr_cpus} CPUs, {(info.total_memory_bytes or 0) // MIB} MiB)"
        )
    else:
        notes.append(f"Xen dom0: /proc describes dom0 only, and {_failed(out, 0, 'xl_info')}")
    # None: sample 1's xl list failed, so nobody can say which guests are new.
    parsed1 = out.parsed(1, "xl_list", xen.parse_xl_list)
    before = {d.name: d for d in parsed1} if parsed1 is not None else None
    # Domain 0 is the host itself (its figures are the host's), not a guest.
    guests = [d for d in out.parsed(2, "xl_list", xen.parse_xl_list) or () if d.domid != 0]
    top_fail = _failed(out, 0, "xentop")
    blocks = xen.parse_xentop(out.text(0, "xentop") or "") if top_fail is None else ()
    if top_fail is None and len(blocks) < 2:
        top_fail = f"xentop printed {len(blocks)} iteration(s), 2 needed"
    # Without xentop, xl list's Time(s) in both samples still gives each guest's CPU over
    # the probe's Δt (the script sleeps instead), but nothing gives disk or network.
    list_cpu = bool(top_fail) and before is not None and bool(dt)
    if list_cpu:
        notes.append(
            "VM CPU figures from xl list's Time(s) (0.1 s resolution) because xentop was"
            f" unavailable ({top_fail}); VM disk and network rates not reported"
        )
    elif top_fail:
        why = [top_fail]
        if before is None:
            why.append(_failed(out, 1, "xl_list") or "")
        notes.append("VM rates not reported: " + ", and ".join(why))
    # The two iterations are xentop's own `-d` seconds apart, not the /proc samples' Δt.
    delay = probe_meta(out).get("xentop_delay_s", "")
    top_dt = float(delay) if delay.replace(".", "", 1).isdigit() else dt
    first = _match(blocks[-2], guests) if len(blocks) >= 2 else {}
    second = _match(blocks[-1], guests) if len(blocks) >= 2 else {}
    rows: list[Row] = []
    nic_vm: dict[str, str] = {}
    for d in guests:
        old = before.get(d.name) if before is not None else None
        t1, t2 = first.get(d.name), second.get(d.name)
        if before is not None and old is None:
            notes.append(f"VM {d.name} started between the samples: no rates for it")
            t1 = None
        elif old is not None and (old.domid != d.domid or d.cpu_s < old.cpu_s):
            # Xen gives a new domain a new ID; its Time(s) starts again from 0.
            notes.append(f"VM {d.name} restarted between the samples: no rates for it")
            t1 = old = None
        # Time(s) is printed with one decimal: round the Δ back to it (5626.7 - 5624.2).
        cpu_s = round(d.cpu_s - old.cpu_s, 1) if list_cpu and old is not None else None
        m = _xen_vm(d, t1, t2, cpus, top_dt)
        if cpu_s is not None and dt:
            # A guest cannot run longer than VCPUS·Δt: any excess is Time(s)'s rounding.
            cpu_s = min(cpu_s, d.vcpus * dt)
            m["vm.cpu_pct"] = share(100.0 * cpu_s / (d.vcpus * dt)) if d.vcpus else None
            m["vm.cpu_host_pct"] = share(100.0 * cpu_s / (cpus * dt)) if cpus else None
        rows.append(Row(d.name, m))
        # NETS is the host's word: never more ports than a domain can have (MAX_DEVICES).
        nets = min(t2.nets, virsh.MAX_DEVICES) if t2 and t2.nets is not None else 1
        for i in range(nets):  # netback names a guest's ports vif<domid>.<n> (-emu for HVM)
            nic_vm[f"vif{d.domid}.{i}"] = nic_vm[f"vif{d.domid}.{i}-emu"] = d.name
    max_from = "xentop unavailable" if top_fail else "xentop's MAXMEM says no limit"
    hv, hv_notes = hv_metrics(rows, cpus, mem, max_from)
    return VmResult(
        vms=tuple(rows),
        hv_metrics=hv,
        nic_vm=nic_vm,
        notes=(*notes, *hv_notes),
        hypervisor="xen",
        host_cpus=info.nr_cpus,
        host_mem_bytes=info.total_memory_bytes,
    )


def _match(rows: tuple[xen.XentopRow, ...], guests: list[xen.XlDomain]) -> dict[str, xen.XentopRow]:
    """xentop rows keyed by xl name; a 10-character cut name matches one xl name only."""
    out: dict[str, xen.XentopRow] = {}
    for row in rows:
        exact = [g.name for g in guests if g.name == row.name]
        cut = [g.name for g in guests if len(row.name) == 10 and g.name[:10] == row.name]
        names = exact or cut
        if len(names) == 1:
            out[names[0]] = row
    return out


def _xen_vm(
    d: xen.XlDomain,
    t1: xen.XentopRow | None,
    t2: xen.XentopRow | None,
    host_cpus: int | None,
    dt: float | None,
) -> dict[str, MetricValue]:
    m: dict[str, MetricValue] = dict.fromkeys(VM_METRICS)
    m["vm.state"] = xen.xen_state(d.flags)
    m["vm.vcpus"] = d.vcpus
    cur_kib = t2.mem_kib if t2 is not None else None
    m["vm.mem_current_bytes"] = cur_kib * 1024 if cur_kib is not None else d.mem_mib * MIB
    if t2 is not None and t2.maxmem_kib is not None:  # None: "no limit"
        m["vm.mem_max_bytes"] = t2.maxmem_kib * 1024
    if t1 is None or t2 is None:
        return m

    def diff(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None or b < a else b - a

    # CPU(%) is already 100·Δns/Δwall over the last xentop interval: only divide.
    m["vm.cpu_pct"] = share(t2.cpu_pct / d.vcpus) if d.vcpus else None
    m["vm.cpu_host_pct"] = share(t2.cpu_pct / host_cpus) if host_cpus else None
    m["vm.disk_reads_per_s"] = _rate(diff(t1.vbd_rd, t2.vbd_rd), dt)
    m["vm.disk_writes_per_s"] = _rate(diff(t1.vbd_wr, t2.vbd_wr), dt)
    m["vm.disk_read_bytes_per_s"] = _rate(diff(t1.vbd_rsect, t2.vbd_rsect), dt, 512)
    m["vm.disk_write_bytes_per_s"] = _rate(diff(t1.vbd_wsect, t2.vbd_wsect), dt, 512)
    m["vm.net_rx_bytes_per_s"] = _rate(diff(t1.netrx_kib, t2.netrx_kib), dt, 1024)
    m["vm.net_tx_bytes_per_s"] = _rate(diff(t1.nettx_kib, t2.nettx_kib), dt, 1024)
    # xentop counts no packets: vm.net_*_packets_per_s stay null on Xen.
    m["vm.disk_oo_per_s"] = _rate(diff(t1.vbd_oo, t2.vbd_oo), dt)
    return m
