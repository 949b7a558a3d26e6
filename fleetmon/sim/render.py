"""Simulator (edge): one host's files and command output at a given uptime.

Counters are functions of the host's uptime (or a VM's age), so the rates between two
samples are exactly the profile's, whatever the real time between them: the collector's
deltas measure what the profile says.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from dataclasses import dataclass

from fleetmon.sim.captures import SYSSTAT_UPTIME_S, Captures, Domain
from fleetmon.sim.hosts import HostProfile, VmProfile

#: USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture we meet.
HZ = 100

_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_VM_COUNTER_RE = re.compile(
    r"^(net\.\d+\.(rx|tx)\.|block\.\d+\.(rd|wr|fl)\."
    r"|balloon\.(swap_in|swap_out|major_fault|minor_fault)$)"
)


@dataclass(frozen=True, slots=True)
class Moment:
    """When a sample is taken: the host's uptime, the wall clock, time since the start."""

    since_start_s: float
    epoch_s: float

    def uptime(self, host: HostProfile) -> float:
        return host.uptime_at_start_s + self.since_start_s


def guest_cores(host: HostProfile) -> float:
    """CPUs' worth of time the running guests use (KVM: it shows as host user+guest time)."""
    if host.kind != "kvm":
        return 0.0
    return sum(vm.cpu_share * vm.vcpus for vm in host.vms if vm.running)


@functools.lru_cache(maxsize=100_000)
def cpu_shares(host: HostProfile) -> dict[str, float]:
    """Each /proc/stat column as a share of all CPU time (user includes guest, as in Linux)."""
    guest = min(guest_cores(host) / host.cpus, 0.9)
    busy = host.busy_share
    shares = {
        "user": busy * 0.6 + guest,
        "nice": busy * 0.02,
        "system": busy * 0.3 + guest * 0.05,
        "iowait": host.iowait_share,
        "irq": busy * 0.03,
        "softirq": busy * 0.05,
        "steal": host.steal_share,
        "guest": guest,
    }
    used = sum(v for k, v in shares.items() if k != "guest")
    if used > 0.97:  # keep a little idle time: no CPU is busier than 100 %
        shares = {k: v * 0.97 / used for k, v in shares.items()}
        used = 0.97
    shares["idle"] = 1.0 - used
    return shares


@functools.lru_cache(maxsize=100_000)
def _core_factors(cpus: int) -> list[float]:
    # Spread the load unevenly (one core busiest) but with a mean of 1 across the cores.
    raw = [1.0 + 0.6 * ((k * 7) % 11 - 5) / 10 for k in range(cpus)]
    mean = sum(raw) / cpus
    return [r / mean for r in raw]


