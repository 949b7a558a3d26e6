"""The metric catalogue's metrics, scope by scope (pure): each one's name, unit, label and help,
as docs/METRICS.md lists them. catalog.py builds the row scopes and tables on these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric: its name, scope, unit, a short label and what it measures."""

    name: str
    scope: str
    unit: str
    label: str
    help: str = ""  # what it measures, in a phrase (the exports' HELP); "": the label says it


def _defs(scope: str, rows: str) -> tuple[MetricDef, ...]:
    out = []
    for line in rows.strip().splitlines():
        name, unit, label, *help_ = (part.strip() for part in line.split("|", 3))
        out.append(MetricDef(name, scope, unit, label, *help_))
    return tuple(out)


HOST = _defs(
    "host",
    """
    cpu.count | count | CPUs | CPUs online (cpuN lines of /proc/stat)
    cpu.user_pct | % | user | CPU time in user mode, guests excluded
    cpu.nice_pct | % | nice | CPU time in niced user mode, guests excluded
    cpu.system_pct | % | system | CPU time in kernel mode
    cpu.iowait_pct | % | iowait | CPU time idle with I/O outstanding
    cpu.irq_pct | % | irq | CPU time serving hardware interrupts
    cpu.softirq_pct | % | softirq | CPU time serving softirqs
    cpu.steal_pct | % | steal | CPU time stolen by the hypervisor
    cpu.guest_pct | % | guest | CPU time running guests
    cpu.idle_pct | % | idle | CPU time idle
    cpu.busy_pct | % | CPU busy | CPU time busy (not idle, not iowait)
    cpu.max_core_busy_pct | % | busiest core | the busiest CPU's busy time
    cpu.ctxt_per_s | /s | context switches | context switches per second
    cpu.intr_per_s | /s | interrupts | interrupts per second
    cpu.forks_per_s | /s | forks | processes created per second
    procs.running | count | running | runnable tasks
    procs.blocked | count | blocked | tasks blocked on I/O
    load.1m | load | load 1m | load average over 1 minute
    load.5m | load | load 5m | load average over 5 minutes
    load.15m | load | load 15m | load average over 15 minutes
    load.per_cpu | load | load/CPU | 1-minute load average per CPU
    mem.total_bytes | B | memory | memory in all (MemTotal)
    mem.available_bytes | B | available | memory available without swapping
    mem.used_pct | % | mem used | memory not available
    mem.swap_used_pct | % | swap used | swap used
    mem.commit_pct | % | committed | memory committed, of memory + swap
    mem.hugepages_free_pct | % | hugepages free | huge pages free
    paging.swap_in_pages_per_s | pages/s | swap in | pages swapped in per second
    paging.swap_out_pages_per_s | pages/s | swap out | pages swapped out per second
    paging.major_faults_per_s | /s | major faults | major page faults per second
    oom.kills | count | OOM kills | OOM kills between the samples
    psi.cpu_some_pct | % | PSI cpu some | time some tasks waited for CPU
    psi.memory_some_pct | % | PSI mem some | time some tasks waited for memory
    psi.memory_full_pct | % | PSI mem full | time all tasks waited for memory
    psi.io_some_pct | % | PSI io some | time some tasks waited for I/O
    psi.io_full_pct | % | PSI io full | time all tasks waited for I/O
    uptime_s | s | uptime | time since boot
    host.rebooted | bool | rebooted | rebooted between the samples
    hv.vms_running | count | VMs running | VMs running
    hv.vms_total | count | VMs | VMs defined
    hv.vcpu_overcommit_ratio | ratio | vCPU overcommit | vCPUs of running VMs per CPU
    hv.mem_overcommit_ratio | ratio | mem overcommit | running VMs' memory per host memory
    hv.vm_cpu_pct | % | guest CPU | host CPU used by all VMs
    """,
)

DISK = _defs(
    "disk",
    """
    disk.reads_per_s | /s | r/s | reads completed per second
    disk.writes_per_s | /s | w/s | writes completed per second
    disk.read_bytes_per_s | B/s | read | bytes read per second
    disk.write_bytes_per_s | B/s | write | bytes written per second
    disk.r_await_ms | ms | r_await | average time of a read
    disk.w_await_ms | ms | w_await | average time of a write
    disk.queue_depth | req | aqu-sz | average requests queued
    disk.util_pct | % | util | time the device was busy
    """,
)

NIC = _defs(
    "nic",
    """
    nic.rx_bytes_per_s | B/s | rx | bytes received per second
    nic.tx_bytes_per_s | B/s | tx | bytes sent per second
    nic.rx_packets_per_s | /s | rx pkt/s | packets received per second
    nic.tx_packets_per_s | /s | tx pkt/s | packets sent per second
    nic.rx_errors_per_s | /s | rx err/s | receive errors per second
    nic.tx_errors_per_s | /s | tx err/s | send errors per second
    nic.rx_drops_per_s | /s | rx drop/s | received packets dropped per second
    nic.tx_drops_per_s | /s | tx drop/s | packets to send dropped per second
    """,
)

