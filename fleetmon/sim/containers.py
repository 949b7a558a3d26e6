"""Simulator (edge): containers on the simulated hosts, and the probe's cgroup sections.

`--containers N` gives every Linux and KVM host N containers; hosts of even index run
cgroup v2 (Docker under systemd: `system.slice/docker-<id>.scope`, PSI files), odd ones
cgroup v1 (Podman with cgroupfs: one tree per controller, `libpod_parent/libpod-<id>`).
One container in 29 is paused (`podman pause`: its cgroup frozen, v2 `cgroup.events` frozen 1,
v1 `freezer.state` FROZEN), its counters still since the simulator started.
Every running KVM guest has libvirt's machine cgroup beside them, containers or not
(`machine.slice/machine-qemu\\x2d<id>\\x2d<name>.scope` on v2, `machine/qemu-<id>-<name>.
libvirt-qemu` with cgroupfs on v1): its QEMU process's memory and I/O. The
sections are what the probe's awk (sources/cgroups.py awk_read) prints of the files of the
recorded trees (tests/data/couchbase-platform, tests/data/fleetmon-capture/
cgroup-podman-v1-hybrid); the
values are drawn from the seed. Counters grow with the host's uptime, so the rates between
two samples are exactly the profile's.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

from fleetmon.sim import render
from fleetmon.sim.captures import Captures
from fleetmon.sim.hosts import HostProfile
from fleetmon.sources.cgroups import KEYED_HEAD

_ROLES = ("api", "web", "worker", "cache", "cron", "proxy", "db", "queue", "auth", "search")
_MIB = 1 << 20
#: v1 prints PAGE_COUNTER_MAX pages as bytes for "no limit".
_V1_UNLIMITED = 9223372036854771712
_PERIOD_S = 0.1  # CFS period (cpu.cfs_period_us / cpu.max's second field)


@dataclass(frozen=True, slots=True)
class ContainerProfile:
    """One container: what it uses and what it may use."""

    name: str
    id: str
    cpu_share: float  # of one CPU
    quota_cpus: float | None  # --cpus; None: no quota
    mem_bytes: int
    limit_bytes: int | None
    file_bytes: int
    oom_kills: int
    read_bytes_per_s: float
    write_bytes_per_s: float
    pids: int
    age_s: float
    paused: bool = False  # frozen by the cgroup freezer (podman/docker pause)


def _container(rng: random.Random, host_no: int, k: int) -> ContainerProfile:
    quota = rng.choice((None, None, 0.5, 1.0, 2.0))
    want = rng.betavariate(1.5, 6) * 2
    share = min(want, quota) if quota else want
    limit = rng.choice((None, 256 * _MIB, 512 * _MIB, 1024 * _MIB, 4096 * _MIB))
    mem = int((limit or 2048 * _MIB) * rng.uniform(0.05, 0.99 if k % 17 == 3 else 0.7))
    return ContainerProfile(
        name=f"{rng.choice(_ROLES)}-{host_no:04d}-{k + 1}",
        id=f"{rng.getrandbits(256):064x}",
        cpu_share=round(share, 4),
        quota_cpus=quota,
        mem_bytes=mem,
        limit_bytes=limit,
        file_bytes=int(mem * rng.uniform(0.0, 0.5)),
        oom_kills=1 if k % 53 == 7 else 0,
        read_bytes_per_s=round(rng.lognormvariate(8, 2), 1),
        write_bytes_per_s=round(rng.lognormvariate(9, 2), 1),
        pids=rng.randint(1, 60),
        age_s=round(rng.uniform(600, 30 * 86400), 1),
        paused=k % 29 == 11,  # not drawn: the other containers' values stay as they were
    )


def with_containers(
    hosts: Sequence[HostProfile], per_host: int, seed: int
) -> tuple[HostProfile, ...]:
    """The fleet with `per_host` containers on each Linux and KVM host (0: unchanged)."""
    if per_host <= 0:
        return tuple(hosts)
    out = []
    for h in hosts:
        if h.kind not in ("linux", "kvm"):
            out.append(h)
            continue
        rng = random.Random(f"fleetmon-sim:{seed}:{h.index}:containers")
        ctrs = tuple(_container(rng, h.index + 1, k) for k in range(per_host))
        out.append(dataclasses.replace(h, containers=ctrs))
    return tuple(out)


def _v2(host: HostProfile) -> bool:
    return host.index % 2 == 0


def _dir(host: HostProfile, c: ContainerProfile) -> str:
    if _v2(host):
        return f"system.slice/docker-{c.id}.scope"
    return f"libpod_parent/libpod-{c.id}"


@dataclass(frozen=True, slots=True)
class VmCgroup:
    """A running KVM guest's machine cgroup (libvirt's, of its QEMU process) at a moment."""

    path: str
    cpu_ns: int
    read_bytes: int
    write_bytes: int
    rss_bytes: int
    pids: int


#: QEMU's page cache and file-backed memory (its binary, libraries): a few MiB.
_QEMU_FILE_BYTES = 12 * _MIB


def vm_cgroups(cap: Captures, host: HostProfile, at: render.Moment) -> tuple[VmCgroup, ...]:
    """The running guests' cgroups (none on other hosts than KVM ones); libvirt numbers
    the domains it starts 1, 2, ..."""
    if host.kind != "kvm":
        return ()
    out = []
    for n, vm in enumerate((vm for vm in host.vms if vm.running), 1):
        cpu_ns, rd, wr = render.vm_host_counters(cap, vm, at)
        if _v2(host):  # systemd escapes the name's "-" in the scope's (systemd-escape)
            escaped = vm.name.replace("-", "\\x2d")
            path = f"machine.slice/machine-qemu\\x2d{n}\\x2d{escaped}.scope"
        else:
            path = f"machine/qemu-{n}-{vm.name}.libvirt-qemu"
        # The emulator, I/O and vCPU threads (one a vCPU).
        out.append(VmCgroup(path, cpu_ns, rd, wr, render.vm_host_rss_bytes(vm), vm.vcpus + 6))
    return tuple(out)


def as_keyed(version: int, lines: Sequence[str]) -> str:
    """`<path>\t<key>=<value> ...` lines (a v1 container's mounts one each, in the order
    the awk reads them) as awk_read's program prints them: its head, then each line's values, after
    a line of its keys when they are not those of the line before."""
    out = [f"{KEYED_HEAD}{version}"]
    before: list[str] = []
    for line in lines:
        path, _, rest = line.partition("\t")
        keys, values = zip(*(token.partition("=")[::2] for token in rest.split(" ")), strict=True)
        if list(keys) != before:
            before = list(keys)
            out.append("#k " + " ".join(keys))
        out.append(f"{path}\t{' '.join(values)}")
    return "".join(f"{line}\n" for line in out)


def render_counters(host: HostProfile, uptime_s: float, vms: Sequence[VmCgroup] = ()) -> str:
    """The `cgroup` section at this uptime (`vms`: its guests' cgroups at the same moment)."""
    lines: list[str] = []
    mounts: tuple[list[str], list[str], list[str]] = ([], [], [])
    for c in host.containers:
        # A paused container's counters stand still (frozen since the simulator started).
        now = host.uptime_at_start_s if c.paused else uptime_s
        t = min(c.age_s + (now - host.uptime_at_start_s), now)
        cpu_ns = int(c.cpu_share * t * 1e9)
        periods = int(t / _PERIOD_S) if c.quota_cpus else 0
        # A container that wants about its whole quota runs out of it in most periods.
        full = c.quota_cpus is not None and c.cpu_share >= 0.95 * c.quota_cpus
        throttled = int(periods * 0.8) if full else 0
        rd, wr = int(c.read_bytes_per_s * t), int(c.write_bytes_per_s * t)
        if _v2(host):
            lines.append(f"{_dir(host, c)}\tu={cpu_ns // 1000} np={periods} nt={throttled}"
                         f" tu={throttled * 20_000} r={rd} w={wr}")  # fmt: skip
        else:  # the mounts' lines (cpu, cpuacct, blkio) as the probe's awk prints them
            d = _dir(host, c)
            mounts[0].append(f"{d}\tnp={periods} nt={throttled} tn={throttled * 20_000_000}")
            mounts[1].append(f"{d}\tca={cpu_ns}")
            mounts[2].append(f"{d}\tr={rd} w={wr}")
    for vm in vms:  # no CPU quota: periods are not counted
        if _v2(host):
            lines.append(f"{vm.path}\tu={vm.cpu_ns // 1000} np=0 nt=0 tu=0"
                         f" r={vm.read_bytes} w={vm.write_bytes}")  # fmt: skip
        else:
            mounts[0].append(f"{vm.path}\tnp=0 nt=0 tn=0")
            mounts[1].append(f"{vm.path}\tca={vm.cpu_ns}")
            mounts[2].append(f"{vm.path}\tr={vm.read_bytes} w={vm.write_bytes}")
    # v1: the awk reads one mount's directories after the other's (sources/cgroups._dirs).
    lines += [line for m in mounts for line in m]
    return as_keyed(2 if _v2(host) else 1, lines)


def render_gauges(host: HostProfile, vms: Sequence[VmCgroup] = ()) -> str:
    """The `cgroup_mem` section (memory, limits, pids, the freezer's state) of the
    containers and `vms`."""
    lines: list[str] = []
    pids: list[str] = []
    for c in host.containers:
        usage = c.mem_bytes + c.file_bytes // 2  # half the cache inactive, as reclaim leaves it
        anon = max(c.mem_bytes - c.file_bytes // 2, 0)
        d = _dir(host, c)
        if _v2(host):
            psi = []
            busy = 0.0 if c.paused else c.cpu_share  # a frozen task waits for nothing
            for res, share in (("c", 0.2), ("m", 0.01), ("i", 0.02)):
                avg = int(psi_avg10(share * busy * 100).replace(".", ""))  # x 100
                psi.append(f"p{res}s={avg} p{res}f=0")
            lines.append(f"{d}\tm={usage} l={c.limit_bytes if c.limit_bytes else 'max'}"
                         f" a={anon} f={c.file_bytes} i={c.file_bytes // 2} p={c.pids}"
                         f" o={c.oom_kills} {' '.join(psi)} fz={int(c.paused)}")  # fmt: skip
        else:  # the memory mount's lines (with the freezer's state), then the pids mount's
            lines.append(
                f"{d}\ti=0 f={c.file_bytes} a={anon} i={c.file_bytes // 2}"
                f" l={c.limit_bytes or _V1_UNLIMITED} m={usage} o={c.oom_kills} fz={int(c.paused)}"
            )
            pids.append(f"{d}\tp={c.pids}")
    for vm in vms:  # libvirt sets no memory limit unless asked (<memtune>)
        usage = vm.rss_bytes + _QEMU_FILE_BYTES
        if _v2(host):
            lines.append(f"{vm.path}\tm={usage} l=max a={vm.rss_bytes} f={_QEMU_FILE_BYTES}"
                         f" i={_QEMU_FILE_BYTES // 2} p={vm.pids} o=0 pcs=0 pcf=0 pms=0"
                         " pmf=0 pis=0 pif=0 fz=0")  # fmt: skip
        else:
            lines.append(
                f"{vm.path}\ti=0 f={_QEMU_FILE_BYTES} a={vm.rss_bytes} i={_QEMU_FILE_BYTES // 2}"
                f" l={_V1_UNLIMITED} m={usage} o=0 fz=0"
            )
            pids.append(f"{vm.path}\tp={vm.pids}")
    lines += pids
    return as_keyed(2 if _v2(host) else 1, lines)


def psi_avg10(pct: float) -> str:
    """A PSI average as the kernel prints it (%lu.%02lu)."""
    return f"{min(pct, 100.0):.2f}"


def render_names(host: HostProfile) -> str:
    """The `ctr_names` section: Docker's config.v2.json names, Podman's containers.json,
    and the glob of the kubelet's log links as the shell prints it where there is none."""
    if _v2(host):
        return (
            "".join(
                f'/var/lib/docker/containers/{c.id}/config.v2.json:"Name":"/{c.name}"\n'
                for c in host.containers
            )
            + "/var/log/containers/*.log\n"
        )
    return "".join(f'"id":"{c.id}","names":["{c.name}"\n' for c in host.containers) + (
        "/var/log/containers/*.log\n"
    )
