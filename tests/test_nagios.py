"""`--format nagios`: status line, perfdata per the plugin guidelines, one line per finding."""

from __future__ import annotations

import dataclasses
import re

from test_rules_util import host

from fleetmon.model import Finding, Report, RunInfo, Severity, Status
from fleetmon.render.nagios import render_nagios

RUN = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml")


def fd(rule: str, sev: Severity, subject: str, msg: str) -> Finding:
    return Finding(rule, sev, "vm", subject, "vm.cpu_pct", 99.0, "~:95", msg)


def report(code: int) -> Report:
    kvm01 = dataclasses.replace(
        host("kvm01", ("kvm",), {}),
        findings=(
            fd("vm-cpu", Severity.OK, "db-1", "fine"),
            fd("vm-cpu", Severity.WARNING, "web|4", "web|4 CPU 91%\non kvm01"),
            fd("vm-cpu", Severity.CRITICAL, "web-3", "web-3 CPU 99%"),
        ),
    )
    kvm02 = host("kvm02", ("kvm",), status=Status.UNREACHABLE, error="connect timed out after 10 s")
    fleet = (
        Finding(
            "fleet-busy",
            Severity.UNKNOWN,
            "fleet",
            "fleet.cpu.busy_pct.p95",
            "fleet.cpu.busy_pct.p95",
            None,
            None,
            "fleet.cpu.busy_pct.p95 not reported",
        ),
    )
    return Report(RUN, (kvm01, kvm02), {}, code, fleet)


def test_nagios_output() -> None:
    assert render_nagios(report(2)) == (
        "FLEETMON CRITICAL - 1 critical, 1 warning, 1 unknown, 1 not collected on 2 hosts"
        " | 'critical'=1;;;0 'warning'=1;;;0 'unknown'=1;;;0 'unreachable'=1;;;0 'hosts'=2;;;0\n"
        "CRITICAL: kvm01 web-3 vm-cpu: web-3 CPU 99%\n"
        "UNKNOWN: fleet fleet-busy: fleet.cpu.busy_pct.p95 not reported\n"
        "WARNING: kvm01 web/4 vm-cpu: web/4 CPU 91% on kvm01\n"
        "NOT COLLECTED: kvm02 unreachable: connect timed out after 10 s\n"
    )


PERF = re.compile(r"'[^'=]+'=\d+(\.\d+)?[a-zA-Z%]*;[^; ]*;[^; ]*;[^; ]*(;[^; ]*)?")


def test_plugin_guidelines_shape() -> None:
    for code, word in ((0, "OK"), (1, "WARNING"), (2, "CRITICAL"), (3, "UNKNOWN"), (4, "UNKNOWN")):
        out = render_nagios(report(code))
        first, *rest = out.splitlines()
        assert first.startswith(f"FLEETMON {word} - ")
        assert first.count("|") == 1  # a second | would be read as more perfdata
        for item in first.split(" | ")[1].split():
            assert PERF.fullmatch(item), item
        assert all("|" not in line for line in rest)


def test_all_ok() -> None:
    r = Report(RUN, (host("a"),), {}, 0, ())
    assert render_nagios(r) == (
        "FLEETMON OK - 0 critical, 0 warning on 1 host | 'critical'=0;;;0 'warning'=0;;;0"
        " 'unknown'=0;;;0 'unreachable'=0;;;0 'hosts'=1;;;0\n"
    )


def test_host_values_cannot_break_the_plugin_output() -> None:
    from fleetmon.model import Finding, HostReport, Report, RunInfo, Severity, Status
    from fleetmon.render.nagios import render_nagios

    bad = "evil\nvm|x\x1b[2J"
    f = Finding("r1", Severity.CRITICAL, "vm", bad, "vm.cpu_pct", 99.0, "~:95", "m\n| \x07")
    host = HostReport("h", "h", (), Status.OK, None, findings=(f,))
    down = HostReport("d", "d", (), Status.UNREACHABLE, "refused\x1b]0;x\x07")
    text = render_nagios(Report(RunInfo("0.1.0", "t", 1.0, "inv"), (host, down), {}, 2))
    lines = text.splitlines()
    assert len(lines) == 3  # status line, one finding, one host not collected
    assert lines[0].count("|") == 1  # only the perfdata separator
    assert all("|" not in ln for ln in lines[1:])
    assert not any(c in text for c in "\x1b\x07")
    assert "evil vm/x\\x1b[2J" in lines[1]
