"""End to end: `fleetmon run` on 20 inventory hosts behind a real OpenSSH sshd, plus one down.

The probe runs for real on this machine's /proc, so the test asserts invariants (CPU parts
sum to 100, memory within bounds, the interval close to the requested one) and the figures
that are fixed for this machine (CPU count, MemTotal).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sshd_util
import yaml

pytestmark = pytest.mark.sshd

CPU_PARTS = (
    "cpu.user_pct",
    "cpu.nice_pct",
    "cpu.system_pct",
    "cpu.iowait_pct",
    "cpu.irq_pct",
    "cpu.softirq_pct",
    "cpu.steal_pct",
    "cpu.guest_pct",
    "cpu.idle_pct",
)


def _local_facts() -> tuple[int, int]:
    """(cpuN lines in /proc/stat, MemTotal in bytes) of this machine."""
    stat = Path("/proc/stat").read_text().splitlines()
    cpus = sum(1 for ln in stat if ln.startswith("cpu") and ln[3:4].isdigit())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    [total_kib] = [int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal:")]
    return cpus, total_kib * 1024


def test_fleetmon_run_json_over_real_sshd(sshd: sshd_util.Sshd, tmp_path: Path) -> None:
    inv = sshd.inventory(20, tmp_path)
    doc = yaml.safe_load(inv.read_text())
    closed = sshd_util.free_port("127.0.0.2")
    doc["all"]["hosts"]["down"] = {"ansible_host": "127.0.0.2", "ansible_port": closed}
    inv.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "fleet.json"
    fleetmon = Path(sys.executable).parent / "fleetmon"
    started = time.monotonic()
    argv = [str(fleetmon), "run", str(inv), "--known-hosts", str(sshd.known_hosts)]
    argv += ["--interval", "1", "--format", "json", "-o", str(out)]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    wall_s = time.monotonic() - started
    assert out.exists(), proc.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert proc.returncode == report["exit_code"]
    # One host not collected: UNKNOWN (3) unless a rule found something critical (2).
    assert proc.returncode in (2, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    hosts = {h["name"]: h for h in report["hosts"]}
    assert len(hosts) == 21
    down = hosts.pop("down")
    assert down["status"] == "unreachable"
    assert down["error"] == f"connect to 127.0.0.2:{closed} refused"
    assert report["summary"]["collected"] == 20
    cpus, mem_total = _local_facts()
    for name, h in hosts.items():
        assert h["status"] == "ok", (name, h["error"])
        m = h["metrics"]
        # At nice 19 a busy machine may stretch the interval, never beyond the whole run.
        assert 1.0 - 0.02 <= h["interval_s"] <= wall_s, name
        assert abs(sum(m[k] for k in CPU_PARTS) - 100.0) <= 0.5, name
        assert 0.0 <= m["cpu.busy_pct"] <= 100.0
        assert m["cpu.count"] == cpus
        assert m["mem.total_bytes"] == mem_total
        assert 0 < m["mem.available_bytes"] <= mem_total
        assert 0.0 <= m["mem.used_pct"] <= 100.0
        assert m["uptime_s"] > 0
        assert m["host.rebooted"] is False
    # Concurrent: in series, twenty probes of at least 1 s each would read this machine's
    # uptime at least 19 s apart; at once, they read it within a few seconds (a wall-clock
    # bound instead failed on a busy machine: 15.9 s beside two busy loops).
    uptimes = [h["metrics"]["uptime_s"] for h in hosts.values()]
    assert max(uptimes) - min(uptimes) < 19.0
