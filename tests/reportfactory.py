"""Builders of realistic fleetmon.model.Report objects for the renderer tests and benchmark.

Shapes follow ../shared/METRICS.md: CPU shares sum to 100, hv.* ratios are computed from the
VM rows, a VM's tap port is a NIC row labelled {"vm": name}, and fleet statistics come from
fleetmon.analyse.fleet. Device names are those of the captures in ../shared/fixtures (sysstat's
enp6s0/virbr0, the lab's vm1/tap-vm1/vda); the figures are made up, not captured.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from probetext import NONCE, probe_stdout

from fleetmon.analyse.fleet import fleet_stats
from fleetmon.analyse.pipeline import build_report
from fleetmon.model import (
    Finding,
    HostReport,
    HostSpec,
    RawResult,
    Report,
    Row,
    RunInfo,
    Severity,
    Status,
)
from fleetmon.model.virt import Virt

HOSTILE_HOST = "<script>alert(1)</script>"
HOSTILE_VM = "'; DROP TABLE vms; --"
HOSTILE_MOUNT = '/mnt/"><img src=x onerror=alert(2)>'
HOSTILE_NIC = "eth0</title><script>alert(3)</script>"
HOSTILE_ERROR = "connect failed: <b>refused</b> & 'quoted' \"too\""
#: Names that break exposition formats: a quote, a newline and a brace (Prometheus labels,
#: OpenMetrics), a comma and equals signs (InfluxDB tags), a trailing backslash (InfluxDB).
HOSTILE_QUOTE = 'a"b\nc}'
HOSTILE_COMMA = "x,y=z"
HOSTILE_BACKSLASH = "back slash\\"
GiB = 1024**3

RUN = RunInfo(
    fleetmon_version="0.1.0",
    started_at="2026-11-26T03:00:00Z",
    interval_s=1.0,
    inventory="inventories/prod.yaml",
    rule_files=("playbooks/linux-host.yaml", "playbooks/kvm.yaml"),
)


def finding(
    rule: str,
    severity: Severity,
    scope: str,
    subject: str,
    metric: str,
    value: float | None,
    thr: str,
) -> Finding:
    """A finding whose message says what a rule's default message would."""
    return Finding(
        rule, severity, scope, subject, metric, value, thr, f"{subject} {metric} {value}"
    )


def vm(
    name: str,
    rng: random.Random,
    *,
    cpu_pct: float | None = None,
    vcpus: int = 2,
    state: str = "running",
    host_cpus: int = 32,
) -> Row:
    """A libvirt domain row; shut-off domains have their state only, as in METRICS.md."""
    if state != "running":
        return Row(name, {"vm.state": state, "vm.vcpus": vcpus, "vm.mem_max_bytes": 4 * GiB})
    cpu = round(rng.uniform(1, 60), 1) if cpu_pct is None else cpu_pct
    mem_max = rng.choice((2, 4, 8, 16)) * GiB
    return Row(
        name,
        {
            "vm.state": "running",
            "vm.vcpus": vcpus,
            "vm.cpu_pct": cpu,
            "vm.cpu_host_pct": round(cpu * vcpus / host_cpus, 2),
            "vm.vcpu_delay_pct": round(rng.uniform(0, 4) * cpu / 50, 2),
            "vm.mem_max_bytes": mem_max,
            "vm.mem_current_bytes": mem_max,
            "vm.mem_used_pct": round(rng.uniform(20, 90), 1),
            "vm.swap_in_bytes_per_s": 0.0,
            "vm.major_faults_per_s": round(rng.uniform(0, 3), 1),
            "vm.disk_reads_per_s": round(rng.uniform(0, 200), 1),
            "vm.disk_writes_per_s": round(rng.uniform(0, 300), 1),
            "vm.disk_read_bytes_per_s": round(rng.uniform(0, 40e6)),
            "vm.disk_write_bytes_per_s": round(rng.uniform(0, 60e6)),
            "vm.disk_r_await_ms": round(rng.uniform(0.2, 8), 2),
            "vm.disk_w_await_ms": round(rng.uniform(0.2, 12), 2),
            "vm.net_rx_bytes_per_s": round(rng.uniform(0, 20e6)),
            "vm.net_tx_bytes_per_s": round(rng.uniform(0, 20e6)),
            "vm.net_rx_drops_per_s": 0.0,
            "vm.net_tx_drops_per_s": 0.0,
        },
    )


