"""Simulator (edge): the probe's `virt` section, what a simulated host runs on.

KVM and Xen hypervisors are servers (a vendor's DMI; a Xen dom0 has /proc/xen with
`control_d`); a plain Linux host is a server, a KVM guest (QEMU's Q35 machine, kvm-clock) or
now and then a VMware guest, drawn from the host's own seed; a `--guests` host is the KVM
guest it plays, and a host with steal time is a guest (bare metal has none to steal). The
lines are what sources/virt.py's COMMAND prints; the DMI strings are those real machines
give (SMBIOS sys_vendor / product_name). Once per run: cached per profile.
"""

from __future__ import annotations

import functools
import random

from fleetmon.sim.hosts import HostProfile
from fleetmon.sources.virt import CLOCKSOURCES, DMI

#: Servers: (sys_vendor, product_name, board_vendor, bios_vendor).
SERVERS: tuple[tuple[str, str, str, str], ...] = (
    ("Dell Inc.", "PowerEdge R640", "Dell Inc.", "Dell Inc."),
    ("Dell Inc.", "PowerEdge R740", "Dell Inc.", "Dell Inc."),
    ("Dell Inc.", "PowerEdge R650", "Dell Inc.", "Dell Inc."),
    ("HPE", "ProLiant DL380 Gen10", "HPE", "HPE"),
    ("HPE", "ProLiant DL360 Gen10", "HPE", "HPE"),
    ("Supermicro", "SYS-2029P-C1R", "Supermicro", "American Megatrends Inc."),
    ("Lenovo", "ThinkSystem SR650 -[7X06CTO1WW]-", "Lenovo", "Lenovo"),
)
#: A KVM guest's DMI as QEMU gives it (`-machine q35`): (sys_vendor, product_name,
#: bios_vendor, product_version).
KVM_GUEST = ("QEMU", "Standard PC (Q35 + ICH9, 2009)", "SeaBIOS", "pc-q35-7.2")
#: A VMware guest's (hardware version 14+): sys_vendor, product_name, bios_vendor.
VMWARE_GUEST = ("VMware, Inc.", "VMware7,1", "VMware, Inc.")
_KERNELS = ("5.15.0-91-generic", "6.1.0-18-amd64", "5.14.0-362.8.1.el9_3.x86_64")
_DOM0_KERNEL = "6.1.0-18-amd64"
_METAL_CLOCKS = "tsc hpet acpi_pm "
#: Of the plain Linux hosts without steal: bare metal, KVM guests, VMware guests.
LINUX_WEIGHTS = (("metal", 45), ("kvm", 45), ("vmware", 10))


def platform(host: HostProfile) -> str:
    """What the host runs on: "kvm-host", "xen-dom0", "metal", "kvm" (a KVM guest) or
    "vmware" (a VMware guest), deterministic from its profile."""
    if host.kind == "kvm":
        return "kvm-host"
    if host.kind == "xen":
        return "xen-dom0"
    if host.guest_of:
        return "kvm"  # the guest of a simulated KVM host's VM (sim/guests.py)
    rng = random.Random(f"fleetmon-sim-virt:{host.boot_id}")
    drawn = rng.choices([n for n, _ in LINUX_WEIGHTS], [w for _, w in LINUX_WEIGHTS])[0]
    return "kvm" if drawn == "metal" and host.steal_share > 0 else drawn


def _dmi(**files: str) -> list[str]:
    """The probe's `path=line` lines of DMI files, in the order given."""
    return [f"{DMI}{name}={value}" for name, value in files.items()]


@functools.lru_cache(maxsize=100_000)
def render_virt(host: HostProfile) -> str:
    """The `virt` section of the host, as the probe's COMMAND prints it."""
    rng = random.Random(f"fleetmon-sim-virt:{host.boot_id}:dmi")
    kind = platform(host)
    lines: list[str] = []
    if kind in ("kvm-host", "xen-dom0", "metal"):
        vendor, product, board, bios = rng.choice(SERVERS)
        lines += _dmi(product_name=product, sys_vendor=vendor, board_vendor=board,
                      bios_vendor=bios)  # fmt: skip
    elif kind == "kvm":
        vendor, product, bios, version = KVM_GUEST
        lines += _dmi(product_name=product, sys_vendor=vendor, bios_vendor=bios,
                      product_version=version)  # fmt: skip
    else:
        vendor, product, bios = VMWARE_GUEST
        lines += _dmi(product_name=product, sys_vendor=vendor, board_vendor="Intel Corporation",
                      bios_vendor=bios)  # fmt: skip
    if kind == "xen-dom0":
        lines += ["/sys/hypervisor/type=xen", "/proc/xen/capabilities=control_d"]
    kernel = _DOM0_KERNEL if kind == "xen-dom0" else rng.choice(_KERNELS)
    lines.append(f"/proc/sys/kernel/osrelease={kernel}")
    # A dom0 keeps time by Xen's clock; a KVM guest by kvm-clock (registered under KVM's
    # CPUID signature only); VMware's guest and bare metal by the TSC.
    clocks = {"xen-dom0": "xen tsc hpet acpi_pm ", "kvm": "kvm-clock tsc acpi_pm "}
    lines.append(f"{CLOCKSOURCES}={clocks.get(kind, _METAL_CLOCKS)}")
    if kind == "xen-dom0":
        lines.append("/proc/xen")
    lines.append("/proc/1/cgroup=0::/init.scope")
    if kind in ("xen-dom0", "kvm", "vmware"):  # CPUID's hypervisor bit: dom0 runs on Xen
        lines.append("cpuinfo:hypervisor")
    return "\n".join(lines) + "\n"
