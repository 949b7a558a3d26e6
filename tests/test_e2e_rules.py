"""End to end: rules firing on hosts collected through the real sshd, health-check outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sshd_util
from clirun import fleetmon

pytestmark = pytest.mark.sshd

RULES = """\
- name: site checks
  hosts: all:!h03
  rules:
    - name: has-memory
      metric: mem.total_bytes
      critical: "> 0"
      message: "{{ host }} has {{ (value / 1048576) | round | int }} MiB"
    - name: cpus-known
      metric: cpu.count
      warning: "< 1"
    - name: root-fs
      metric: fs.used_pct
      warning: "~:100"
      when: "subject == '/'"
"""


def test_a_rule_fires_on_every_selected_host_through_sshd(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    inv = sshd.inventory(4, tmp_path)
    rules = tmp_path / "site.yaml"
    rules.write_text(RULES, encoding="utf-8")
    out = tmp_path / "r.json"
    junit = tmp_path / "r.xml"
    r = fleetmon(
        "run", inv, "--interval", "0.5", "--no-default-rules", "-r", rules,
        "--known-hosts", sshd.known_hosts, "--format", "nagios",
        "--json", out, "--junit", junit, "--timeout", "60",
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    status_line = r.stdout.splitlines()[0]
    assert status_line.startswith("FLEETMON CRITICAL - 4 hosts: 3 critical (h01, h02, h04),")
    assert "; findings: 3 critical, 0 warning |" in status_line
    assert "'critical'=3;;;0" in status_line
    doc = json.loads(out.read_text())
    assert doc["exit_code"] == 2
    mem_total = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    for host in doc["hosts"]:
        assert host["status"] == "ok", host["error"]
        fired = [f for f in host["findings"] if f["rule"] == "has-memory"]
        if host["name"] == "h03":  # excluded by the play's pattern
            assert fired == []
            continue
        (f,) = fired
        assert f["severity"] == "critical"
        assert f["value"] == mem_total
        assert f["message"] == f"{host['name']} has {round(mem_total / 1048576)} MiB"
    suites = ET.parse(junit).getroot()
    assert sum(int(s.get("failures", "0")) for s in suites.iter("testsuite")) == 3
