"""Deltas stage for virtual machines (pure): per-VM `vm.*` rows and the host's `hv.*` figures.

KVM from two `virsh domstats` samples here; Xen in xenvms.py; what both share in
vmcommon.py. Formulas of METRICS.md. A failed hypervisor command costs the VMs, never
the host.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from itertools import accumulate, chain
from operator import sub
from typing import NamedTuple

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
        rows.append(Row(d2.name, _kvm_vm(d2, state, usable, cpus, dt)))
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


#: A VM's own counters among those kvm_rates asks the Δ of (besides its vCPUs' and devices').
_SINGLE = ("cpu.time", "balloon.swap_in", "balloon.major_fault")


class _Plan(NamedTuple):
    """What _sums() reads of a pair of records: each sum's name, the keys of its counters
    in the first record and in the second (all sums' keys end to end), and each sum's
    share of them; and those of the sums that have counters, and those that have none."""

    names: tuple[str, ...]
    keys1: tuple[str, ...]
    keys2: tuple[str, ...]
    parts: tuple[slice, ...]
    filled: tuple[str, ...]
    filled_parts: tuple[slice, ...]
    empty: tuple[str, ...]


def _sums(d1: virsh.DomainStats, d2: virsh.DomainStats) -> dict[str, int | None]:
    """The Δ of every counter kvm_rates asks for: `cpu.time`, `balloon.swap_in` and
    `balloon.major_fault`; `vcpu.delay`, ΣΔ of `vcpu.N.delay` over the vCPUs of `d2`
    (libvirt 6.x+ on Linux: the schedstat of the vCPU thread; absent = unknown); and
    per key of KVM_DEVICE_KEYS[group], ΣΔ of `group.N.key` over the devices (matched by
    name) present in both samples, as `group.key`. A sum is None when it has no counter,
    when one is missing or not a number, or when one went down (a new QEMU process, a
    device re-added).

    Every counter is read, and every Δ taken, in one C-speed pass over the VM's keys
    (`_plan`, made once per layout of slots and vCPUs), and every sum in one more when
    no Δ is negative; a counter that is missing or not a number stops the first pass
    (int - None, str - str: TypeError), and the sums are then taken one counter at a time
    (`_sums_slow`), to the same result."""
    layout = (_matched(d1, d2, "block"), _matched(d1, d2, "net"), d2.vcpu_keys("delay"))
    small = sum(map(len, layout)) <= _PLANNED_MAX
    plan = _plan(*layout) if small else _plan.__wrapped__(*layout)
    try:
        deltas = list(map(sub, map(d2.fields.get, plan.keys2), map(d1.fields.get, plan.keys1)))
    except TypeError:
        return _sums_slow(d1, d2, plan)
    sums: dict[str, int | None] = dict.fromkeys(plan.empty)
    if deltas and min(deltas) >= 0:  # the usual tick: every counter went up or stayed
        filled = map(sum, map(deltas.__getitem__, plan.filled_parts))
        sums.update(zip(plan.filled, filled, strict=True))
        return sums
    for name, part in zip(plan.filled, plan.filled_parts, strict=True):
        got = deltas[part]
        sums[name] = None if min(got) < 0 else sum(got)
    return sums


def _sums_slow(d1: virsh.DomainStats, d2: virsh.DomainStats, plan: _Plan) -> dict[str, int | None]:
    """_sums(), one counter at a time."""
    get1, get2 = d1.fields.get, d2.fields.get
    sums: dict[str, int | None] = {}
    for name, part in zip(plan.names, plan.parts, strict=True):
        total: int | None = None
        for k1, k2 in zip(plan.keys1[part], plan.keys2[part], strict=True):
            a, b = get1(k1), get2(k2)
            if not isinstance(a, int) or not isinstance(b, int) or b < a:
                total = None
                break
            total = (total or 0) + b - a
        sums[name] = total
    return sums


def _matched(
    d1: virsh.DomainStats, d2: virsh.DomainStats, group: str
) -> tuple[tuple[int, int], ...]:
    """The slots of the group's devices present in both records, matched by name: (N in
    d1, N in d2), in d2's order. Slots rather than indexed(): the same devices without a
    dict of every device's fields. A device hot-plugged between the samples has no Δ."""
    before, after = d1.device_slots(group), d2.device_slots(group)
    if before == after:  # the same devices in the same slots: the usual tick
        return tuple(zip(after.values(), after.values(), strict=True))
    return tuple((before[n], slot) for n, slot in after.items() if n in before)


#: Devices and vCPUs of a layout whose plan is kept (a VM of hundreds, or a hostile record
#: of thousands, is planned each time: the cache stays small).
_PLANNED_MAX = 128


# The same few layouts tick after tick and VM after VM (one disk and one NIC in slot 0, a
# few vCPU counts): their keys made once (and hashed once), not per VM.
@functools.lru_cache(maxsize=1024)
def _plan(
    block: tuple[tuple[int, int], ...],
    net: tuple[tuple[int, int], ...],
    delays: tuple[str, ...],
) -> _Plan:
    sums: list[tuple[str, Sequence[str], Sequence[str]]] = [(k, (k,), (k,)) for k in _SINGLE]
    sums.append(("vcpu.delay", delays, delays))
    for group, pairs in (("block", block), ("net", net)):
        keys, names = KVM_DEVICE_SUMS[group]
        sums += [
            (
                name,
                [f"{group}.{a}.{key}" for a, _ in pairs],
                [f"{group}.{b}.{key}" for _, b in pairs],
            )
            for key, name in zip(keys, names, strict=True)
        ]
    ends = list(accumulate(len(first) for _, first, _ in sums))
    parts = tuple(map(slice, [0, *ends[:-1]], ends))
    filled = [i for i, (_, first, _) in enumerate(sums) if first]
    return _Plan(
        names=tuple(name for name, _, _ in sums),
        keys1=tuple(chain.from_iterable(first for _, first, _ in sums)),
        keys2=tuple(chain.from_iterable(second for _, _, second in sums)),
        parts=parts,
        filled=tuple(sums[i][0] for i in filled),
        filled_parts=tuple(parts[i] for i in filled),
        empty=tuple(name for name, first, _ in sums if not first),
    )


def _kib(value: int | None) -> int | None:
    return None if value is None else value * 1024


def _kvm_vm(
    d2: virsh.DomainStats,
    state: str | None,
    d1: virsh.DomainStats | None,
    host_cpus: int | None,
    dt: float | None,
) -> dict[str, MetricValue]:
    """A running VM's vm.* (`state`: d2.state); its rates when `d1` is its record in the
    first sample (None: no rates)."""
    m: dict[str, MetricValue] = dict.fromkeys(KVM_VM_METRICS)
    vcpus = d2.num("vcpu.current")
    avail, usable = d2.num("balloon.available"), d2.num("balloon.usable")
    m.update({
        "vm.state": state,
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
    m.update(kvm_rates(_sums(d1, d2).get, vcpus, host_cpus, dt))
    return m
