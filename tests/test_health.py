"""The exit-code matrix of METRICS.md / issue 4, and the --unreachable policies."""

from __future__ import annotations

import dataclasses

import pytest
from test_rules_util import host

from fleetmon.errors import OptionError
from fleetmon.model import Finding, HostReport, Severity, Status
from fleetmon.rules.verdict import exit_code, worst_first


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


def test_worst_first() -> None:
    pairs = [
        ("a", f(W, "w")),
        ("b", f(OK, "o")),
        ("c", f(C, "c")),
        ("d", f(U, "u")),
        ("e", f(C, "c2")),
    ]
    assert [p[1].rule for p in worst_first(pairs)] == ["c", "c2", "u", "w"]
