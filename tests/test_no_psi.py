"""A host whose kernel offers no PSI (/proc/pressure missing: before 4.20, or psi=0 as RHEL 8
boots) is healthy, not UNKNOWN: METRICS.md's "absent" (not offered) against "null" (not
computable this run), through the command line's exit code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from clirun import ROOT, fleetmon
from rootonly import require_root

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.io.rawstore import load_raw
from fleetmon.model import Severity
from fleetmon.rules import Rule, RuleSet, evaluate, parse_rules

NO_PSI = ROOT / "tests" / "data" / "fleetmon-capture" / "no-psi-raw"
NOTES = [
    f"/proc/pressure/{kind} absent (kernel < 4.20 or PSI off): psi.{kind}_* not offered"
    for kind in ("cpu", "io", "memory")
]


def _host(report: dict[str, object]) -> dict[str, object]:
    hosts = report["hosts"]
    assert isinstance(hosts, list)
    (host,) = hosts
    assert isinstance(host, dict)
    return host


def test_real_capture_without_psi_is_healthy_with_the_shipped_rules() -> None:
    # The shipped playbooks (no -r): their four PSI rules stay quiet, the exit code is 0.
    r = fleetmon("report", NO_PSI, "--history", "none", "--format", "json")
    assert (r.returncode, r.stderr) == (0, "")
    host = _host(json.loads(r.stdout))
    metrics = host["metrics"]
    assert isinstance(metrics, dict)
    assert [k for k in metrics if k.startswith("psi.")] == []  # absent, not null
    assert metrics["cpu.busy_pct"] is not None
    assert [n for n in host["notes"] if "pressure" in n] == NOTES  # type: ignore[union-attr]
    assert host["findings"] == []  # the JSON lists what is not OK: nothing


def test_a_rule_without_a_guard_does_not_judge_a_metric_not_offered() -> None:
    rules = parse_rules(
        "- hosts: all\n"
        "  rules:\n"
        "    - name: io-stall\n"
        "      metric: psi.io_full_pct\n"
        "      warning: '> 10'\n"
        "    - name: stalls\n"
        "      expr: psi.cpu_some_pct > 50 or psi.memory_some_pct > 5\n"
        "      severity: warning\n"
        "    - name: stall-when-busy\n"
        "      metric: cpu.busy_pct\n"
        "      when: psi.cpu_some_pct > 1\n"
        "      warning: '> 0'\n",
        "site.yaml",
    )
    _run, raws = load_raw(str(NO_PSI))
    hosts, _ = evaluate(
        RuleSet(tuple(r for r in rules if isinstance(r, Rule))),
        [analyse_host(r) for r in raws],
        {r.host.name: r.host for r in raws},
        {},
    )
    found = {f.rule: (f.severity, f.message) for f in hosts[0].findings}
    assert found == {
        "io-stall": (
            Severity.OK,
            "not judged: psi.io_full_pct not offered by nopsi-vm (see notes)",
        ),
        "stalls": (
            Severity.OK,
            "not judged: psi.cpu_some_pct, psi.memory_some_pct not offered by nopsi-vm (see notes)",
        ),
        # A when: on a metric the host does not offer cannot hold: no finding.
    }


def test_live_probe_on_a_kernel_view_without_psi(tmp_path: Path) -> None:
    """The real probe on this machine, /proc/pressure hidden by a mount namespace."""
    require_root("a mount namespace hides /proc/pressure from the probe")
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed: tests/setup/system-deps.sh"
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        "      fleetmon_hypervisor: none\n",
        encoding="utf-8",
    )
    out = tmp_path / "report.json"
    script = (
        # /proc made private first: --propagation unchanged (a chroot's / is no mount point,
        # so unshare cannot make it private) must not let the tmpfs reach the machine's /proc.
        "mount --make-rprivate /proc && "
        'mount -t tmpfs none /proc/pressure && exec "$0" -m fleetmon run "$1" --interval 1 '
        '--no-lock -q --history none --format json -o "$2"'
    )
    r = subprocess.run(
        [
            unshare,
            "-m",
            "--propagation",
            "unchanged",
            "sh",
            "-c",
            script,
            sys.executable,
            str(inv),
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.stderr == ""
    host = _host(json.loads(out.read_text(encoding="utf-8")))
    assert host["status"] == "ok"
    assert [k for k in host["metrics"] if k.startswith("psi.")] == []  # type: ignore[union-attr]
    assert [n for n in host["notes"] if "pressure" in n] == NOTES  # type: ignore[union-attr]
    severities = {f["severity"] for f in host["findings"]}  # type: ignore[union-attr]
    # This machine's real load may warn (load per CPU under a busy test run): never unknown.
    assert "unknown" not in severities
    assert r.returncode == (2 if "critical" in severities else 1 if "warning" in severities else 0)
