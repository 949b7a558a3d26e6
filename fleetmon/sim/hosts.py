"""Simulator (edge): the fleet's make-up, one frozen profile per host, drawn from a seed.

Profiles fix what stays constant on a host (CPUs, memory, load shares, VMs, its fault);
`fleetmon.sim.render` turns a profile and an uptime into probe output.
"""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fleetmon.errors import OptionError

KINDS = ("kvm", "xen", "linux", "mixed")
FAULTS = ("unreachable", "timeout", "garbage", "auth", "cmdfail")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
HOSTS_PER_RACK = 20

_VM_ROLES = ("web", "app", "db", "cache", "build", "mq", "api", "batch")
_GIB_KIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VmProfile:
    """One guest: its size and what share of its vCPUs it keeps busy."""

    name: str
    vcpus: int
    mem_kib: int
    running: bool
    cpu_share: float  # 0..1 of its vCPUs
    delay_share: float  # 0..1 of its vCPU time spent waiting for a host CPU
    io_scale: float  # multiplies the lab capture's disk and network rates
    mem_used_frac: float
    age_s: float  # how long it had been running when the simulator started
    template: int  # which domain record of the lab capture it is cloned from
    nic: str  # host-side tap device


@dataclass(frozen=True, slots=True)
class HostProfile:
    """One simulated host."""

    index: int
    name: str
    kind: str  # kvm, xen or linux
    address: str
    port: int
    rack: str
    fault: str | None
    cpus: int  # CPUs its /proc shows (dom0's vCPUs on Xen)
    mem_kib: int  # MemTotal (dom0's memory on Xen)
    busy_share: float  # the host's own CPU work, 0..1 of all CPUs
    steal_share: float
    iowait_share: float
    mem_used_frac: float
    activity: float  # multiplies the capture's interrupt, disk and network rates
    full_fs: bool
    hot: bool  # busy CPU, memory and disk: the host a report should put first
    has_psi: bool
    uptime_at_start_s: float
    boot_id: str
    vms: tuple[VmProfile, ...] = ()
    hv_cpus: int = 0  # Xen: the machine's CPUs (xl info nr_cpus)
    hv_mem_mib: int = 0  # Xen: the machine's memory (xl info total_memory)
    #: `--containers N` (fleetmon.sim.containers.ContainerProfile each).
    containers: tuple[Any, ...] = ()
    has_xentop: bool = False  # Xen: xentop installed (VM disk and network figures)
    site: str | None = None  # `--sites`: the site whose bastion alone may reach it
    #: `--guests N`: the VM (of a KVM host of the fleet) this Linux host is the guest of.
    guest_of: str | None = None


def parse_sites(spec: str | None) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"): site names as `fleetmon_site` takes them; OptionError if bad."""
    if not spec:
        return ()
    sites = tuple(s.strip() for s in spec.split(","))
    for site in sites:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", site):
            raise OptionError(f"--sites: {site!r} is not a site name (letters, digits, _ . -)")
    if len(set(sites)) != len(sites):
        raise OptionError(f"--sites: {spec!r} names a site twice")
    return sites


def parse_faults(spec: str | None) -> dict[str, int]:
    """`unreachable=2,timeout=1` -> {"unreachable": 2, "timeout": 1}; OptionError if bad."""
    out: dict[str, int] = {}
    if not spec:
        return out
    for item in spec.split(","):
        name, sep, count = item.strip().partition("=")
        if name not in FAULTS:
            raise OptionError(
                f"--faults: unknown fault {name!r} (expected one of {', '.join(FAULTS)})"
            )
        if not sep or not count.isdigit():
            raise OptionError(f"--faults: {item.strip()!r} must be NAME=COUNT")
        out[name] = out.get(name, 0) + int(count)
    return out