FS = _defs(
    "fs",
    """
    fs.used_pct | % | used | space used, as df rounds it
    fs.inodes_used_pct | % | inodes used | inodes used
    fs.free_bytes | B | free | space available to users
    """,
)

VM = _defs(
    "vm",
    """
    vm.state | state | state | domain state: running, paused, shutoff...
    vm.vcpus | count | vCPUs | vCPUs of the domain
    vm.cpu_pct | % | CPU per vCPU | CPU used, of all its vCPUs
    vm.cpu_host_pct | % | CPU of the host | CPU per host CPU (virt-top)
    vm.vcpu_delay_pct | % | vCPU delay | vCPUs waiting for a host CPU
    vm.mem_max_bytes | B | mem max | maximum memory (balloon)
    vm.mem_current_bytes | B | mem current | memory now (balloon)
    vm.mem_used_pct | % | mem used | memory used, as the guest says
    vm.swap_in_bytes_per_s | B/s | swap in | bytes swapped in per second
    vm.major_faults_per_s | /s | major faults | major page faults per second
    vm.disk_reads_per_s | /s | disk r/s | reads per second, all disks
    vm.disk_writes_per_s | /s | disk w/s | writes per second, all disks
    vm.disk_read_bytes_per_s | B/s | disk read | bytes read per second, all disks
    vm.disk_write_bytes_per_s | B/s | disk write | bytes written per second, all disks
    vm.disk_r_await_ms | ms | disk r_await | average time of a read
    vm.disk_w_await_ms | ms | disk w_await | average time of a write
    vm.disk_oo_per_s | /s | disk OO/s | times per second its block backend ran out of requests
    vm.net_rx_bytes_per_s | B/s | net rx | bytes received per second, all NICs
    vm.net_tx_bytes_per_s | B/s | net tx | bytes sent per second, all NICs
    vm.net_rx_packets_per_s | /s | net rx pkt/s | packets received per second, all NICs
    vm.net_tx_packets_per_s | /s | net tx pkt/s | packets sent per second, all NICs
    vm.net_rx_drops_per_s | /s | net rx drop/s | received packets dropped per second
    vm.net_tx_drops_per_s | /s | net tx drop/s | packets to send dropped per second
    vm.host_rss_bytes | B | host RSS | resident memory of its QEMU process on the host
    vm.host_read_bytes_per_s | B/s | host read | bytes its QEMU process read per second
    vm.host_write_bytes_per_s | B/s | host write | bytes its QEMU process wrote per second
    """,
)

CTR = _defs(
    "ctr",
    """
    ctr.cpu_pct | % | CPU | CPU used, 100% being one CPU (podman stats)
    ctr.cpu_host_pct | % | host CPU | CPU used, of all the host's CPUs
    ctr.cpu_throttled_pct | % | throttled | time throttled by its CPU limit
    ctr.mem_bytes | B | memory | working set (usage less inactive file)
    ctr.mem_limit_bytes | B | mem limit | its memory limit
    ctr.mem_limit_pct | % | of limit | memory used, of its limit
    ctr.mem_anon_bytes | B | anon | anonymous memory
    ctr.mem_file_bytes | B | file cache | page cache
    ctr.oom_kills | count | OOM kills | processes OOM-killed since the cgroup was created
    ctr.disk_read_bytes_per_s | B/s | disk read | bytes read per second
    ctr.disk_write_bytes_per_s | B/s | disk write | bytes written per second
    ctr.psi_cpu_some_pct | % | PSI cpu some | time some of its tasks waited for CPU (avg10)
    ctr.psi_memory_some_pct | % | PSI mem some | time some of its tasks waited for memory (avg10)
    ctr.psi_memory_full_pct | % | PSI mem full | time all its tasks waited for memory (avg10)
    ctr.psi_io_some_pct | % | PSI io some | time some of its tasks waited for I/O (avg10)
    ctr.psi_io_full_pct | % | PSI io full | time all its tasks waited for I/O (avg10)
    ctr.pids | count | pids | tasks in its cgroup
    ctr.state | state | state | running, or paused (its cgroup frozen: podman/docker pause)
    """,
)

GUEST = _defs(
    "guest",
    """
    guest.steal_pct | % | steal (guest) | steal the guest reports
    guest.vcpu_delay_pct | % | vCPU delay (host) | vCPU delay the host measures for it
    guest.busy_pct | % | CPU busy (guest) | CPU busy as the guest sees it
    guest.vm_cpu_pct | % | vCPU busy (host) | vCPU busy as the host sees it
    guest.mem_available_bytes | B | available (guest) | memory available as the guest sees it
    guest.mem_total_bytes | B | memory (guest) | memory as the guest sees it
    guest.balloon_bytes | B | balloon (host) | balloon size as the host sees it
    guest.host_rss_bytes | B | QEMU RSS (host) | resident memory of its QEMU process
    """,
)

ALL: dict[str, MetricDef] = {m.name: m for m in (*HOST, *DISK, *NIC, *FS, *VM, *CTR, *GUEST)}
