"""Analyse stage: a guest seen from both sides (pure).

A VM that is also an inventory host is matched to it by the libvirt domain UUID, which QEMU
gives the guest as its SMBIOS system UUID (the guest's /sys/class/dmi/id/product_uuid), or
by the inventory variable `fleetmon_vm_of: hypervisor/domain`. The guest host then has one
row of scope `guest` (named `hypervisor/domain`) with the hypervisor's view of it beside its
own: vCPU delay next to steal, vCPU busy next to CPU busy, balloon and QEMU's RSS next to
MemAvailable; the VM row on the hypervisor gets the label `guest_host`, the way back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from fleetmon.model import HostReport, MetricValue, Row

#: The `guest` row's metrics: (its name, the side it comes from, the metric there).
PAIR = (
    ("guest.steal_pct", "guest", "cpu.steal_pct"),
    ("guest.vcpu_delay_pct", "vm", "vm.vcpu_delay_pct"),
    ("guest.busy_pct", "guest", "cpu.busy_pct"),
    ("guest.vm_cpu_pct", "vm", "vm.cpu_pct"),
    ("guest.mem_available_bytes", "guest", "mem.available_bytes"),
    ("guest.mem_total_bytes", "guest", "mem.total_bytes"),
    ("guest.balloon_bytes", "vm", "vm.mem_current_bytes"),
    ("guest.host_rss_bytes", "vm", "vm.host_rss_bytes"),
)


def _pair_metrics(guest: HostReport, vm: Row) -> dict[str, MetricValue]:
    sides: Mapping[str, Mapping[str, MetricValue]] = {"guest": guest.metrics, "vm": vm.metrics}
    return {name: sides[side].get(metric) for name, side, metric in PAIR}


Found = tuple[int, Row]  # a VM row and the index of its hypervisor among the hosts


def _target(
    h: HostReport, by_uuid: Mapping[str, Found], by_name: Mapping[tuple[str, str], Found]
) -> tuple[int, Row, str] | None:
    if h.vm_of:
        hv, _, dom = h.vm_of.partition("/")
        hit = by_name.get((hv, dom))
        return None if hit is None else (*hit, "inventory")
    if h.product_uuid:
        hit = by_uuid.get(h.product_uuid)
        return None if hit is None else (*hit, "uuid")
    return None


def link_guests(hosts: Sequence[HostReport]) -> tuple[HostReport, ...]:
    """The hosts, each guest with its `guest` row and its VM row labelled `guest_host`."""
    by_uuid: dict[str, tuple[int, Row]] = {}
    by_name: dict[tuple[str, str], tuple[int, Row]] = {}
    for i, h in enumerate(hosts):
        for row in h.rows_of("vm"):
            by_name[h.name, row.name] = (i, row)
            uuid = row.labels.get("uuid")
            if uuid:
                by_uuid[uuid.lower()] = (i, row)
    out = list(hosts)
    back: dict[int, dict[str, str]] = {}  # hypervisor index -> VM name -> guest host
    for gi, h in enumerate(hosts):
        found = _target(h, by_uuid, by_name)
        if found is None:
            if h.vm_of and h.collected:
                out[gi] = dataclasses.replace(
                    h, notes=(*h.notes, f"fleetmon_vm_of: no VM {h.vm_of!r} in this run")
                )
            continue
        hi, vm, how = found
        if hi == gi:
            continue
        hv = hosts[hi]
        labels = {"hypervisor": hv.name, "vm": vm.name, "matched_by": how}
        if "uuid" in vm.labels:
            labels["uuid"] = vm.labels["uuid"]
        row = Row(f"{hv.name}/{vm.name}", _pair_metrics(h, vm), labels)
        out[gi] = dataclasses.replace(out[gi], rows={**out[gi].rows, "guest": (row,)})
        back.setdefault(hi, {})[vm.name] = h.name
    for hi, guests in back.items():
        hv = out[hi]
        vms = tuple(
            dataclasses.replace(r, labels={**r.labels, "guest_host": guests[r.name]})
            if r.name in guests
            else r
            for r in hv.rows_of("vm")
        )
        out[hi] = dataclasses.replace(hv, rows={**hv.rows, "vm": vms})
    return tuple(out)
