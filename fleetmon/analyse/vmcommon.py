"""Deltas stage for virtual machines (pure): what the KVM and Xen paths share (vms.py,
xenvms.py): the VM metric names, the result of one host's VMs, the probe's meta section,
and how a failed hypervisor command is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fleetmon.analyse.hv import share
from fleetmon.model import MetricValue, Row
from fleetmon.model.catalog import HOST, VM
from fleetmon.sources import virsh
from fleetmon.sources.sections import SKIPPED, ProbeOutput

NS = 1_000_000_000
MIB = 1024 * 1024

#: Every vm.* metric of a VM that has counters, in catalogue order.
VM_METRICS = tuple(m.name for m in VM)
#: vm.* metrics a hypervisor's own tools never give: absent from its VMs' rows (not
#: offered: rules do not judge them, METRICS.md), not null (which would make every rule on
#: them UNKNOWN on every run of a mixed fleet). KVM: xentop's VBD_OO has no libvirt
#: counterpart. Xen: xentop counts no packets, drops, vCPU wait, guest memory use, swap,
#: faults or request times, and a Xen domain has no QEMU cgroup.
NOT_ON = {
    "kvm": frozenset({"vm.disk_oo_per_s"}),
    "xen": frozenset({
        "vm.vcpu_delay_pct", "vm.mem_used_pct", "vm.swap_in_bytes_per_s",
        "vm.major_faults_per_s", "vm.disk_r_await_ms", "vm.disk_w_await_ms",
        "vm.net_rx_packets_per_s", "vm.net_tx_packets_per_s", "vm.net_rx_drops_per_s",
        "vm.net_tx_drops_per_s", "vm.host_rss_bytes", "vm.host_read_bytes_per_s",
        "vm.host_write_bytes_per_s",
    }),
}  # fmt: skip
KVM_VM_METRICS = tuple(m for m in VM_METRICS if m not in NOT_ON["kvm"])
XEN_VM_METRICS = tuple(m for m in VM_METRICS if m not in NOT_ON["xen"])

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
        why = virsh.failure_reason(sec.text, sec.rc)
        # Not run: its tool timed out earlier in the run ("xl list skipped: xl timed out...").
        done = "" if why.startswith(SKIPPED) else " failed:"
        return f"{name.replace('_', ' ', 1)}{done} {why}"
    return None


def rate(delta: int | None, dt: float | None, scale: float = 1.0) -> float | None:
    return None if delta is None or not dt else delta * scale / dt


#: The KVM domstats counters of a VM's disks and NICs its rates sum (`block.N.rd.reqs`...).
KVM_DEVICE_KEYS = {
    "block": ("rd.reqs", "wr.reqs", "rd.bytes", "wr.bytes", "rd.times", "wr.times"),
    "net": ("rx.bytes", "tx.bytes", "rx.pkts", "tx.pkts", "rx.drop", "tx.drop"),
}
#: Per group, KVM_DEVICE_KEYS and each sum's name (`block.rd.reqs`), formatted once: the
#: spot sample's deltas (vms.py) and the history's counters (counters.py) name them alike.
KVM_DEVICE_SUMS = {
    group: (keys, tuple(f"{group}.{key}" for key in keys))
    for group, keys in KVM_DEVICE_KEYS.items()
}


def kvm_rates(
    d: Callable[[str], int | None], vcpus: int | None, host_cpus: int | None, dt: float | None
) -> dict[str, MetricValue]:
    """A KVM VM's vm.* rates (METRICS.md) from d(key), the Δ of its summed counters over dt
    seconds, or None: `cpu.time`, `vcpu.delay` (over its vCPUs), `balloon.swap_in` (KiB),
    `balloon.major_fault`, `block.rd.reqs`... and `net.rx.bytes`... (over its devices, see
    KVM_DEVICE_KEYS). One formula for the spot sample (vms.py) and the average over the gap
    since the last run (gap.py)."""
    cpu, delay = d("cpu.time"), d("vcpu.delay")
    rd_ns, wr_ns = d("block.rd.times"), d("block.wr.times")
    counts = list(map(d, _PER_S))
    rd_reqs, wr_reqs = counts[1], counts[2]
    # rate(Δ, dt) of each of _PER_S, in one comprehension rather than a call each.
    per_s = [None if x is None else x * 1.0 / dt for x in counts] if dt else _NO_RATES
    return {
        "vm.cpu_pct": _pct(cpu, vcpus, dt),
        "vm.cpu_host_pct": _pct(cpu, host_cpus, dt),
        "vm.vcpu_delay_pct": _pct(delay, vcpus, dt),
        # balloon.swap_in is KiB (virDomainMemoryStatTags VIR_DOMAIN_MEMORY_STAT_SWAP_IN).
        "vm.swap_in_bytes_per_s": rate(d("balloon.swap_in"), dt, 1024),
        "vm.major_faults_per_s": per_s[0],
        "vm.disk_reads_per_s": per_s[1],
        "vm.disk_writes_per_s": per_s[2],
        "vm.disk_read_bytes_per_s": per_s[3],
        "vm.disk_write_bytes_per_s": per_s[4],
        "vm.disk_r_await_ms": rd_ns / rd_reqs / 1e6 if rd_ns is not None and rd_reqs else None,
        "vm.disk_w_await_ms": wr_ns / wr_reqs / 1e6 if wr_ns is not None and wr_reqs else None,
        "vm.net_rx_bytes_per_s": per_s[5],
        "vm.net_tx_bytes_per_s": per_s[6],
        "vm.net_rx_packets_per_s": per_s[7],
        "vm.net_tx_packets_per_s": per_s[8],
        "vm.net_rx_drops_per_s": per_s[9],
        "vm.net_tx_drops_per_s": per_s[10],
    }


#: The counters kvm_rates turns into plain rates (rate(Δ, dt): Δ·1.0/dt), in its order.
_PER_S = (
    "balloon.major_fault", "block.rd.reqs", "block.wr.reqs", "block.rd.bytes",
    "block.wr.bytes", "net.rx.bytes", "net.tx.bytes", "net.rx.pkts", "net.tx.pkts",
    "net.rx.drop", "net.tx.drop",
)  # fmt: skip
_NO_RATES = [None] * len(_PER_S)


def _pct(delta: int | None, units: int | None, dt: float | None) -> float | None:
    """100·Δns/(units·10⁹·Δt): the share of `units` CPUs busy, capped at all of them."""
    return (
        None if delta is None or not units or not dt else share(100.0 * delta / (units * NS * dt))
    )
