"""`--format nagios`: status line, perfdata per the plugin guidelines, one line per finding."""

from __future__ import annotations

import dataclasses
import re

import pytest
from clirun import fleetmon
from test_rules_util import host

from fleetmon.model import Finding, Report, RunInfo, Severity, Status
from fleetmon.render.nagios import MIN_BYTES, render_nagios

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
    # Hosts counted by their worst finding and named; then the findings counted. The long
    # output: critical, the hosts not collected, warning, unknown.
    assert render_nagios(report(2)) == (
        "FLEETMON CRITICAL - 2 hosts: 1 critical (kvm01), 0 warning, 1 not collected (kvm02),"
        " 0 ok; findings: 1 critical, 1 warning, 1 unknown"
        " | 'critical'=1;;;0 'warning'=1;;;0 'unknown'=1;;;0 'unreachable'=1;;;0 'hosts'=2;;;0"
        " 'hosts_critical'=1;;;0 'hosts_warning'=0;;;0 'hosts_unknown'=0;;;0\n"
        "CRITICAL: kvm01 web-3 vm-cpu: web-3 CPU 99%\n"
        "NOT COLLECTED: kvm02 unreachable: connect timed out after 10 s\n"
        "WARNING: kvm01 web/4 vm-cpu: web/4 CPU 91% on kvm01\n"
        "UNKNOWN: fleet fleet-busy: fleet.cpu.busy_pct.p95 not reported\n"
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
        "FLEETMON OK - 1 host: 0 critical, 0 warning, 1 ok; findings: 0 critical, 0 warning"
        " | 'critical'=0;;;0 'warning'=0;;;0 'unknown'=0;;;0 'unreachable'=0;;;0 'hosts'=1;;;0"
        " 'hosts_critical'=0;;;0 'hosts_warning'=0;;;0 'hosts_unknown'=0;;;0\n"
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


def _fleet(n: int) -> Report:
    """`n` hosts, each with a warning of its own rule and every tenth a critical; every third
    not collected, with a long reason."""
    hosts = []
    for i in range(n):
        if i % 3 == 2:
            hosts.append(host(f"h{i:04d}", status=Status.UNREACHABLE, error="refused " * 8))
            continue
        found = [Finding(f"r{i}", Severity.WARNING, "host", f"h{i:04d}", "cpu.busy_pct", 91.0,
                         "> 90", f"busy {i} " * 6)]  # fmt: skip
        if i % 10 == 0:
            found.append(Finding(f"c{i}", Severity.CRITICAL, "host", f"h{i:04d}", "mem.used_pct",
                                 99.0, "> 95", f"full {i} " * 6))  # fmt: skip
        hosts.append(dataclasses.replace(host(f"h{i:04d}"), findings=tuple(found)))
    return Report(RUN, tuple(hosts), {}, 2, ())


def test_long_output_is_capped_worst_first_with_the_hosts_not_collected_kept() -> None:
    out = render_nagios(_fleet(150), max_bytes=8000)
    assert len(out.encode()) <= 8000
    first, *rest = out.splitlines()
    # The worst hosts are named on the status line, three of them and how many more.
    assert "10 critical (h0000, h0010, h0030 +7), 90 warning (h0001, h0003, h0004 +87)" in first
    assert "50 not collected (h0002, h0005, h0008 +47)" in first
    assert "findings: 10 critical, 100 warning" in first
    kinds = [line.split(":")[0] for line in rest[:-1]]
    assert kinds == sorted(kinds, key=["CRITICAL", "NOT COLLECTED", "WARNING"].index)
    # Every critical and every host not collected made it; the warnings were cut.
    assert (kinds.count("CRITICAL"), kinds.count("NOT COLLECTED")) == (10, 50)
    assert 0 < kinds.count("WARNING") < 100
    assert rest[-1] == f"... {1 + 10 + 50 + 100 - 1 - len(kinds)} more lines cut at " + (
        "--nagios-max-bytes 8000"
    )
    # A larger budget keeps everything in the same order: the cut only drops the tail.
    whole = render_nagios(_fleet(150), max_bytes=10**7).splitlines()
    assert len(whole) == 1 + 10 + 50 + 100
    assert whole[1 : len(kinds) + 1] == rest[:-1]


def _long_names(n: int, length: int) -> Report:
    hosts = []
    for i in range(n):
        name = f"{i:02d}-" + "東京" * (length // 2)
        found = (Finding("busy", Severity.CRITICAL, "host", name, "cpu.busy_pct", 99.0, "> 95",
                         "busy"),)  # fmt: skip
        hosts.append(dataclasses.replace(host(name), findings=found))
    return Report(RUN, tuple(hosts), {}, 2, ())


@pytest.mark.parametrize("max_bytes", [300, 512, 1024, 2000, 8000])
def test_the_whole_output_fits_max_bytes_whatever_the_names(max_bytes: int) -> None:
    """The status line was always kept whole: four names of 2,000 bytes made a 346-byte
    output of --nagios-max-bytes 100, and long names pushed the perfdata past 8 KiB."""
    report = _long_names(4, 700)  # 2,103 bytes a name
    out = render_nagios(report, max_bytes)
    assert len(out.encode()) <= max_bytes
    first = out.splitlines()[0]
    assert first.startswith("FLEETMON CRITICAL - 4 hosts: 4 critical")
    # The perfdata whole and parseable.
    status, perf = first.split(" | ")
    assert perf == (
        "'critical'=4;;;0 'warning'=0;;;0 'unknown'=0;;;0 'unreachable'=0;;;0 'hosts'=4;;;0"
        " 'hosts_critical'=4;;;0 'hosts_warning'=0;;;0 'hosts_unknown'=0;;;0"
    )
    assert all(PERF.fullmatch(p) for p in perf.split())
    if max_bytes < MIN_BYTES:  # the names left out (below what the option accepts)
        assert status.endswith(": 4 critical, 0 warning, 0 ok; findings: 4 critical, 0 warning")
    else:
        assert "(00-東京" in status  # named,
        assert "\u2026" in status  # shortened


def test_short_names_are_not_shortened() -> None:
    out = render_nagios(_long_names(4, 20), 1024)
    assert "4 critical (00-東京東京東京東京東京東京東京東京東京東京, 01-" in out


def test_a_max_bytes_below_the_status_line_is_refused() -> None:
    res = fleetmon("merge", "nothing.json", "--format", "nagios", "--nagios-max-bytes", "100")
    assert (res.returncode, res.stdout) == (4, "")
    assert "--nagios-max-bytes must be 512 or more, got '100'" in res.stderr