def _cpu(rng: random.Random, level: float, guest: float, steal: float) -> dict[str, float]:
    level = max(0.0, min(level, (97 - guest - steal) / 0.9))  # leave some idle
    parts = {
        "cpu.user_pct": round(level * 0.55, 1),
        "cpu.nice_pct": 0.1,
        "cpu.system_pct": round(level * 0.2, 1),
        "cpu.iowait_pct": round(rng.uniform(0, level / 10), 1),
        "cpu.irq_pct": 0.2,
        "cpu.softirq_pct": round(level * 0.03, 1),
        "cpu.steal_pct": steal,
        "cpu.guest_pct": guest,
    }
    parts["cpu.idle_pct"] = round(100 - sum(parts.values()), 1)
    parts["cpu.busy_pct"] = round(100 - parts["cpu.idle_pct"] - parts["cpu.iowait_pct"], 1)
    return parts


def nic(name: str, rx: float, tx: float, *, vm_name: str | None = None, drops: float = 0.0) -> Row:
    """A /proc/net/dev row; with vm_name it is that VM's tap port."""
    metrics = {
        "nic.rx_bytes_per_s": rx,
        "nic.tx_bytes_per_s": tx,
        "nic.rx_packets_per_s": round(rx / 900, 1),
        "nic.tx_packets_per_s": round(tx / 900, 1),
        "nic.rx_errors_per_s": 0.0,
        "nic.tx_errors_per_s": 0.0,
        "nic.rx_drops_per_s": drops,
        "nic.tx_drops_per_s": 0.0,
    }
    return Row(name, metrics, {"vm": vm_name} if vm_name else {})


def disk(name: str, util: float, rng: random.Random) -> Row:
    """A /proc/diskstats whole-device row."""
    return Row(
        name,
        {
            "disk.reads_per_s": round(util * 3.1, 1),
            "disk.writes_per_s": round(util * 5.7, 1),
            "disk.read_bytes_per_s": round(util * rng.uniform(1e5, 1e6)),
            "disk.write_bytes_per_s": round(util * rng.uniform(1e5, 2e6)),
            "disk.r_await_ms": round(rng.uniform(0.1, 6), 2),
            "disk.w_await_ms": round(rng.uniform(0.1, 9), 2),
            "disk.queue_depth": round(util / 40, 2),
            "disk.util_pct": util,
        },
    )


def fs(mount: str, used: float, free_gib: float) -> Row:
    """A df -P row."""
    metrics = {"fs.used_pct": used, "fs.inodes_used_pct": round(used / 7, 1)}
    return Row(mount, {**metrics, "fs.free_bytes": int(free_gib * GiB)})


