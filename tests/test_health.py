"""The exit-code matrix of METRICS.md / issue 4, and the --unreachable policies."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_rules_util import host

from fleetmon.errors import OptionError
from fleetmon.model import (
    SEVERITIES_WORST_FIRST,
    Finding,
    HostReport,
    Report,
    RunInfo,
    Severity,
    Status,
    worst,
)
from fleetmon.render.json import render_json
from fleetmon.rules.verdict import EXIT_CODES, exit_code, host_verdict, summary, worst_first


def f(sev: Severity, rule: str = "r") -> Finding:
    return Finding(rule, sev, "host", "h", "cpu.busy_pct", 1.0, "> 0", "m")


def hosts_with(*sevs: Severity, down: bool = False) -> list[HostReport]:
    out = [dataclasses.replace(host("h"), findings=tuple(f(s) for s in sevs))]
    if down:
        out.append(host("d", (), status=Status.UNREACHABLE, error="timed out"))
    return out


C, W, U, OK = Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.OK

# (host findings, a host not collected, --unreachable, expected exit code)
MATRIX = [
    ((), False, "unknown", 0),
    ((OK, OK), False, "unknown", 0),
    ((W,), False, "unknown", 1),
    ((W, OK), False, "critical", 1),
    ((U,), False, "unknown", 3),
    ((U, W), False, "unknown", 3),
    ((C,), False, "unknown", 2),
    ((C, U, W), False, "unknown", 2),
    ((), True, "unknown", 3),
    ((W,), True, "unknown", 3),
    ((C,), True, "unknown", 2),
    ((), True, "critical", 2),
    ((W,), True, "critical", 2),
    ((), True, "ignore", 0),
    ((W,), True, "ignore", 1),
    ((U,), True, "ignore", 3),
]


@pytest.mark.parametrize(("sevs", "down", "policy", "code"), MATRIX)
def test_exit_code_matrix(sevs: tuple[Severity, ...], down: bool, policy: str, code: int) -> None:
    assert exit_code(hosts_with(*sevs, down=down), (), unreachable=policy) == code


@pytest.mark.parametrize(("fleet", "code"), [((C,), 2), ((U,), 3), ((W,), 1), ((OK,), 0)])
def test_fleet_findings_count(fleet: tuple[Severity, ...], code: int) -> None:
    assert exit_code(hosts_with(), tuple(f(s) for s in fleet)) == code


def test_fail_on_does_not_change_the_code() -> None:
    assert exit_code(hosts_with(W), (), fail_on="warning") == 1


def test_bad_policies() -> None:
    with pytest.raises(OptionError) as exc:
        exit_code([], (), unreachable="fatal")
    assert str(exc.value) == "--unreachable: expected critical, unknown or ignore, got 'fatal'"
    with pytest.raises(OptionError) as exc:
        exit_code([], (), fail_on="unknown")
    assert str(exc.value) == "--fail-on: expected warning or critical, got 'unknown'"


def test_severity_order_is_the_exit_code_s() -> None:
    assert [s.value for s in SEVERITIES_WORST_FIRST] == ["critical", "unknown", "warning", "ok"]
    assert [s.rank for s in (OK, W, U, C)] == [0, 1, 2, 3]
    assert worst([]) is OK
    assert worst([W, U, OK]) is U
    assert worst(iter([OK, C, U])) is C


@pytest.mark.parametrize(("sevs", "down", "policy", "code"), [m for m in MATRIX if not m[1]])
def test_host_verdict_agrees_with_the_exit_code(
    sevs: tuple[Severity, ...], down: bool, policy: str, code: int
) -> None:
    (h,) = hosts_with(*sevs, down=down)
    assert EXIT_CODES[host_verdict(h)] == code


def test_summary_counts_a_warning_and_an_unknown_as_unknown() -> None:
    hosts = (*hosts_with(W, U, down=True), dataclasses.replace(host("w"), findings=(f(W),)))
    run = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml")
    report = Report(run, hosts, {}, exit_code(hosts))
    counts = {"hosts": 3, "collected": 2, "failed": 1, "ok": 0, "warning": 1}
    assert summary(report) == {**counts, "critical": 0, "unknown": 1}
    # The JSON summary said "warning" for h until the order was defined once (issue 10).
    assert json.loads(render_json(report))["summary"] == summary(report)
    assert report.exit_code == 3


def test_worst_first() -> None:
    pairs = [
        ("a", f(W, "w")),
        ("b", f(OK, "o")),
        ("c", f(C, "c")),
        ("d", f(U, "u")),
        ("e", f(C, "c2")),
    ]
    # Lists read by a person put a measured problem before one that could not be judged
    # (Severity.listing); the exit code keeps unknown above warning (Severity.rank).
    assert [p[1].rule for p in worst_first(pairs)] == ["c", "c2", "w", "u"]
