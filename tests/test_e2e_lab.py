"""End to end on the lab hypervisor: `fleetmon run` collects it through the loopback sshd.

The real CLI, the real asyncssh client, a real OpenSSH sshd on 127.0.0.1, the real probe,
and a real libvirt + QEMU with two busy guests. Each VM's vm.cpu_pct is checked against
`virsh domstats` read independently just before and just after the run: the probe's two
samples lie inside that window, so the CPU time it saw cannot exceed virsh's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import sshd_util
    from lab.conftest_lab import Lab

pytest_plugins = ["lab.conftest_lab"]
pytestmark = [pytest.mark.lab, pytest.mark.sshd, pytest.mark.slow]

FLEETMON = Path(sys.executable).parent / "fleetmon"


def fleetmon_run(
    inventory: Path, known_hosts: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETMON), "run", str(inventory), "--known-hosts", str(known_hosts), "--no-lock",
         "-q", "--no-rules", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_lab_hypervisor_through_sshd_json(
    lab_hypervisor: Lab, sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    inv = sshd.inventory(1, tmp_path, prefix="kvm")
    before = lab_hypervisor.domstats()
    proc = fleetmon_run(inv, sshd.known_hosts, "--format", "json", "--interval", "2.5")
    after = lab_hypervisor.domstats()
    assert proc.returncode == 0, proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    assert host["status"] == "ok", host["error"]
    dt = host["interval_s"]
    assert 2.5 <= dt < 4
    vms: dict[str, dict[str, Any]] = {v["name"]: v["metrics"] for v in host["vms"]}
    assert set(lab_hypervisor.domains) <= set(vms)
    for name in lab_hypervisor.domains:
        m = vms[name]
        assert m["vm.state"] == "running"
        assert m["vm.vcpus"] == 1
        used_ns = m["vm.cpu_pct"] / 100 * m["vm.vcpus"] * 1e9 * dt
        outer_ns = after[name].num("cpu.time") - before[name].num("cpu.time")  # type: ignore[operator]
        assert 0 < used_ns <= outer_ns * 1.0001, (name, used_ns, outer_ns)
        for key in ("vm.vcpu_delay_pct", "vm.mem_used_pct", "vm.disk_reads_per_s",
                    "vm.disk_write_bytes_per_s", "vm.net_rx_bytes_per_s",
                    "vm.net_tx_bytes_per_s"):  # fmt: skip
            assert m[key] > 0, (name, key)
    metrics = host["metrics"]
    running = sum(1 for m in vms.values() if m["vm.state"] == "running")
    assert metrics["hv.vms_running"] == running
    assert metrics["hv.vcpu_overcommit_ratio"] == pytest.approx(running / metrics["cpu.count"])
    assert metrics["hv.mem_overcommit_ratio"] > 0
    assert metrics["hv.vm_cpu_pct"] == pytest.approx(
        sum(m["vm.cpu_host_pct"] for m in vms.values() if m["vm.cpu_host_pct"] is not None)
    )
    ports = {n["name"]: n.get("labels", {}).get("vm") for n in host["nics"]}
    for tap, vm in lab_hypervisor.taps.items():
        assert ports.get(tap) == vm, (tap, ports)


def test_lab_hypervisor_through_sshd_text(
    lab_hypervisor: Lab, sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    inv = sshd.inventory(1, tmp_path, prefix="kvm")
    proc = fleetmon_run(inv, sshd.known_hosts, "--format", "text", "--interval", "1")
    assert proc.returncode == 0, proc.stderr
    for name in lab_hypervisor.domains:
        assert name in proc.stdout


def test_lab_hypervisor_live_through_sshd(
    lab_hypervisor: Lab, sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    """`fleetmon top --batch` streams the lab through sshd (the looping probe, its output
    through awk): the VMs view of the last frame has every guest, running, with the CPU
    it used over the tick, of the host and of its one vCPU."""
    inv = sshd.inventory(1, tmp_path, prefix="kvm")
    proc = subprocess.run(
        [str(FLEETMON), "top", str(inv), "--known-hosts", str(sshd.known_hosts), "--no-rules",
         "-b", "-n", "4", "-d", "1", "--view", "vms", "--sort", "VM"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.split("fleetmon top - ")[-1].splitlines()
    assert "1 live" in last[0], last[0]
    heading = next(ln.split() for ln in last if ln.startswith("VM "))
    rows = {ln.split()[0]: dict(zip(heading, ln.split(), strict=False)) for ln in last
            if ln.split() and ln.split()[0] in lab_hypervisor.domains}  # fmt: skip
    assert set(rows) == set(lab_hypervisor.domains), last
    for name, row in rows.items():
        assert "running" in row.values(), (name, row)
        assert float(row["%VCPU"]) > 0, (name, row)
        cpus = os.cpu_count() or 1
        assert float(row["%CPU"]) == pytest.approx(float(row["%VCPU"]) / cpus, abs=0.15), row


def test_lab_domstats_read_by_shape_are_what_the_parser_makes(lab_hypervisor: Lab) -> None:
    """The streaming collector's shaped reading (sources/domshape.py) on the lab's own
    `virsh domstats`, as the probe asks for them, sample after sample: each read equals
    parse_domstats() of the same text, and from the second sample on a shape reads them
    (the busy guests' counters move: the digits differ, the layout does not)."""
    from fleetmon.sources.domshape import Shape, parse_domstats_shaped
    from fleetmon.sources.virsh import parse_domstats

    argv = ["virsh", "-q", "-c", lab_hypervisor.uri, "domstats", "--raw", "--state",
            "--cpu-total", "--balloon", "--vcpu", "--interface", "--block"]  # fmt: skip
    known: Any = None
    texts: list[str] = []
    served = 0
    for _ in range(6):
        text = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
        shape = known
        read, known = parse_domstats_shaped(text, known)
        assert read == parse_domstats(text)
        assert {d.name for d in read} >= set(lab_hypervisor.domains)
        served += isinstance(shape, Shape) and known is shape
        texts.append(text)
    assert len(set(texts)) == len(texts)  # the counters moved between the samples
    assert served >= 3, "no shape read the lab's samples"
