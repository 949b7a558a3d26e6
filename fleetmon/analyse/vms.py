"""Deltas stage for virtual machines (pure): per-VM `vm.*` rows and the host's `hv.*` figures.

KVM from two `virsh domstats` samples here; Xen in xenvms.py; what both share in
vmcommon.py. Formulas of METRICS.md. A failed hypervisor command costs the VMs, never
the host.
"""

from __future__ import annotations

import functools

from fleetmon.analyse.hv import hv_metrics
from fleetmon.analyse.vmcommon import (
    HV_METRICS,
    KVM_DEVICE_SUMS,
    KVM_VM_METRICS,
    VM_METRICS,
    VmResult,
    failed,
    kvm_rates,
    not_reported,
    parse_meta,
    probe_meta,
)
from fleetmon.analyse.xenvms import compute_xen
from fleetmon.errors import ProbeParseError
from fleetmon.model import MetricValue, Row
from fleetmon.sources import virsh
from fleetmon.sources.domshape import parse_domstats_shaped
from fleetmon.sources.sections import ProbeOutput

__all__ = ["HV_METRICS", "VM_METRICS", "VmResult", "compute_vms", "parse_meta", "probe_meta"]


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
            return compute_xen(out, host_cpus, host_mem_bytes, interval_s)
    except ProbeParseError as exc:
        # The host's own figures are still good: lose the VMs, say why.
        return not_reported(hv, f"{hv} output unreadable: {exc}")
    return VmResult()


# ------------------------------------------------------------------------------ KVM


def _domstats(out: ProbeOutput, sample: int) -> tuple[virsh.DomainStats, ...] | None:
    """The sample's records; a streamed host's read by the shape of its previous sample."""
    return out.parsed_shaped(sample, "virsh_domstats", virsh.parse_domstats, parse_domstats_shaped)


def _kvm(
    out: ProbeOutput, host_cpus: int | None, host_mem_bytes: int | None, dt: float | None
) -> VmResult:
    reason = failed(out, 1, "virsh_domstats") or failed(out, 2, "virsh_domstats")
    if reason:
        return not_reported("kvm", reason)
    s1 = {d.name: d for d in _domstats(out, 1) or ()}
    s2 = _domstats(out, 2) or ()
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


def _device_sums(d1: virsh.DomainStats, d2: virsh.DomainStats, group: str) -> dict[str, int | None]:
    """Per key of KVM_DEVICE_KEYS[group], ΣΔ of `group.N.key` over the devices (matched by
    name) present in both samples, as `group.key`; None for a key when a device lacks it or
    its counter went down."""
    keys, names = KVM_DEVICE_SUMS[group]
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
    for j, name in enumerate(names):
        total: int | None = None
        for k1, k2 in pairs:
            a, b = get1(k1[j]), get2(k2[j])
            if not isinstance(a, int) or not isinstance(b, int) or b < a:
                total = None
                break
            total = (total or 0) + b - a
        sums[name] = total
    return sums


# The same few slots tick after tick: their keys made once (and hashed once), not per VM.
@functools.lru_cache(maxsize=1024)
def _slot_keys(group: str, slot: int, keys: tuple[str, ...]) -> tuple[str, ...]:
    """`group.<slot>.<key>` for each of `keys`."""
    return tuple(f"{group}.{slot}.{key}" for key in keys)


def _kib(value: int | None) -> int | None:
    return None if value is None else value * 1024


def _kvm_vm(
    d2: virsh.DomainStats, d1: virsh.DomainStats | None, host_cpus: int | None, dt: float | None
) -> dict[str, MetricValue]:
    m: dict[str, MetricValue] = dict.fromkeys(KVM_VM_METRICS)
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
    # vcpu.N.delay: libvirt 6.x+ on Linux (schedstat of the vCPU thread); absent = unknown.
    delays = [_delta(d1, d2, key) for key in d2.vcpu_keys("delay")]
    sums = _device_sums(d1, d2, "block")
    sums.update(_device_sums(d1, d2, "net"))
    sums["cpu.time"] = _delta(d1, d2, "cpu.time")
    sums["vcpu.delay"] = (
        None if not delays or None in delays else sum(x for x in delays if x is not None)
    )
    sums["balloon.swap_in"] = _delta(d1, d2, "balloon.swap_in")
    sums["balloon.major_fault"] = _delta(d1, d2, "balloon.major_fault")
    m.update(kvm_rates(sums.get, vcpus, host_cpus, dt))
    return m