def host(
    name: str,
    rng: random.Random,
    *,
    groups: Sequence[str] = ("kvm",),
    level: float = 30.0,
    steal: float = 0.0,
    vms: Sequence[Row] = (),
    cpus: int = 32,
    findings: Sequence[Finding] = (),
    notes: Sequence[str] = (),
    extra_nics: Sequence[Row] = (),
    filesystems: Sequence[Row] | None = None,
) -> HostReport:
    """A collected host with every host metric, its devices and, when given, VMs."""
    running = [v for v in vms if v.metrics.get("vm.state") == "running"]
    guest = round(sum(float(v.metrics.get("vm.cpu_host_pct") or 0) for v in running), 1)
    total = cpus * 8 * GiB
    m: dict[str, float | int | bool | None] = {"cpu.count": cpus, **_cpu(rng, level, guest, steal)}
    load = round(cpus * (level + guest) / 100 * rng.uniform(0.7, 1.3), 2)
    used = round(rng.uniform(25, 92), 1)
    m |= {
        "cpu.max_core_busy_pct": min(100.0, round(m["cpu.busy_pct"] * 1.6, 1)),  # type: ignore[operator]
        "cpu.ctxt_per_s": round(rng.uniform(2e3, 9e4)),
        "cpu.intr_per_s": round(rng.uniform(1e3, 5e4)),
        "cpu.forks_per_s": round(rng.uniform(0, 40), 1),
        "procs.running": rng.randint(1, cpus),
        "procs.blocked": rng.randint(0, 3),
        "load.1m": load,
        "load.5m": round(load * 0.9, 2),
        "load.15m": round(load * 0.8, 2),
        "load.per_cpu": round(load / cpus, 2),
        "mem.total_bytes": total,
        "mem.available_bytes": int(total * (100 - used) / 100),
        "mem.used_pct": used,
        "mem.swap_used_pct": round(rng.uniform(0, 10), 1),
        "mem.commit_pct": round(used * 1.1, 1),
        "mem.hugepages_free_pct": None,
        "paging.swap_in_pages_per_s": 0.0,
        "paging.swap_out_pages_per_s": 0.0,
        "paging.major_faults_per_s": round(rng.uniform(0, 5), 1),
        "oom.kills": 0,
        "psi.cpu_some_pct": round(level / 20, 2),
        "psi.memory_some_pct": 0.0,
        "psi.memory_full_pct": 0.0,
        "psi.io_some_pct": round(m["cpu.iowait_pct"] / 2, 2),  # type: ignore[operator]
        "psi.io_full_pct": round(m["cpu.iowait_pct"] / 3, 2),  # type: ignore[operator]
        "uptime_s": rng.randint(3600, 400 * 86400),
        "host.rebooted": False,
    }
    nics = [nic("enp6s0", round(rng.uniform(1e5, 9e7)), round(rng.uniform(1e5, 9e7)))]
    nics.append(nic("virbr0", round(rng.uniform(0, 1e6)), round(rng.uniform(0, 1e6))))
    nics += extra_nics
    if vms:
        vcpus = sum(int(v.metrics.get("vm.vcpus") or 0) for v in running)
        mem = sum(int(v.metrics.get("vm.mem_max_bytes") or 0) for v in running)
        m |= {
            "hv.vms_running": len(running),
            "hv.vms_total": len(vms),
            "hv.vcpu_overcommit_ratio": round(vcpus / cpus, 3),
            "hv.mem_overcommit_ratio": round(mem / total, 3),
            "hv.vm_cpu_pct": guest,
        }
        for v in running:
            rx, tx = v.metrics["vm.net_tx_bytes_per_s"], v.metrics["vm.net_rx_bytes_per_s"]
            nics.append(nic(f"vnet{len(nics)}", float(rx or 0), float(tx or 0), vm_name=v.name))
    disks = [disk("nvme0n1", round(rng.uniform(1, 95), 1), rng), disk("sda", 2.5, rng)]
    fss = filesystems if filesystems is not None else [fs("/", round(rng.uniform(20, 97), 1), 40)]
    return HostReport(
        name=name,
        address=f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        groups=tuple(groups),
        status=Status.OK,
        error=None,
        interval_s=round(rng.uniform(1.0, 1.01), 3),
        metrics=m,
        rows={
            "disk": tuple(disks),
            "nic": tuple(nics),
            "fs": (*fss, fs("/var/lib/libvirt/images", 61.0, 800)),
            "vm": tuple(vms),
        },
        notes=tuple(notes),
        findings=tuple(findings),
    )


def failed(name: str, status: Status, error: str, groups: Sequence[str] = ("kvm",)) -> HostReport:
    """A host that was not collected, with its reason."""
    return HostReport(name, "192.0.2.7", tuple(groups), status, error)


def exit_code(hosts: Sequence[HostReport], fleet: Sequence[Finding] = ()) -> int:
    """The exit code the rules issue specifies (2 critical, 3 unknown/failed, 1 warning)."""
    sev = {f.severity for h in hosts for f in h.findings} | {f.severity for f in fleet}
    if Severity.CRITICAL in sev:
        return 2
    if Severity.UNKNOWN in sev or any(not h.collected for h in hosts):
        return 3
    return 1 if Severity.WARNING in sev else 0


def report(
    hosts: Sequence[HostReport],
    *,
    findings: Sequence[Finding] = (),
    run: RunInfo = RUN,
    with_fleet: bool = True,
) -> Report:
    """A report over `hosts`, with fleet statistics computed as the analysis stage does."""
    fleet = fleet_stats(hosts) if with_fleet else {}
    return Report(run, tuple(hosts), fleet, exit_code(hosts, findings), tuple(findings))


