"""The metric catalogue of ../shared/METRICS.md as data (pure): names, scopes, units.

Rules validate metric names against it, reports take labels and units from it.
"""

from __future__ import annotations

from dataclasses import dataclass

SCOPES = ("host", "disk", "nic", "fs", "vm", "fleet")


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric: its name, scope, unit and a short label."""

    name: str
    scope: str
    unit: str
    label: str


def _defs(scope: str, rows: str) -> tuple[MetricDef, ...]:
    out = []
    for line in rows.strip().splitlines():
        name, unit, label = (part.strip() for part in line.split("|"))
        out.append(MetricDef(name, scope, unit, label))
    return tuple(out)


HOST = _defs(
    "host",
    """
    cpu.count | count | CPUs
    cpu.user_pct | % | user
    cpu.nice_pct | % | nice
    cpu.system_pct | % | system
    cpu.iowait_pct | % | iowait
    cpu.irq_pct | % | irq
    cpu.softirq_pct | % | softirq
    cpu.steal_pct | % | steal
    cpu.guest_pct | % | guest
    cpu.idle_pct | % | idle
    cpu.busy_pct | % | CPU busy
    cpu.max_core_busy_pct | % | busiest core
    cpu.ctxt_per_s | /s | context switches
    cpu.intr_per_s | /s | interrupts
    cpu.forks_per_s | /s | forks
    procs.running | count | running
    procs.blocked | count | blocked
    load.1m | load | load 1m
    load.5m | load | load 5m
    load.15m | load | load 15m
    load.per_cpu | load | load/CPU
    mem.total_bytes | B | memory
    mem.available_bytes | B | available
    mem.used_pct | % | mem used
    mem.swap_used_pct | % | swap used
    mem.commit_pct | % | committed
    mem.hugepages_free_pct | % | hugepages free
    paging.swap_in_pages_per_s | pages/s | swap in
    paging.swap_out_pages_per_s | pages/s | swap out
    paging.major_faults_per_s | /s | major faults
    oom.kills | count | OOM kills
    psi.cpu_some_pct | % | PSI cpu some
    psi.memory_some_pct | % | PSI mem some
    psi.memory_full_pct | % | PSI mem full
    psi.io_some_pct | % | PSI io some
    psi.io_full_pct | % | PSI io full
    uptime_s | s | uptime
    host.rebooted | bool | rebooted
    hv.vms_running | count | VMs running
    hv.vms_total | count | VMs
    hv.vcpu_overcommit_ratio | ratio | vCPU overcommit
    hv.mem_overcommit_ratio | ratio | mem overcommit
    hv.vm_cpu_pct | % | guest CPU
    """,
)

DISK = _defs(
    "disk",
    """
    disk.reads_per_s | /s | r/s
    disk.writes_per_s | /s | w/s
    disk.read_bytes_per_s | B/s | read
    disk.write_bytes_per_s | B/s | write
    disk.r_await_ms | ms | r_await
    disk.w_await_ms | ms | w_await
    disk.queue_depth | req | aqu-sz
    disk.util_pct | % | util
    """,
)

NIC = _defs(
    "nic",
    """
    nic.rx_bytes_per_s | B/s | rx
    nic.tx_bytes_per_s | B/s | tx
    nic.rx_packets_per_s | /s | rx pkt/s
    nic.tx_packets_per_s | /s | tx pkt/s
    nic.rx_errors_per_s | /s | rx err/s
    nic.tx_errors_per_s | /s | tx err/s
    nic.rx_drops_per_s | /s | rx drop/s
    nic.tx_drops_per_s | /s | tx drop/s
    """,
)

FS = _defs(
    "fs",
    """
    fs.used_pct | % | used
    fs.inodes_used_pct | % | inodes used
    fs.free_bytes | B | free
    """,
)

VM = _defs(
    "vm",
    """
    vm.state | state | state
    vm.vcpus | count | vCPUs
    vm.cpu_pct | % | CPU
    vm.cpu_host_pct | % | host CPU
    vm.vcpu_delay_pct | % | vCPU delay
    vm.mem_max_bytes | B | mem max
    vm.mem_current_bytes | B | mem current
    vm.mem_used_pct | % | mem used
    vm.swap_in_bytes_per_s | B/s | swap in
    vm.major_faults_per_s | /s | major faults
    vm.disk_reads_per_s | /s | disk r/s
    vm.disk_writes_per_s | /s | disk w/s
    vm.disk_read_bytes_per_s | B/s | disk read
    vm.disk_write_bytes_per_s | B/s | disk write
    vm.disk_r_await_ms | ms | disk r_await
    vm.disk_w_await_ms | ms | disk w_await
    vm.net_rx_bytes_per_s | B/s | net rx
    vm.net_tx_bytes_per_s | B/s | net tx
    vm.net_rx_drops_per_s | /s | net rx drop/s
    vm.net_tx_drops_per_s | /s | net tx drop/s
    """,
)

ALL: dict[str, MetricDef] = {m.name: m for m in (*HOST, *DISK, *NIC, *FS, *VM)}

#: Statistics computed per host metric for scope `fleet` (`fleet.cpu.busy_pct.p95`).
FLEET_STATS = ("min", "median", "p95", "max", "mean", "stddev")


def scope_of(metric: str) -> str | None:
    """The scope of a metric name (`fleet.cpu.busy_pct.p95` -> fleet), or None if unknown."""
    if metric.startswith("fleet."):
        base, _, stat = metric[len("fleet.") :].rpartition(".")
        known = base in ALL and ALL[base].scope == "host" and stat in FLEET_STATS
        return "fleet" if known else None
    m = ALL.get(metric)
    return m.scope if m else None


def names() -> list[str]:
    """Every valid metric name, fleet statistics included (for typo suggestions)."""
    fleet = [f"fleet.{m.name}.{s}" for m in HOST for s in FLEET_STATS]
    return [*ALL, *fleet]
