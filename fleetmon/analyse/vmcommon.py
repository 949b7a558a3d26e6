"""Deltas stage for virtual machines (pure): what the KVM and Xen paths share (vms.py,
xenvms.py): the VM metric names, the result of one host's VMs, the probe's meta section,
and how a failed hypervisor command is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetmon.model import MetricValue, Row
from fleetmon.model.catalog import HOST, VM
from fleetmon.sources import virsh
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


def not_reported(hv: str, reason: str) -> VmResult:
    """A hypervisor whose VMs could not be listed: hv.* null, and why."""
    return VmResult(
        hypervisor=hv, hv_metrics=dict.fromkeys(HV_METRICS), notes=(f"VMs not reported: {reason}",)
    )


def failed(out: ProbeOutput, sample: int, name: str) -> str | None:
    sec = out.get(sample, name)
    if sec is None:
        return f"no {name} section in the probe output"
    if sec.rc != 0:
        return f"{name.replace('_', ' ', 1)} failed: {virsh.failure_reason(sec.text, sec.rc)}"
    return None


def rate(delta: int | None, dt: float | None, scale: float = 1.0) -> float | None:
    return None if delta is None or not dt else delta * scale / dt
