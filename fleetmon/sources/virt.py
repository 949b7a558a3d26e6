"""Parse stage: the `virt` section, what the host runs on (a VM, a container, bare metal), read
without root from the files systemd-detect-virt and Ansible's virtualization facts read (pure).

The decision follows systemd's src/basic/virt.c (detect_virtualization: the container first,
then the VM; github.com/systemd/systemd @ 0099e5589762) with Ansible's
lib/ansible/module_utils/facts/virtual/linux.py (github.com/ansible/ansible @ 1172cd8a380b)
where systemd needs what a shell cannot read unprivileged (CPUID, PID 1's environment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetmon.model.virt import Virt

DMI = "/sys/class/dmi/id/"
CLOCKSOURCES = "/sys/devices/system/clocksource/clocksource0/available_clocksource"
#: Files whose first line the probe prints as `path=line`, where readable. The DMI strings
#: are world-readable (0444; product_uuid and the serials are root's). The features and
#: the clock sources stand in for CPUID, which a shell cannot ask.
READ_FILES = (
    DMI + "product_name",
    DMI + "sys_vendor",
    DMI + "board_vendor",
    DMI + "bios_vendor",
    DMI + "product_version",
    "/sys/hypervisor/type",
    "/sys/hypervisor/properties/features",
    "/proc/xen/capabilities",
    "/run/host/container-manager",
    "/run/systemd/container",
    "/proc/sys/kernel/osrelease",
    CLOCKSOURCES,
)
#: Paths whose mere existence the probe prints, as the path alone on its line.
EXIST_FILES = ("/proc/xen", "/proc/vz", "/proc/bc", "/run/.containerenv", "/.dockerenv")
#: The line the probe prints when /proc/cpuinfo's flags have `hypervisor` (CPUID leaf 1,
#: ECX bit 31: some hypervisor is there, not which).
CPU_HYPERVISOR = "cpuinfo:hypervisor"
#: /proc/1/cgroup is world-readable, where /proc/1/environ (`container=`) is root's.
_PID1_CGROUP = "/proc/1/cgroup"

#: The probe's command: shell builtins but for one grep (once per run, ~1 ms).
COMMAND = (
    f"for f in {' '.join(READ_FILES)}; do [ -r $f ] &&"
    " { _v=; IFS= read -r _v <$f 2>/dev/null; printf '%s=%s\\n' $f \"$_v\"; }; done;"
    f" for f in {' '.join(EXIST_FILES)}; do [ -e $f ] && echo $f; done;"
    f" [ -r {_PID1_CGROUP} ] && while IFS= read -r _v; do"
    f" printf '{_PID1_CGROUP}=%s\\n' \"$_v\"; done <{_PID1_CGROUP};"
    " grep -Eqs '^flags[[:space:]]*:(.* )?hypervisor( |$)' /proc/cpuinfo"
    f" && echo {CPU_HYPERVISOR}; true"
)


@dataclass(frozen=True, slots=True)
class VirtFacts:
    """What the probe read: first lines by path (stripped), the paths that exist, and PID 1's
    cgroup lines."""

    files: Mapping[str, str] = field(default_factory=dict)
    exists: frozenset[str] = frozenset()
    pid1_cgroup: tuple[str, ...] = ()


def parse_virt(text: str) -> VirtFacts:
    """The `virt` section as VirtFacts; lines it does not know are passed over."""
    files: dict[str, str] = {}
    exists: set[str] = set()
    cgroup: list[str] = []
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if not eq:
            if line in EXIST_FILES or line == CPU_HYPERVISOR:
                exists.add(line)
        elif key == _PID1_CGROUP:
            cgroup.append(value)
        elif key in READ_FILES:
            files[key] = value.strip()
    return VirtFacts(files, frozenset(exists), tuple(cgroup))


#: virt.c container_table: the names a container manager gives in `container=`.
_CONTAINER_NAMES = frozenset(
    ("lxc", "lxc-libvirt", "systemd-nspawn", "docker", "podman", "rkt", "wsl", "proot", "pouch")
)
#: Ansible's /proc/1/cgroup patterns (cgroup v1: a cgroup v2 container sees `0::/`).
_DOCKER_CG = re.compile(r"/docker(/|-[0-9a-f]+\.scope)")
_LXC_CG = re.compile(r"/lxc/|/machine\.slice/machine-lxc")


def detect_container(f: VirtFacts) -> str:
    """virt.c detect_container's order, on what can be read without root: OpenVZ (/proc/vz
    without /proc/bc), WSL (osrelease), /run/host/container-manager, /run/systemd/container
    (PID 1's `container=`, which systemd writes there), then Ansible's /proc/1/cgroup, then
    the files podman and docker leave (/run/.containerenv, /.dockerenv); or none."""
    if "/proc/vz" in f.exists and "/proc/bc" not in f.exists:
        return "openvz"
    release = f.files.get("/proc/sys/kernel/osrelease", "")
    if "Microsoft" in release or "WSL" in release:
        return "wsl"
    name = f.files.get("/run/host/container-manager") or f.files.get("/run/systemd/container")
    if name:
        if name == "oci":  # not a manager (virt.c): its files may say which
            return _container_files(f) or "container-other"
        return name if name in _CONTAINER_NAMES else "container-other"
    for line in f.pid1_cgroup:
        if _DOCKER_CG.search(line):
            return "docker"
        if _LXC_CG.search(line):
            return "lxc"
    return _container_files(f) or "none"


def _container_files(f: VirtFacts) -> str | None:
    # virt.c container_file_table: podman's first (it may leave /.dockerenv too).
    if "/run/.containerenv" in f.exists:
        return "podman"
    return "docker" if "/.dockerenv" in f.exists else None


#: virt.c dmi_vendor_table: a prefix of a DMI string, in this order.
_DMI_VENDORS: tuple[tuple[str, str], ...] = (
    ("KVM", "kvm"), ("OpenStack", "kvm"), ("KubeVirt", "kvm"), ("Amazon EC2", "amazon"),
    ("QEMU", "qemu"), ("VMware", "vmware"), ("VMW", "vmware"), ("innotek GmbH", "oracle"),
    ("VirtualBox", "oracle"), ("Oracle Corporation", "oracle"), ("Xen", "xen"),
    ("Bochs", "bochs"), ("Parallels", "parallels"), ("BHYVE", "bhyve"),
    ("Hyper-V", "microsoft"), ("Apple Virtualization", "apple"),
    ("Google Compute Engine", "google"),
)  # fmt: skip
#: virt.c detect_vm_dmi_vendor's files, in its order (product_name before sys_vendor: KVM
#: is told from QEMU by it; product_version for Hyper-V).
_DMI_ORDER = ("product_name", "sys_vendor", "board_vendor", "bios_vendor", "product_version")
#: DMI answers that win over CPUID (virt.c detect_vm: they run on KVM, or Xen cloaked).
_DMI_FIRST = frozenset(("oracle", "xen", "amazon", "parallels", "google"))
#: Xen's XENFEAT_dom0 (xen/include/public/features.h), in /sys/hypervisor/properties/features.
_XENFEAT_DOM0 = 11


def _dmi(f: VirtFacts) -> str:
    """virt.c detect_vm_dmi; its SMBIOS "is a VM" bit is root's, so an Amazon EC2 DMI is a
    metal instance only by a `.metal` product name, as virt.c falls back to."""
    for name in _DMI_ORDER:
        value = f.files.get(DMI + name)
        if value is None:
            continue
        found = next((t for p, t in _DMI_VENDORS if value.startswith(p)), None)
        if found == "amazon":
            product = f.files.get(DMI + "product_name", "")
            return "none" if re.search(r"\.metal(-|$)", product) else "amazon"
        if found:
            return found
    # Hyper-V's DMI (virt-what, cited by Ansible): Microsoft's vendor is also a Surface's, so
    # only with its product name. systemd tells it by CPUID ("Microsoft Hv").
    if (
        f.files.get(DMI + "sys_vendor") == "Microsoft Corporation"
        and f.files.get(DMI + "product_name") == "Virtual Machine"
    ):
        return "microsoft"
    return "none"


def _xen_dom0(f: VirtFacts) -> bool:
    """virt.c detect_vm_xen_dom0: XENFEAT_dom0 in the features, else control_d in
    /proc/xen/capabilities (Ansible's test)."""
    features = f.files.get("/sys/hypervisor/properties/features")
    if features:
        try:
            return bool(int(features, 16) >> _XENFEAT_DOM0 & 1)
        except ValueError:
            pass
    caps = f.files.get("/proc/xen/capabilities", "")
    return "control_d" in caps.split(",")


def _cpuid(f: VirtFacts) -> str:
    """What virt.c's CPUID step would find, from what the kernel shows of it: the kvm-clock
    clock source registers only under KVM's CPUID signature (kvm_para_available), Xen's and
    Hyper-V's under theirs; the `hypervisor` flag alone says some hypervisor (vm-other)."""
    sources = f.files.get(CLOCKSOURCES, "").split()
    if "kvm-clock" in sources:
        return "kvm"
    if "xen" in sources:
        return "xen"
    if "hyperv_clocksource_tsc_page" in sources or "hyperv_clocksource_msr" in sources:
        return "microsoft"
    return "vm-other" if CPU_HYPERVISOR in f.exists else "none"


def detect_vm(f: VirtFacts) -> tuple[str, bool]:
    """virt.c detect_vm's order: the VM platform (or none) and whether this is Xen's dom0."""
    dmi = _dmi(f)
    if dmi in _DMI_FIRST:
        return dmi, False
    # virt.c asks /proc/xen (xenfs's mount point); /sys/hypervisor/type says Xen too where
    # xenfs is not loaded, and a dom0 must not read as a guest of itself.
    if "/proc/xen" in f.exists or f.files.get("/sys/hypervisor/type") == "xen":
        if not _xen_dom0(f):
            return "xen", False
        return "xen", True  # virt.c goes on to CPUID for a dom0 nested in another VM
    cpuid = _cpuid(f)
    # QEMU can show Hyper-V's enlightenments: Microsoft only when nothing else says more.
    if cpuid not in ("none", "vm-other", "microsoft"):
        return cpuid, False
    if dmi != "none":
        return dmi, False
    hv = f.files.get("/sys/hypervisor/type")
    if hv:
        return ("xen" if hv == "xen" else "vm-other"), False
    return cpuid, False


def dmi_product(f: VirtFacts) -> str | None:
    """The DMI vendor and product name, as Ansible's `system_vendor` and `product_name`
    facts read them; None without DMI (a container's host may show its own)."""
    parts = [f.files.get(DMI + n, "") for n in ("sys_vendor", "product_name")]
    return " ".join(p for p in parts if p) or None


def detect_virt(f: VirtFacts, hypervisor: str = "none") -> Virt:
    """The host's Virt: a container, else a VM guest, else a hypervisor host (Xen's dom0,
    or `hypervisor` kvm/xen: what the probe found), else none (bare metal)."""
    product = dmi_product(f)
    container = detect_container(f)
    if container != "none":
        return Virt(container, "guest", product)
    vm, dom0 = detect_vm(f)
    if dom0:
        return Virt("xen", "host", product)
    if vm != "none":
        return Virt(vm, "guest", product)
    if hypervisor in ("kvm", "xen"):
        return Virt(hypervisor, "host", product)
    return Virt("none", "none", product)
