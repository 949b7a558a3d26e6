"""End to end on the Xen path, with stand-ins: no Xen host exists here.

`fleetmon run` (real CLI, local connection, the real probe script) with PATH starting at
tests/bin/xen-standins, whose `xl` prints real xl output recorded in the Xen fixtures and
whose `xentop` prints output SYNTHESIZED from xentop.c's format strings (not a capture). The
figures are therefore exact: they prove the probe's Xen branch, the split and the VM math.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

FLEETMON = Path(sys.executable).parent / "fleetmon"
STANDINS = Path(__file__).parent / "bin" / "xen-standins"
MIB = 1024 * 1024


def run_xen(tmp_path: Path, standin_set: str, path: Path = STANDINS) -> dict[str, Any]:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts:\n    dom0:\n      ansible_connection: local\n")
    env = {
        **os.environ,
        "PATH": f"{path}:{os.environ['PATH']}",
        "XEN_STANDIN_SET": standin_set,
    }
    proc = subprocess.run(
        [str(FLEETMON), "run", str(inv), "--no-lock", "-q", "--no-rules", "--interval", "1",
         "--format", "json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    assert host["status"] == "ok", host["error"]
    return host  # type: ignore[no-any-return]


def test_xen_dom0_with_standins(tmp_path: Path) -> None:
    host = run_xen(tmp_path, "docs")
    vms = {v["name"]: v["metrics"] for v in host["vms"]}
    assert list(vms) == ["win", "linux"]
    linux = vms["linux"]
    assert linux["vm.cpu_pct"] == pytest.approx(75.2)
    assert linux["vm.cpu_host_pct"] == pytest.approx(37.6)
    # The counters' rates are over the time between xentop's two iterations as the probe
    # measured it (its /proc/uptime stamps): the stand-in's `sleep 1` and its reads, at
    # least the -d of 1 s, and one interval for every counter of every guest.
    # NETTX counts what dom0 sent down the guest's vif: the guest's receive (1024 KiB).
    interval = 1024 * 1024 / linux["vm.net_rx_bytes_per_s"]
    assert 1.0 <= interval < 2.0
    assert linux["vm.net_tx_bytes_per_s"] == pytest.approx(2 * 1024 / interval)
    assert linux["vm.disk_read_bytes_per_s"] == pytest.approx(4096 * 512 / interval)
    assert linux["vm.mem_max_bytes"] == 2098176 * 1024
    assert vms["win"]["vm.disk_reads_per_s"] == pytest.approx(10 / interval)
    assert linux["vm.disk_oo_per_s"] == pytest.approx(12 / interval)  # VBD_OO 2 → 14
    assert "vm.net_rx_packets_per_s" not in linux  # xentop counts no packets: not offered
    metrics = host["metrics"]
    assert metrics["hv.vms_running"] == 2
    assert metrics["hv.vcpu_overcommit_ratio"] == pytest.approx(3 / 4)
    assert metrics["hv.vm_cpu_pct"] == pytest.approx((0.8 + 150.4) / 4)
    assert "cpu.busy_pct" in metrics  # dom0's own figures are still there
    assert (
        "Xen dom0: /proc describes dom0 only; host capacity from xl info (4 CPUs, 6141 MiB)"
        in host["notes"]
    )


def test_xen_old_xentop_without_full_names(tmp_path: Path) -> None:
    host = run_xen(tmp_path, "ganeti")
    vms = {v["name"]: v["metrics"] for v in host["vms"]}
    assert vms["testinstance.example.com"]["vm.cpu_pct"] == pytest.approx(199.9 / 2)
    assert vms["web3106215069.example.com"]["vm.vcpus"] == 1
    assert host["metrics"]["hv.mem_overcommit_ratio"] == pytest.approx(
        (1049600 + 2098176 + 4195328) * 1024 / (16378 * MIB)
    )


def test_xen_dom0_without_xentop(tmp_path: Path) -> None:
    # Only the `xl` stand-in on PATH: the probe finds no xentop, sleeps instead, and VM CPU
    # comes from xl list's Time(s), which the stand-in prints unchanged (ΔTime 0: a true 0).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    xl = bin_dir / "xl"  # not a symlink: the stand-in finds its data next to itself
    xl.write_text(f'#!/bin/sh\nexec {STANDINS / "xl"} "$@"\n')
    xl.chmod(0o755)
    host = run_xen(tmp_path, "docs", path=bin_dir)
    vms = {v["name"]: v["metrics"] for v in host["vms"]}
    assert {n: (m["vm.cpu_pct"], m["vm.cpu_host_pct"]) for n, m in vms.items()} == {
        "win": (0.0, 0.0),
        "linux": (0.0, 0.0),
    }
    assert vms["linux"]["vm.disk_reads_per_s"] is None
    assert host["interval_s"] >= 1.0  # the sleep took xentop's place
    (note,) = [n for n in host["notes"] if "Time(s)" in n]
    assert note.startswith(
        "VM CPU figures from xl list's Time(s) (0.1 s resolution) because xentop was"
        " unavailable (xentop failed: "
    )


def test_xen_stub_domains_are_rows_but_not_vms(tmp_path: Path) -> None:
    host = run_xen(tmp_path, "stubdom")
    vms = {v["name"]: v for v in host["vms"]}
    assert list(vms) == ["Xenstore", "hvm1", "hvm1-dm", "pv1"]
    assert vms["hvm1-dm"]["labels"]["stub_of"] == "hvm1"
    assert vms["Xenstore"]["labels"]["service"] == "xenstore"
    assert "stub_of" not in vms["hvm1"]["labels"]
    metrics = host["metrics"]
    assert (metrics["hv.vms_total"], metrics["hv.vms_running"]) == (2, 2)
    assert metrics["hv.vm_cpu_pct"] == pytest.approx((0.5 + 60.0 + 25.0 + 10.0) / 4)