def sample_report() -> Report:
    """A small mixed fleet: hypervisors, hostile names, a plain host, failures, findings."""
    rng = random.Random(5)
    vms1 = [vm("vm1", rng, cpu_pct=97.4, vcpus=4), vm("vm2", rng), vm(HOSTILE_VM, rng)]
    vms1.append(vm("build-7", rng, state="shutoff"))
    crit = finding("vm-cpu-saturated", Severity.CRITICAL, "vm", "vm1", "vm.cpu_pct", 97.4, "~:95")
    kvm01 = host("kvm01", rng, groups=("kvm", "prod"), level=35, vms=vms1, findings=[crit])
    kvm02 = host(
        "kvm02",
        rng,
        groups=("kvm", "prod"),
        level=20,
        vms=[vm(f"app-{i:02d}", rng) for i in range(12)],
        extra_nics=[nic(HOSTILE_NIC, 2e3, 1e3, drops=4.5)],
    )
    evil_vms = [vm(HOSTILE_VM, rng, cpu_pct=55.0), vm("<img src=x onerror=alert(4)>", rng)]
    evil = host(
        HOSTILE_HOST,
        rng,
        groups=("kvm", "<b>grp</b>"),
        level=88,
        steal=7.5,
        vms=evil_vms,
        filesystems=[fs(HOSTILE_MOUNT, 99.1, 0.2)],
        notes=["note with <em>markup</em> & an ampersand"],
        findings=[
            finding("fs-full", Severity.CRITICAL, "fs", HOSTILE_MOUNT, "fs.used_pct", 99.1, "~:95"),
            finding(
                "host-steal", Severity.WARNING, "host", HOSTILE_HOST, "cpu.steal_pct", 7.5, "> 5"
            ),
        ],
    )
    web01 = host(
        "web01",
        rng,
        groups=("web", "prod"),
        level=12,
        cpus=8,
        findings=[finding("fs-full", Severity.WARNING, "fs", "/", "fs.used_pct", 88.0, "~:85")],
        filesystems=[fs("/", 88.0, 5)],
    )
    hosts = [
        kvm01,
        kvm02,
        evil,
        web01,
        host("web02", rng, groups=("web",), level=9, cpus=8),
        host("web03", rng, groups=("web",), level=11, cpus=8),
        failed("kvm03", Status.UNREACHABLE, "connect to 10.0.0.13:22 timed out after 10 s"),
        failed("kvm04", Status.AUTH_FAILED, "Permission denied (publickey) for user fleetmon"),
        failed("db01", Status.HOSTKEY_MISMATCH, HOSTILE_ERROR, groups=("db",)),
    ]
    fleet_finding = finding(
        "fleet-busy", Severity.WARNING, "fleet", "kvm", "fleet.cpu.busy_pct.p95", 81.2, "> 80"
    )
    notes = ("host key checking off for 1 host: db01",)
    run = dataclasses.replace(RUN, host_key_notes=notes, limit="kvm:web")
    return report(hosts, findings=[fleet_finding], run=run)


def sited_report() -> Report:
    """sample_report with sites and hypervisors: kvm01, kvm02 and kvm03 (unreachable) at
    `paris`, kvm01 and kvm02 KVM, the hostile host a Xen at `lyon`; the web and db hosts
    have no site and no hypervisor."""
    base = sample_report()
    where = {"kvm01": ("paris", "kvm"), "kvm02": ("paris", "kvm"), "kvm03": ("paris", "none"),
             HOSTILE_HOST: ("lyon", "xen")}  # fmt: skip
    hosts = tuple(
        dataclasses.replace(h, site=where[h.name][0], hypervisor=where[h.name][1])
        if h.name in where
        else h
        for h in base.hosts
    )
    return dataclasses.replace(base, hosts=hosts)


def fleet_report(n_hosts: int = 500, vms_per_host: int = 20, seed: int = 0) -> Report:
    """A large fleet for the benchmark: mostly hypervisors, a few failures and findings."""
    rng = random.Random(seed)
    hosts: list[HostReport] = []
    for i in range(n_hosts):
        name = f"kvm{i:04d}.dc{i % 3}.example.net"
        groups = ("kvm", f"dc{i % 3}", "prod" if i % 4 else "staging")
        if i % 97 == 13:
            hosts.append(failed(name, Status.TIMEOUT, "probe timed out after 30 s", groups))
            continue
        vms = [vm(f"guest-{i:04d}-{j:02d}", rng) for j in range(vms_per_host)]
        found = []
        if i % 11 == 0:
            found.append(
                finding("host-steal", Severity.WARNING, "host", name, "cpu.steal_pct", 6.1, "> 5")
            )
        level = rng.uniform(5, 60) if i % 50 else 97.0
        hosts.append(host(name, rng, groups=groups, level=level, vms=vms, findings=found))
    return report(hosts)


