"""Analyse stage: a guest seen from both sides (pure).

A VM that is also an inventory host is matched to it by the libvirt domain UUID, which QEMU
gives the guest as its SMBIOS system UUID (the guest's /sys/class/dmi/id/product_uuid), or
by the inventory variable `fleetmon_vm_of: hypervisor/domain`; a Xen guest by its domain
UUID (`xl list -v`), SMBIOS's in HVM, /sys/hypervisor/uuid in PV and PVH (no SMBIOS).
The guest host then has one row of scope `guest` (named `hypervisor/domain`) with the
hypervisor's view of it beside its own: vCPU delay next to steal, vCPU busy next to CPU
busy, balloon and QEMU's RSS next to MemAvailable; the VM row on the hypervisor gets the
label `guest_host`, the way back.

A UUID is not always one machine. A live-migrated domain stays defined, shut off, on its
source (virsh migrate without --undefinesource): the running copy is the guest. Cloned VMs
running on two hypervisors, or two guests reporting one UUID (clones, a firmware's
placeholder), cannot be told apart: nothing is paired, and a note on the guest says why.
The inventory variable names one VM: a guest named so wins over one found by UUID, and a
note says when its own UUID is another VM's (a stale variable). A guest
whose UUID matches no VM is matched with its first three fields byte-swapped as well
(`matched_by` uuid-swapped): SMBIOS before 2.6 left their byte order open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from uuid import UUID

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

#: vm.state of a VM whose guest runs there (libvirt virDomainState words, Xen's), then of
#: one that exists but does not run (paused: a migration's incoming copy): the first group
#: holding VMs of a UUID decides.
_PREFERRED = (frozenset({"running", "blocked"}), frozenset({"paused", "pmsuspended"}))


def _pair_metrics(guest: HostReport, vm: Row) -> dict[str, MetricValue]:
    sides: Mapping[str, Mapping[str, MetricValue]] = {"guest": guest.metrics, "vm": vm.metrics}
    return {name: sides[side].get(metric) for name, side, metric in PAIR}


Found = tuple[int, Row]  # a VM row and the index of its hypervisor among the hosts


def _one_of(found: Sequence[Found]) -> Found | None:
    """The VM of a UUID seen on several: the only running one, else the only paused one."""
    if len(found) == 1:
        return found[0]
    for states in _PREFERRED:
        live = [f for f in found if f[1].metrics.get("vm.state") in states]
        if live:
            return live[0] if len(live) == 1 else None
    return None


def _target(
    h: HostReport,
    hosts: Sequence[HostReport],
    by_uuid: Mapping[str, Sequence[Found]],
    by_name: Mapping[tuple[str, str], Found],
) -> tuple[int, Row, str] | str | None:
    """The guest's VM and how it was found; a note when it cannot be told; None: no VM."""
    if h.vm_of:
        hv, _, dom = h.vm_of.partition("/")
        hit = by_name.get((hv, dom))
        if hit is None:
            return _unmatched(h, hv, dom, hosts) if h.collected else None
        return (*hit, "inventory")
    return _by_uuid(h, hosts, by_uuid)


def _by_uuid(
    h: HostReport, hosts: Sequence[HostReport], by_uuid: Mapping[str, Sequence[Found]]
) -> tuple[int, Row, str] | str | None:
    """The guest's VM by its SMBIOS UUID (as is, or swapped); a note when several may be."""
    if not h.product_uuid:
        return None
    how, uuid = "uuid", h.product_uuid
    if uuid not in by_uuid:
        how, uuid = "uuid-swapped", swapped(uuid)
        if uuid not in by_uuid:
            return None
    found = by_uuid[uuid]
    one = _one_of(found)
    if one is None:
        vms = ", ".join(f"{hosts[i].name}/{r.name}" for i, r in found)
        return f"SMBIOS UUID {h.product_uuid} is one of VMs {vms} (clones?): not paired"
    return (*one, how)


