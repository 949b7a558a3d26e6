"""Model: what a host runs on, as systemd-detect-virt and Ansible's virtualization facts say it
(pure): the platform's id and the host's role, and the words the reports show."""

from __future__ import annotations

from dataclasses import dataclass

#: systemd-detect-virt's container ids (src/basic/virt.c container_table, plus openvz and
#: container-other): a host whose type is one of these is a container, not a VM.
CONTAINER_TYPES = frozenset(
    ("openvz", "lxc", "lxc-libvirt", "systemd-nspawn", "docker", "podman", "rkt", "wsl",
     "proot", "pouch", "container-other")
)  # fmt: skip
#: The roles (Ansible's `ansible_virtualization_role`, with none for bare metal).
ROLES = ("guest", "host", "none")

#: How a VM platform's id reads where it is not self-explanatory.
_LABELS = {
    "microsoft": "microsoft (hyper-v)",
    "oracle": "oracle (virtualbox)",
    "vm-other": "unidentified hypervisor's",
}


@dataclass(frozen=True, slots=True)
class Virt:
    """A host's virtualization: `type` is systemd-detect-virt's id (kvm, qemu, xen, vmware,
    microsoft, podman, docker, lxc... or none), `role` guest, host or none; `product` the
    machine's DMI vendor and product name as the host gives them (text from the host:
    escaped wherever shown), None where it has no DMI."""

    type: str
    role: str
    product: str | None = None

    @property
    def container(self) -> bool:
        return self.type in CONTAINER_TYPES

    def words(self, hypervisor: str = "none") -> str:
        """The platform in words: "kvm guest", "xen guest (domU)", "container: podman",
        "kvm host", "xen host (dom0)", "none"; a guest that is a hypervisor too (nested)
        says both ("kvm guest, kvm host")."""
        if self.role == "none" or self.type == "none":
            return "none"
        if self.role == "host":
            return f"{self.type} host" + (" (dom0)" if self.type == "xen" else "")
        if self.container:
            text = f"container: {self.type}"
        else:
            label = _LABELS.get(self.type, self.type)
            text = f"{label} guest" + (" (domU)" if self.type == "xen" else "")
        if hypervisor in ("kvm", "xen"):
            text += f", {hypervisor} host"
        return text