def captured_report() -> Report:
    """A report the real pipeline computed from captured probe output (tests/probetext.py).

    kvm01 is sysstat's root1 -> root2 with the libvirt 9 lab's two guests; web01 is root2 ->
    root3 without VMs; a third host has a hostile inventory name; a fourth timed out.
    """

    def raw(name: str, stdout: str, groups: tuple[str, ...]) -> RawResult:
        spec = HostSpec(name=name, address="192.0.2.10", groups=groups)
        return RawResult(spec, Status.OK, None, stdout=stdout, exit_status=0, nonce=NONCE)

    timeout = HostSpec(name="kvm02", address="192.0.2.11", groups=("kvm",))
    raws = [
        raw("kvm01", probe_stdout(kvm=True), ("kvm", "prod")),
        raw("web01", probe_stdout(("root2", "root3")), ("web",)),
        raw(HOSTILE_HOST, probe_stdout(kvm=True), ("kvm",)),
        RawResult(timeout, Status.TIMEOUT, "probe timed out after 30 s"),
    ]
    return build_report(raws, RUN)


def hostile_report() -> Report:
    """sample_report's fleet plus a host whose every name breaks some exposition format."""
    rng = random.Random(7)
    vms = [vm(HOSTILE_QUOTE, rng, cpu_pct=41.2), vm(HOSTILE_COMMA, rng), vm(HOSTILE_BACKSLASH, rng)]
    findings = [
        finding("vm-cpu", Severity.WARNING, "vm", HOSTILE_QUOTE, "vm.cpu_pct", 41.2, "> 40"),
        finding("fs-full", Severity.CRITICAL, "fs", HOSTILE_COMMA, "fs.used_pct", 99.0, "> 95"),
    ]
    evil = host(
        HOSTILE_COMMA,
        rng,
        groups=("kvm", HOSTILE_QUOTE),
        vms=vms,
        extra_nics=[nic(HOSTILE_QUOTE, 10.0, 20.0)],
        filesystems=[fs(HOSTILE_COMMA, 99.0, 1), fs(HOSTILE_BACKSLASH, 10.0, 9)],
        findings=findings,
    )
    ctr = Row(HOSTILE_QUOTE, {
        "ctr.cpu_pct": 150.0, "ctr.cpu_host_pct": 4.7, "ctr.cpu_throttled_pct": 2.0,
        "ctr.mem_bytes": 3 * GiB, "ctr.mem_limit_bytes": 4 * GiB, "ctr.mem_limit_pct": 75.0,
        "ctr.mem_anon_bytes": 2 * GiB, "ctr.mem_file_bytes": GiB, "ctr.oom_kills": 1,
        "ctr.disk_read_bytes_per_s": 1e6, "ctr.disk_write_bytes_per_s": 2e6,
        "ctr.psi_cpu_some_pct": 1.5, "ctr.psi_memory_some_pct": 0.0, "ctr.pids": 12,
    })  # fmt: skip
    guest = Row(f"{HOSTILE_COMMA}/{HOSTILE_QUOTE}", {
        "guest.steal_pct": 3.0, "guest.vcpu_delay_pct": 2.5, "guest.busy_pct": 40.0,
        "guest.vm_cpu_pct": 41.2, "guest.mem_available_bytes": GiB, "guest.balloon_bytes": 2 * GiB,
    })  # fmt: skip
    evil = dataclasses.replace(
        evil, hypervisor="kvm", rows={**evil.rows, "ctr": (ctr,), "guest": (guest,)},
        virt=Virt("qemu", "guest", HOSTILE_QUOTE + HOSTILE_BACKSLASH),  # a DMI name from the host
    )  # fmt: skip
    base = sample_report()
    hosts = (*base.hosts, evil, failed(HOSTILE_QUOTE, Status.UNREACHABLE, HOSTILE_ERROR))
    return report(hosts, findings=base.findings, run=base.run)