def endpoints(base: str, count: int, port: int, per_address: int) -> list[tuple[str, int]]:
    """The (address, port) of each host: `per_address` ports on each loopback address."""
    try:
        first = ipaddress.ip_address(base)
    except ValueError:
        raise OptionError(f"--base-address: {base!r} is not an IP address") from None
    if per_address < 1:
        raise OptionError("--ports-per-address must be at least 1")
    n_addr = max(1, -(-count // per_address))
    last_int = int(first) + n_addr - 1
    if first not in LOOPBACK or last_int > int(LOOPBACK[-2]):
        raise OptionError(
            f"--base-address: {base} + {n_addr} addresses leaves 127.0.0.0/8;"
            " the simulator listens on loopback addresses only"
        )
    if port and port + per_address - 1 > 65535:
        raise OptionError(f"--port {port} + {per_address} ports passes 65535")
    return [
        (
            str(ipaddress.ip_address(int(first) + i // per_address)),
            port + i % per_address if port else 0,
        )
        for i in range(count)
    ]


#: Each site's hosts get their own /16 of loopback addresses: site k starts k * 65,536 on.
SITE_STRIDE = 1 << 16


def site_endpoints(
    base: str, count: int, port: int, per_address: int, sites: Sequence[str]
) -> tuple[list[tuple[str, int]], list[str | None]]:
    """The endpoints of `count` hosts dealt into `sites` in even, consecutive blocks (the
    first sites get one more when it does not divide), and each host's site."""
    if not sites:
        return endpoints(base, count, port, per_address), [None] * count
    try:
        first = int(ipaddress.ip_address(base))
    except ValueError:
        raise OptionError(f"--base-address: {base!r} is not an IP address") from None
    where: list[tuple[str, int]] = []
    site_of: list[str | None] = []
    for k, site in enumerate(sites):
        n = count // len(sites) + (1 if k < count % len(sites) else 0)
        start = str(ipaddress.ip_address(first + k * SITE_STRIDE))
        where += endpoints(start, n, port, per_address)
        site_of += [site] * n
    return where, site_of


def _kind_of(kind: str, rng: random.Random) -> str:
    if kind != "mixed":
        return kind
    return rng.choices(("kvm", "xen", "linux"), weights=(60, 15, 25))[0]


def _vms(
    rng: random.Random, host_no: int, cpus: int, hot: bool, starved: bool
) -> tuple[VmProfile, ...]:
    count = rng.randint(2, 14)
    vms = []
    for k in range(count):
        vcpus = rng.choice((1, 2, 2, 4, 4, 8))
        running = rng.random() > 0.08
        share = rng.betavariate(2, 5)
        if hot and k == 0:
            share = rng.uniform(0.9, 0.99)  # one saturated guest on the hot hosts
        role = rng.choice(_VM_ROLES)
        vms.append(
            VmProfile(
                name=f"{role}-{host_no:04d}-{k + 1}",
                vcpus=vcpus,
                mem_kib=rng.choice((1, 2, 4, 4, 8, 16)) * _GIB_KIB,
                running=running,
                cpu_share=round(share, 3),
                # A starved hypervisor's guests wait for a CPU: their steal is vcpu delay.
                delay_share=round(
                    rng.uniform(0.04, 0.15) if starved else rng.uniform(0.0, 0.02), 4
                ),
                io_scale=round(rng.lognormvariate(2.0, 1.0), 2),
                mem_used_frac=round(
                    rng.uniform(0.93, 0.99)
                    if hot and k == 0
                    else 0.2 + 0.65 * rng.betavariate(2, 3),
                    3,
                ),
                age_s=round(rng.uniform(3600, 60 * 86400), 1),
                template=k % 2,
                nic=f"vnet{k}",
            )
        )
    return tuple(vms)


#: Of the machine's CPUs, the most its guests keep busy: a real machine cannot give its
#: guests more CPU time than it has (a Xen fleet once showed 125.6 % of the machine).
GUEST_CPU_MAX = 0.9
#: Share of simulated Xen hosts with xentop installed; the rest show the fallback.
XENTOP_SHARE = 0.8


def fit_guests(vms: tuple[VmProfile, ...], cpus: int) -> tuple[VmProfile, ...]:
    """The guests with their CPU shares scaled down, if need be, so the running ones use at
    most GUEST_CPU_MAX of `cpus` (the CPUs they share: a KVM host's, a Xen machine's less
    dom0's)."""
    demand = sum(vm.vcpus * vm.cpu_share for vm in vms if vm.running)
    room = GUEST_CPU_MAX * cpus
    if demand <= room:
        return vms
    return tuple(replace(vm, cpu_share=round(vm.cpu_share * room / demand, 3)) for vm in vms)


def _marked(
    count: int, seed: int, faults: Mapping[str, int]
) -> tuple[dict[int, str], set[int], set[int], set[int]]:
    """Which hosts have which scripted fault, and the few of every fleet a report should
    flag: a full filesystem, steal (vCPU delay on KVM), hot (CPU and memory)."""
    fleet_rng = random.Random(f"fleetmon-sim:{seed}")
    order = list(range(count))
    fleet_rng.shuffle(order)
    fault_of: dict[int, str] = {}
    for name in FAULTS:
        for _ in range(faults.get(name, 0)):
            fault_of[order.pop()] = name
    full = set(order[: max(1, count // 50)]) if count >= 5 else set()
    steal = set(order[len(full) : len(full) + max(1, count // 25)]) if count >= 5 else set()
    hot = set(fleet_rng.sample(range(count), max(1, count // 25))) if count >= 5 else set()
    return fault_of, full, steal, hot


def _machine(
    rng: random.Random, k: str, i: int, hot: bool, steal: bool
) -> tuple[int, int, tuple[VmProfile, ...], int, int]:
    """A host's CPUs, memory (KiB), VMs, and a Xen machine's CPUs and memory (MiB) beside
    dom0's share, drawn from its own generator."""
    if k == "kvm":
        cpus = rng.choice((16, 24, 32, 48, 64))
        vms = fit_guests(_vms(rng, i + 1, cpus, hot, steal), cpus)
        # Sized for its guests, as a planner would, with room for the host itself.
        need = sum(vm.mem_kib for vm in vms if vm.running) * 1.15
        sizes = [g * _GIB_KIB for g in (64, 128, 256, 384, 512)]
        return cpus, next((m for m in sizes if m >= need), sizes[-1]), vms, 0, 0
    if k == "xen":
        hv_cpus = rng.choice((16, 24, 32, 48))
        hv_mem = rng.choice((64, 128, 256)) * 1024
        cpus = 4  # dom0's share of the machine
        vms = fit_guests(_vms(rng, i + 1, hv_cpus, hot, False), hv_cpus - cpus)
        return cpus, 4 * _GIB_KIB, vms, hv_cpus, hv_mem
    cpus = rng.choice((2, 4, 4, 8, 8, 16))
    return cpus, rng.choice((4, 8, 16, 32, 64)) * _GIB_KIB, (), 0, 0


def make_fleet(
    count: int,
    kind: str,
    seed: int,
    faults: Mapping[str, int],
    where: Sequence[tuple[str, int]],
) -> tuple[HostProfile, ...]:
    """`count` host profiles; the same arguments always give the same fleet."""
    if kind not in KINDS:
        raise OptionError(f"--kind must be one of {', '.join(KINDS)}")
    if sum(faults.values()) > count:
        raise OptionError(f"--faults: {sum(faults.values())} faulty hosts but only {count} hosts")
    fault_of, full, steal, hot = _marked(count, seed, faults)
    hosts = []
    for i in range(count):
        rng = random.Random(f"fleetmon-sim:{seed}:{i}")
        k = _kind_of(kind, rng)
        address, port = where[i]
        busy = rng.betavariate(2, 6) if i not in hot else rng.uniform(0.8, 0.95)
        cpus, mem, vms, hv_cpus, hv_mem = _machine(rng, k, i, i in hot, i in steal)
        if k == "kvm":
            busy = busy / 4  # a hypervisor's own work is small; its guests add to user time
        uptime = rng.uniform(2 * 86400, 60 * 86400)
        hosts.append(
            HostProfile(
                index=i,
                name=f"{k}{i + 1:04d}",
                kind=k,
                address=address,
                port=port,
                rack=f"rack{i // HOSTS_PER_RACK + 1:02d}",
                fault=fault_of.get(i),
                cpus=cpus,
                mem_kib=mem,
                busy_share=round(busy, 3),
                # Steal is time the hypervisor gave elsewhere: guests and dom0 see it, a
                # bare-metal KVM host does not (its starved guests show vcpu delay instead).
                steal_share=round(rng.uniform(0.08, 0.3), 3) if i in steal and k != "kvm" else 0.0,
                iowait_share=round(rng.uniform(0.0, 0.05), 3),
                mem_used_frac=round(
                    rng.uniform(0.97, 0.99) if i in hot else rng.uniform(0.2, 0.85), 3
                ),
                activity=round(rng.lognormvariate(1.0, 1.0) * cpus / 8, 2),
                full_fs=i in full,
                hot=i in hot,
                has_psi=k != "linux" or rng.random() > 0.1,  # some guests run old kernels
                uptime_at_start_s=round(uptime, 2),
                boot_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                vms=vms,
                hv_cpus=hv_cpus,
                hv_mem_mib=hv_mem,
                # Its own generator: the other draws (and so the rest of the fleet) stay.
                has_xentop=k == "xen"
                and random.Random(f"fleetmon-sim:{seed}:{i}:xentop").random() < XENTOP_SHARE,
            )
        )
    return tuple(hosts)
