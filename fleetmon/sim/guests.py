"""`fleetmon simulate --guests N`: Linux hosts of the fleet that are guests of its KVM VMs.

A guest seen from both sides (analyse/guests.py) is matched by the domain UUID that QEMU
gives the guest as its SMBIOS system UUID: here each chosen Linux host answers the probe's
`product_uuid` with the UUID its VM has in `virsh list --uuid` (render.vm_uuid), and its
own /proc tells what the VM's profile tells the hypervisor: as many CPUs and as much memory
as the VM has, busy at the VM's share, and steal at the VM's vCPU delay (a vCPU that waits
for a host CPU is stolen time seen from inside).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import chain, zip_longest

from fleetmon.errors import OptionError
from fleetmon.sim.hosts import HostProfile, VmProfile


def with_guests(hosts: Sequence[HostProfile], count: int) -> tuple[HostProfile, ...]:
    """The fleet with `count` of its Linux hosts made guests of running VMs of its KVM hosts
    (the first Linux hosts that answer, paired with VMs taken from each answering KVM host
    in turn); OptionError when the fleet has fewer of either."""
    if count <= 0:
        return tuple(hosts)
    linux = [h for h in hosts if h.kind == "linux" and h.fault is None]
    # One VM of each KVM host, then a second of each...: the guests spread over hypervisors.
    # Hypervisors that answer: a guest's pair needs both sides collected.
    per_host = [
        [vm for vm in h.vms if vm.running] for h in hosts if h.kind == "kvm" and h.fault is None
    ]
    vms = [vm for vm in chain.from_iterable(zip_longest(*per_host)) if vm is not None]
    if count > min(len(linux), len(vms)):
        raise OptionError(
            f"--guests {count}: the fleet has {len(linux)} Linux hosts that answer and"
            f" {len(vms)} running VMs on KVM hosts that answer (--kind mixed gives both)"
        )
    guest_of = {h.index: vm for h, vm in zip(linux[:count], vms, strict=False)}
    return tuple(_as_guest(h, guest_of[h.index]) if h.index in guest_of else h for h in hosts)


def _as_guest(host: HostProfile, vm: VmProfile) -> HostProfile:
    return dataclasses.replace(
        host,
        guest_of=vm.name,
        cpus=vm.vcpus,
        mem_kib=vm.mem_kib,
        busy_share=vm.cpu_share,
        steal_share=vm.delay_share,
        mem_used_frac=vm.mem_used_frac,
    )