def render_stat(cap: Captures, host: HostProfile, at: Moment) -> str:
    """/proc/stat: cpu lines from the profile, the other lines advanced from sysstat's."""
    t = at.uptime(host)
    shares = cpu_shares(host)
    rows = []
    for f in _core_factors(host.cpus):
        busy_j = min((1.0 - shares["idle"]) * f, 0.99)
        scale = busy_j / (1.0 - shares["idle"]) if shares["idle"] < 1 else 0.0
        row = [int(HZ * t * shares[c] * scale) for c in _CPU_FIELDS if c != "idle"]
        row.insert(3, int(HZ * t * (1.0 - busy_j)))
        guest = int(HZ * t * shares["guest"] * scale)
        rows.append([*row, min(guest, row[0]), 0])
    total = [sum(col) for col in zip(*rows, strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{j} " + " ".join(map(str, r)) for j, r in enumerate(rows)]
    rest = cap.stat.render(host.activity, t - SYSSTAT_UPTIME_S)
    btime = int(at.epoch_s - t)
    running = max(1, round(host.cpus * (1 - shares["idle"])))
    rest = re.sub(r"^btime \d+$", f"btime {btime}", rest, flags=re.M)
    procs = f"procs_running {running}\nprocs_blocked {int(host.iowait_share * host.cpus)}\n"
    rest = rest.replace("softirq ", procs + "softirq ", 1)
    return "\n".join(lines) + "\n" + rest


@functools.lru_cache(maxsize=100_000)
def render_meminfo(cap: Captures, host: HostProfile) -> str:
    """/proc/meminfo: sysstat's, every kB value scaled to the host's size, usage set."""
    lines = cap.meminfo.splitlines()
    total0 = int(lines[0].split()[1])
    factor = host.mem_kib / total0
    avail = int(host.mem_kib * (1 - host.mem_used_frac))
    fixed = {
        "MemTotal:": host.mem_kib,
        "MemAvailable:": avail,
        "MemFree:": avail // 4,
        "Cached:": avail // 2,
    }
    out = []
    for line in lines:
        m = re.match(r"^(\S+:)(\s+)(\d+)(.*)$", line)
        if m is None or m.group(4).strip() != "kB":
            out.append(line)
            continue
        value = fixed.get(m.group(1), int(int(m.group(3)) * factor))
        width = len(m.group(2)) + len(m.group(3))
        out.append(
            f"{m.group(1)}{value:>{width}}{m.group(4)}"
            if len(str(value)) < width
            else f"{m.group(1)} {value}{m.group(4)}"
        )
    return "\n".join(out) + "\n"


def render_loadavg(host: HostProfile, at: Moment) -> str:
    """/proc/loadavg from the host's busy CPUs."""
    busy = host.cpus * (1 - cpu_shares(host)["idle"]) + host.iowait_share * host.cpus
    running = max(1, round(busy))
    total = 250 + 12 * len(host.vms) + host.index % 50
    last_pid = 1000 + int(at.uptime(host) * 3) % 4_000_000
    return f"{busy * 1.02:.2f} {busy * 0.97:.2f} {busy * 0.95:.2f} {running}/{total} {last_pid}\n"


def render_uptime(host: HostProfile, at: Moment) -> str:
    t = at.uptime(host)
    return f"{t:.2f} {t * host.cpus * cpu_shares(host)['idle']:.2f}\n"


def _vm_counter(cap: Captures, vm: VmProfile, v1: str, v2: str, t_vm: float) -> int:
    rate = max(0, int(v2) - int(v1)) / cap.domstats_dt_s
    return int(v2) + int(rate * vm.io_scale * t_vm)


#: A domain record part: literal text, or (how, base, rate) for a value that moves with time.
_DomPart = str | tuple[str, int, float]


def _shutoff(dom: Domain, vm: VmProfile, path: str) -> str:
    # Shut off: no QEMU process, so libvirt reports only sizes (cf. kerub's capture).
    out = [f"Domain: '{vm.name}'", "  state.state=5", "  state.reason=1"]
    out += [f"  balloon.maximum={vm.mem_kib}", f"  vcpu.current={vm.vcpus}"]
    out += [f"  vcpu.maximum={vm.vcpus}", "  block.count=1", "  block.0.name=vda"]
    out.append(f"  block.0.path={path}")
    sizes = ("block.0.allocation", "block.0.capacity", "block.0.physical")
    out += [f"  {k}={v}" for k, _, v in dom.fields if k in sizes]
    return "\n".join(out) + "\n\n"


@functools.lru_cache(maxsize=100_000)
def _domain_plan(cap: Captures, vm: VmProfile) -> tuple[_DomPart, ...]:
    """The record with its constant lines joined: only the moving values are left to fill."""
    dom = cap.domains[vm.template % len(cap.domains)]
    path = f"/var/lib/libvirt/images/{vm.name}.qcow2"
    if not vm.running:
        return (_shutoff(dom, vm, path),)
    avail = vm.mem_kib * 94912 // 131072  # the lab guest's available/maximum ratio
    usable = int(avail * (1 - vm.mem_used_frac))
    cpu_rate = 1e9 * vm.vcpus * vm.cpu_share
    fixed: dict[str, _DomPart] = {
        "cpu.time": ("lin", 0, cpu_rate),
        "cpu.user": ("user", 0, cpu_rate),
        "cpu.system": ("system", 0, cpu_rate),
        "balloon.current": str(vm.mem_kib),
        "balloon.maximum": str(vm.mem_kib),
        "balloon.unused": str(usable * 9 // 10),
        "balloon.available": str(avail),
        "balloon.usable": str(usable),
        "balloon.last-update": ("epoch", 0, 0.0),
        "balloon.disk_caches": str(avail // 20),
        "balloon.rss": str(vm_host_rss_bytes(vm) // 1024),
        "vcpu.current": str(vm.vcpus),
        "vcpu.maximum": str(vm.vcpus),
        "net.0.name": vm.nic,
        "block.0.path": path,
    }
    parts: list[_DomPart] = [f"Domain: '{vm.name}'\n"]
    for key, v1, v2 in dom.fields:
        if key.startswith("vcpu.0."):
            if key == "vcpu.0.state":
                for n in range(vm.vcpus):
                    parts += [f"  vcpu.{n}.state=1\n  vcpu.{n}.time=", ("vcpu", 0, vm.cpu_share)]
                    parts += [f"\n  vcpu.{n}.wait=0\n  vcpu.{n}.delay="]
                    parts += [("lin", 0, 1e9 * vm.delay_share), "\n"]
            continue
        value = fixed.get(key)
        if value is None and _VM_COUNTER_RE.match(key):
            rate = max(0, int(v2) - int(v1)) / cap.domstats_dt_s * vm.io_scale
            value = ("lin", int(v2), rate)
        parts += [f"  {key}=", v2 if value is None else value, "\n"]
    parts.append("\n")
    joined: list[_DomPart] = []
    for part in parts:
        if isinstance(part, str) and joined and isinstance(joined[-1], str):
            joined[-1] += part
        else:
            joined.append(part)
    return tuple(joined)


def render_domain(cap: Captures, vm: VmProfile, at: Moment) -> str:
    """One `virsh domstats --raw` record cloned from the lab capture, renamed and advanced."""
    t_vm = vm.age_s + at.since_start_s
    out = []
    for part in _domain_plan(cap, vm):
        if isinstance(part, str):
            out.append(part)
            continue
        how, base, rate = part
        if how == "lin":
            out.append(str(base + int(rate * t_vm)))
        elif how == "user":
            out.append(str(int(rate * t_vm) * 85 // 100))
        elif how == "system":
            cpu_ns = int(rate * t_vm)
            out.append(str(cpu_ns - cpu_ns * 85 // 100))
        elif how == "vcpu":  # vCPU times come in 10 ms steps (scheduler ticks)
            out.append(str(int(t_vm * rate * 0.97 * 100) * 10_000_000))
        else:  # the guest's balloon driver reports every 2 s
            out.append(str(int(at.epoch_s) // 2 * 2))
    return "".join(out)


def render_domstats(cap: Captures, host: HostProfile, at: Moment) -> str:
    return "".join(render_domain(cap, vm, at) for vm in host.vms)


def vm_host_counters(cap: Captures, vm: VmProfile, at: Moment) -> tuple[int, int, int]:
    """A running guest's QEMU process as its cgroup counts it: CPU (ns), bytes read and
    written (its disk's, as with cache=none), moving as its domstats counters do."""
    dom = cap.domains[vm.template % len(cap.domains)]
    t_vm = vm.age_s + at.since_start_s
    io = {k: _vm_counter(cap, vm, v1, v2, t_vm) for k, v1, v2 in dom.fields if k in _HOST_IO}
    # QEMU's own threads (emulator, I/O) on top of its vCPUs' time: a few per cent.
    cpu_ns = int(1e9 * vm.vcpus * vm.cpu_share * t_vm * 1.03)
    return cpu_ns, io.get("block.0.rd.bytes", 0), io.get("block.0.wr.bytes", 0)


_HOST_IO = frozenset({"block.0.rd.bytes", "block.0.wr.bytes"})


def vm_host_rss_bytes(vm: VmProfile) -> int:
    """The QEMU process's resident memory: what domstats' balloon.rss says (KiB)."""
    return int(vm.mem_kib * min(1.0, vm.mem_used_frac + 0.1)) * 1024


def render_net_dev(cap: Captures, host: HostProfile, at: Moment) -> str:
    """/proc/net/dev: sysstat's interfaces, plus a tap device per running KVM guest."""
    # sysstat's wlp5s0 drops 3 packets/s: scaled past 30 times it would flag every big host.
    text = cap.net_dev.render(min(host.activity, 20.0), at.uptime(host) - SYSSTAT_UPTIME_S)
    if host.kind != "kvm":
        return text
    for vm in host.vms:
        if not vm.running:
            continue
        f = dict(_tap_counters(cap, vm, at))
        # The host receives what the guest transmits, and the other way round.
        text += (
            f"{vm.nic:>6}:{f['tx.bytes']:8d} {f['tx.pkts']:7d} {f['tx.errs']:4d} {f['tx.drop']:4d}"
            f"    0     0          0         0 {f['rx.bytes']:8d} {f['rx.pkts']:7d}"
            f" {f['rx.errs']:4d} {f['rx.drop']:4d}    0     0       0          0\n"
        )
    return text


def _tap_counters(cap: Captures, vm: VmProfile, at: Moment) -> list[tuple[str, int]]:
    dom = cap.domains[vm.template % len(cap.domains)]
    t_vm = vm.age_s + at.since_start_s
    return [
        (k[len("net.0.") :], _vm_counter(cap, vm, v1, v2, t_vm))
        for k, v1, v2 in dom.fields
        if k.startswith(("net.0.rx.", "net.0.tx."))
    ]


@functools.lru_cache(maxsize=100_000)
def render_nodeinfo(cap: Captures, host: HostProfile) -> str:
    """`virsh nodeinfo` in the lab capture's layout, with the host's CPUs and memory."""
    sockets = 2 if host.cpus >= 32 else 1
    values = {
        "CPU(s):": str(host.cpus),
        "CPU socket(s):": str(sockets),
        "Core(s) per socket:": str(host.cpus // (sockets * 2)),
        "Thread(s) per core:": "2",
        "NUMA cell(s):": str(sockets),
        "Memory size:": f"{host.mem_kib} KiB",
    }
    out = []
    for line in cap.nodeinfo.split("\n"):
        label = line.split(":")[0] + ":" if ":" in line else ""
        out.append(f"{label:<21}{values[label]}" if label in values else line)
    return "\n".join(out)


def xl_list_line(name: str, domid: int, mem_mib: int, vcpus: int, state: str, time_s: float) -> str:
    """One `xl list` row (xl_cmdimpl.c: "%-40s %5d %5lu %5d     %s %8.1f")."""
    return f"{name:<40} {domid:>5} {mem_mib:>5} {vcpus:>5}     {state} {time_s:>8.1f}"


def render_xl_list(cap: Captures, host: HostProfile, at: Moment) -> str:
    """`xl list`: Domain-0 then the running guests (a shut-off Xen domain does not exist)."""
    t = at.uptime(host)
    dom0_s = t * host.cpus * (host.busy_share + 0.02)
    lines = [cap.xl_list.split("\n")[0]]
    lines.append(xl_list_line("Domain-0", 0, host.mem_kib // 1024, host.cpus, "r-----", dom0_s))
    for domid, vm in enumerate(host.vms, start=1):
        if not vm.running:
            continue
        state = "r-----" if vm.cpu_share > 0.5 else "-b----"
        busy_s = (vm.age_s + at.since_start_s) * vm.vcpus * vm.cpu_share
        lines.append(xl_list_line(vm.name, domid, vm.mem_kib // 1024, vm.vcpus, state, busy_s))
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=100_000)
def render_xl_info(cap: Captures, host: HostProfile) -> str:
    """`xl info` in ganeti's Xen 4.0.1 capture's layout, with the machine's size."""
    used = host.mem_kib // 1024 + sum(vm.mem_kib // 1024 for vm in host.vms if vm.running)
    free = max(0, host.hv_mem_mib - used)
    values = {
        "host": host.name,
        "nr_cpus": str(host.hv_cpus),
        "cores_per_socket": str(host.hv_cpus),
        "total_memory": str(host.hv_mem_mib),
        "free_memory": str(free),
        "node_to_cpu": f"node0:0-{host.hv_cpus - 1}",
        "node_to_memory": f"node0:{free}",
    }
    out = []
    for line in cap.xl_info.split("\n"):
        key = line.split(":")[0].strip()
        out.append(f"{key:<23}: {values[key]}" if key in values else line)
    return "\n".join(out)


def machine_df(text: str) -> str:
    """This machine's `df -P` output minus sandbox mounts under /mnt (not part of a host)."""
    lines = text.splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.rstrip().split(" ")[-1].startswith("/mnt/"))


def fill_root(df_k: str, used_frac: float) -> str:
    """`df -P -k` with `/` at `used_frac` full (Capacity rounded up, as df does)."""
    out = []
    for line in df_k.splitlines(keepends=True):
        f = line.split()
        if len(f) == 6 and f[5] == "/" and f[1].isdigit():
            size = int(f[1])
            used = int(size * used_frac)
            avail = size - used
            pct = math.ceil(100 * used / (used + avail)) if size else 0
            line = f"{f[0]:<23} {size:>11} {used:>8} {avail:>9} {pct:>8}% /\n"
        out.append(line)
    return "".join(out)


def render_uuids(host: HostProfile) -> str:
    """`virsh -q list --all --uuid --name`: each domain's UUID, derived from its name (a
    simulated VM keeps it wherever it runs), as virsh prints them ("%-36s %-30s")."""
    return "".join(f"{vm_uuid(vm.name)} {vm.name}\n" for vm in host.vms)


def vm_uuid(name: str) -> str:
    """A simulated domain's UUID: derived from its name (the same wherever it runs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "fleetmon-sim:" + name))