def is_pairing_note(note: str) -> bool:
    """A note link_guests adds: `merge` drops the sites' and pairs the merged fleet again."""
    return note.startswith(("fleetmon_vm_of", "SMBIOS UUID ")) or (
        note.startswith("VM ") and " is claimed by " in note
    )


def swapped(uuid: str) -> str:
    """The UUID with its first three fields' bytes reversed: what a guest reads when its
    firmware wrote them little-endian (SMBIOS 2.6+) but announces an older SMBIOS, which
    the kernel reads big-endian (drivers/firmware/dmi_scan.c dmi_save_uuid), or back."""
    try:
        return str(UUID(bytes_le=UUID(uuid).bytes))
    except ValueError:  # not a UUID (a merged report's JSON says anything)
        return uuid


def _unmatched(h: HostReport, hv: str, dom: str, hosts: Sequence[HostReport]) -> str:
    """Why the guest's `fleetmon_vm_of` names no VM: its hypervisor is not in the run (a
    typo, --limit), was not collected (the VM may be there), or has no such VM."""
    seen = next((x for x in hosts if x.name == hv), None)
    if seen is None:
        return f"fleetmon_vm_of: no host {hv!r} in this run: VM {dom!r} not paired"
    if not seen.collected:
        return f"fleetmon_vm_of: {hv} was not collected ({seen.status}): VM {dom!r} not paired"
    return f"fleetmon_vm_of: no VM {h.vm_of!r} in this run"


def _claims(hosts: Sequence[HostReport]) -> tuple[dict[int, tuple[int, Row, str]], dict[int, str]]:
    """Each guest's VM (by guest index), and the notes of guests left unpaired."""
    by_uuid: dict[str, list[Found]] = {}
    by_name: dict[tuple[str, str], Found] = {}
    claims: dict[int, tuple[int, Row, str]] = {}
    notes: dict[int, str] = {}
    if not any(h.vm_of or h.product_uuid for h in hosts):
        return claims, notes  # no guest to pair (a fleet without guests: no tables)
    for i, h in enumerate(hosts):
        for row in h.rows_of("vm"):
            by_name[h.name, row.name] = (i, row)
            uuid = row.labels.get("uuid")
            if uuid:
                by_uuid.setdefault(uuid.lower(), []).append((i, row))
    for gi, h in enumerate(hosts):
        found = _target(h, hosts, by_uuid, by_name)
        if isinstance(found, str):
            notes[gi] = found
        elif found is not None and found[0] != gi:
            claims[gi] = found
            if found[2] == "inventory":  # a stale variable pairs another VM's figures
                other = _by_uuid(h, hosts, by_uuid)
                if isinstance(other, tuple) and other[1] is not found[1]:
                    notes[gi] = (
                        f"fleetmon_vm_of names VM {h.vm_of}, its SMBIOS UUID VM"
                        f" {hosts[other[0]].name}/{other[1].name}: paired as the inventory says"
                    )
    by_vm: dict[tuple[int, str], list[int]] = {}
    for gi, (hi, vm, _how) in claims.items():
        by_vm.setdefault((hi, vm.name), []).append(gi)
    for (hi, name), guests in by_vm.items():
        named = [gi for gi in guests if claims[gi][2] == "inventory"]
        kept = named or guests
        if len(kept) > 1:
            who = ", ".join(hosts[gi].name for gi in kept)
            for gi in kept:
                notes[gi] = f"VM {hosts[hi].name}/{name} is claimed by {who}: not paired"
        for gi in guests:
            if len(kept) > 1 or gi not in kept:
                del claims[gi]
    return claims, notes


def link_guests(hosts: Sequence[HostReport]) -> tuple[HostReport, ...]:
    """The hosts, each guest with its `guest` row and its VM row labelled `guest_host`."""
    claims, notes = _claims(hosts)
    out = list(hosts)
    for gi, note in notes.items():
        out[gi] = dataclasses.replace(out[gi], notes=(*out[gi].notes, note))
    back: dict[int, dict[str, str]] = {}  # hypervisor index -> VM name -> guest host
    for gi, (hi, vm, how) in claims.items():
        h, hv = hosts[gi], hosts[hi]
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
