"""The text report an operator reads at 3 a.m.: findings critical, warning, unknown; a rule
that says the same on many hosts on one line; a note shared by many hosts said once; tables
worst first, fitted to the terminal, cut to the hosts with problems or to the top N."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from clirun import fleetmon, on_a_terminal
from test_report_golden import RAW, RULES
from test_rules_util import host

from fleetmon.model import Finding, Report, RunInfo, Severity
from fleetmon.render.text import TextOptions, render_text

RUN = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml")


def _psi(name: str) -> Finding:
    return Finding("host-cpu-pressure", Severity.UNKNOWN, "host", name, "psi.cpu_some_pct",
                   None, "> 20", f"psi.cpu_some_pct is not known on {name}")  # fmt: skip


def _fleet() -> Report:
    """28 hosts whose only finding is the same UNKNOWN, three with a warning of one rule at
    different figures, one critical; every host with the same note but for its figures."""
    hosts = []
    for i in range(30):
        name = f"h{i:02d}"
        found = [_psi(name)] if i < 28 else []
        if i in (3, 7, 29):
            found.append(Finding("host-steal", Severity.WARNING, "host", name, "cpu.steal_pct",
                                 10.0 + i, "> 10", f"CPU steal {10 + i}% on {name}"))  # fmt: skip
        if i == 20:
            found.append(Finding("fs-full", Severity.CRITICAL, "fs", "/", "fs.used_pct", 99.0,
                                 "~:95", f"/ on {name} is 99.0% full"))  # fmt: skip
        metrics = {"cpu.busy_pct": float(i), "mem.used_pct": 50.0}
        h = host(name, ("kvm",), metrics)
        note = f"Xen dom0: host capacity from xl info ({i + 8} CPUs)"
        hosts.append(dataclasses.replace(h, findings=tuple(found), notes=(note,)))
    return Report(RUN, tuple(hosts), {}, 2, ())


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_findings_fold_and_come_critical_warning_unknown() -> None:
    text = render_text(_fleet())
    table = _section(text, "Findings")
    assert table[0] == ("Findings: 32 on 29 hosts, 3 lines (a rule saying the same on several "
                        "hosts is one line)")  # fmt: skip
    rows = [line.split() for line in table[3:]]
    assert [(r[0], r[1]) for r in rows] == [("CRITICAL", "1"), ("WARNING", "3"), ("UNKNOWN", "28")]
    assert table[3].split()[2:4] == ["h20", "/"]
    assert "h03, h07, h29" in table[4]
    assert "13.00-39.00" in table[4]  # the figures' range
    assert "e.g. CPU steal 13% on h03" in table[4]
    assert "h00, h01, h02, h03 +24" in table[5]
    assert "psi.cpu_some_pct is not known on h00" in table[5]
    assert "e.g." not in table[5]  # the same message but for the host's name
    # The header says what it counts: hosts by their worst finding, then findings.
    assert text.splitlines()[1].startswith(
        "30 hosts: 30 collected, 0 not collected; hosts by worst"
    )
    assert text.splitlines()[2] == "findings: 1 critical, 3 warning, 28 unknown"
    # One host is one host (`fleetmon run` of the local connection: `make run`'s first line).
    one = render_text(Report(RUN, _fleet().hosts[:1], {}, 0, ()))
    assert one.splitlines()[1].startswith("1 host: 1 collected, 0 not collected;"), one


def test_one_rule_on_several_hosts_is_one_line() -> None:
    hosts = [dataclasses.replace(h, findings=(_psi(h.name),)) for h in _fleet().hosts[:2]]
    table = _section(render_text(Report(RUN, tuple(hosts), {}, 3, ())), "Findings")
    assert table[0] == ("Findings: 2 on 2 hosts, 1 line (a rule saying the same on several "
                        "hosts is one line)")  # fmt: skip


def test_a_fleet_finding_is_not_counted_as_a_host() -> None:
    # `run -l kvm0005` (unreachable) with a fleet rule said "Findings: 1 on 1 host" of a run
    # that collected no host: the fleet's finding counted as a host's.
    busy = Finding(
        "fleet-busy", Severity.UNKNOWN, "fleet", "fleet.cpu.busy_pct.p95",
        "fleet.cpu.busy_pct.p95", None, "warning > 80", "fleet.cpu.busy_pct.p95 not reported",
    )  # fmt: skip
    alone = Report(RUN, (), {}, 3, (busy,))
    assert _section(render_text(alone), "Findings")[0] == "Findings: 1 on the fleet"
    hosts = tuple(dataclasses.replace(h, findings=(_psi(h.name),)) for h in _fleet().hosts[:2])
    both = _section(render_text(Report(RUN, hosts, {}, 3, (busy,))), "Findings")
    assert both[0].startswith("Findings: 3 on 2 hosts and the fleet, 2 lines ")


def test_a_note_every_host_shares_is_said_once() -> None:
    notes = _section(render_text(_fleet()), "Notes")
    assert notes == [
        "Notes",
        "  30 hosts (h00, h01, h02, h03 +26): Xen dom0: host capacity from xl info (8 CPUs) "
        "(figures of h00)",
    ]


def test_hosts_worst_first_problems_only_and_top() -> None:
    hosts = _section(render_text(_fleet()), "Hosts")
    names = [line.split()[0] for line in hosts[3:]]
    assert names[:4] == ["h20", "h07", "h03", "h29"]  # critical; then warnings (busiest CPU)
    assert len(names) == 30
    text = render_text(_fleet(), TextOptions(problems=True, top=5))
    assert "--problems: 1 hosts without findings are not shown" in text
    hosts = _section(text, "Hosts")
    assert [line.split()[0] for line in hosts[3:-1]] == ["h20", "h07", "h03", "h29", "h27"]
    assert hosts[-1] == "… and 24 more hosts (--top N shows more)"


def _on_a_terminal(columns: int, *args: str | Path, env: dict[str, str]) -> tuple[int, str]:
    """`fleetmon ARGS` with its standard output on a pty `columns` wide: (exit, output)."""
    code, out, _ = on_a_terminal(*args, columns=columns, env=env)
    return code, out.replace("\r\n", "\n")


def test_cli_fits_the_terminal_and_not_a_pipe_or_a_file(tmp_path: Path) -> None:
    """README: the width is $COLUMNS or the terminal's on a terminal; a pipe or a file has
    none, even with $COLUMNS set (tmux exports it: cron mails and `| less` were cut)."""
    rules = [arg for f in RULES for arg in ("-r", f)]
    args = ("report", RAW, "--history", "none", *rules)
    code, text = _on_a_terminal(80, *args, env={})
    assert code == 2
    assert max(len(line) for line in text.splitlines()) <= 80
    code, text = _on_a_terminal(200, *args, env={"COLUMNS": "70"})
    assert code == 2
    assert max(len(line) for line in text.splitlines()) <= 70
    piped = fleetmon(*args, env={"COLUMNS": "80"})
    assert piped.returncode == 2, piped.stderr
    assert max(len(line) for line in piped.stdout.splitlines()) > 80
    out = tmp_path / "report.txt"
    wide = fleetmon(*args, "-o", out, env={"COLUMNS": "80"})
    assert wide.returncode == 2, wide.stderr
    assert max(len(line) for line in out.read_text().splitlines()) > 80
    picked = fleetmon(*args, "--width", "60", "--problems", "--top", "1")
    lines = picked.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[lines.index("Hosts") + 3].startswith("xen0001 ")  # the worst host
    assert lines[lines.index("Hosts") + 4] == "… and 1 more hosts (--top N shows more)"
    assert "linux0002" not in picked.stdout  # no finding: not shown with --problems


@pytest.mark.parametrize(("width", "least"), [(80, 24), (120, 30), (200, 30)])
def test_findings_keep_rule_and_a_readable_message_on_a_terminal(width: int, least: int) -> None:
    """On 80-200 columns WHERE gives way first (fewer names, `+N`), VALUE and THRESHOLD go
    before RULE: the rule's name is what a user tunes. Before, RULE was dropped and MESSAGE
    cut to 9 characters while WHERE kept 87."""
    rules = [arg for f in RULES for arg in ("-r", f)]
    r = fleetmon("report", RAW, "--history", "none", *rules, "--width", str(width))
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SEVERITY    N "))
    head = lines[start]
    assert "RULE" in head.split()
    rows = lines[start + 2 : lines.index("", start)]
    at = head.index("MESSAGE")
    assert all(len(row) <= width for row in rows)
    assert min((len(row[at:]) for row in rows if row.endswith("\u2026")), default=least) >= least
    where = head.index("WHERE")
    assert len(head[where : head.index(head.split()[3])]) <= 38  # capped: 36 and the gap
    if width >= 120:
        assert "THRESHOLD" in head


def test_a_tiny_negative_figure_is_zero_in_the_tables() -> None:
    """A rate a hair under zero (-0.001: counters read a tick apart) was `-0.0` in the
    hosts table and `-0.0%` in the HTML: read as a sign error at 3 a.m."""
    from fleetmon.render.html import render_html

    h = host("h1", (), {"cpu.busy_pct": -0.001, "cpu.steal_pct": -0.04, "mem.used_pct": 40.0})
    report = Report(RUN, (h,), {}, 0, ())
    row = _section(render_text(report), "Hosts")[3].split()
    assert row[:3] == ["h1", "OK", "0.0"], row
    assert "-0.0" not in render_text(report)
    assert "-0.0" not in render_html(report)
