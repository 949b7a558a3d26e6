"""`--junit FILE`: a testsuite per host, a testcase per rule x subject, counts that add up."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
from test_rules_util import host

from fleetmon.errors import OptionError
from fleetmon.model import Finding, Report, RunInfo, Severity, Status
from fleetmon.render.junit import render_junit

RUN = RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml")


def fd(rule: str, sev: Severity, subject: str, msg: str) -> Finding:
    return Finding(rule, sev, "vm", subject, "vm.cpu_pct", 99.0, "~:95", msg)


def report() -> Report:
    kvm01 = dataclasses.replace(
        host("kvm01", ("kvm", "prod"), {}),
        findings=(
            fd("vm-cpu", Severity.OK, "db-1", "fine"),
            fd("vm-cpu", Severity.WARNING, "web-4", "web-4 CPU 91%"),
            fd("vm-cpu", Severity.CRITICAL, "web-3", "web-3 CPU 99% <&>"),
            fd("vm-cpu", Severity.UNKNOWN, "new\x01vm", "vm.cpu_pct is null for new\x01vm"),
        ),
    )
    kvm02 = host("kvm02", ("kvm",), status=Status.TIMEOUT, error="no answer in 31 s")
    fleet = (
        Finding(
            "fleet-busy",
            Severity.CRITICAL,
            "fleet",
            "fleet.cpu.busy_pct.p95",
            "fleet.cpu.busy_pct.p95",
            97.0,
            "> 90",
            "p95 97",
        ),
    )
    return Report(RUN, (kvm01, kvm02), {}, 2, fleet)


def _counts(el: ET.Element) -> tuple[int, int, int]:
    cases = el.iter("testcase")
    n = f = e = 0
    for c in cases:
        n += 1
        f += len(c.findall("failure"))
        e += len(c.findall("error"))
    return n, f, e


@pytest.mark.parametrize(("fail_on", "failures"), [("critical", 2), ("warning", 3)])
def test_junit_shape_and_counts(fail_on: str, failures: int) -> None:
    text = render_junit(report(), fail_on, passes="all")
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        "7",
        str(failures),
        "2",
    )
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["kvm01", "kvm02", "(fleet)"]
    for i, s in enumerate(suites):
        # Attributes the Ant JUnit schema requires (Jenkins, GitLab and GitHub read it).
        for attr in ("name", "tests", "failures", "errors", "time", "timestamp", "hostname"):
            assert s.get(attr) is not None, attr
        assert s.get("id") == str(i)
        assert s.get("timestamp") == "2026-11-26T03:00:00"
        assert s[0].tag == "properties"
        assert [c.tag for c in s][-2:] == ["system-out", "system-err"]
        n, f, e = _counts(s)
        assert (s.get("tests"), s.get("failures"), s.get("errors")) == (str(n), str(f), str(e))
        for case in s.iter("testcase"):
            host = s.get("name") != "(fleet)"
            assert case.get("classname") == (f"fleetmon.{s.get('name')}" if host else "fleetmon")
            assert case.get("time") == "0"
    kvm01 = suites[0]
    cases = {c.get("name"): c for c in kvm01.iter("testcase")}
    assert list(cases) == [
        "collect",
        "vm-cpu: db-1",
        "vm-cpu: web-4",
        "vm-cpu: web-3",
        "vm-cpu: new\ufffdvm",
    ]
    assert list(cases["collect"]) == []
    assert list(cases["vm-cpu: db-1"]) == []
    crit = cases["vm-cpu: web-3"].find("failure")
    assert crit is not None
    assert (crit.get("type"), crit.get("message")) == ("critical", "web-3 CPU 99% <&>")
    assert crit.text == "metric: vm.cpu_pct\nvalue: 99.0\nthreshold: ~:95\n"
    warn = cases["vm-cpu: web-4"]
    if fail_on == "warning":
        assert [c.tag for c in warn] == ["failure"]
    else:
        assert [c.tag for c in warn] == ["system-out"]
        assert warn.findtext("system-out") == "WARNING: web-4 CPU 91%"
    unknown = cases["vm-cpu: new\ufffdvm"].find("error")
    assert unknown is not None
    assert unknown.get("type") == "unknown"
    down = suites[1]
    assert _counts(down) == (1, 0, 1)
    err = down.find("testcase/error")
    assert err is not None
    assert (err.get("type"), err.get("message")) == ("timeout", "no answer in 31 s")
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props == {"address": "kvm01.example", "groups": "kvm,prod", "status": "ok"}


def test_bad_fail_on() -> None:
    with pytest.raises(OptionError) as exc:
        render_junit(report(), "unknown")
    assert str(exc.value) == "--fail-on: expected warning or critical, got 'unknown'"


def test_empty_report_is_valid() -> None:
    root = ET.fromstring(render_junit(Report(RUN, (), {}, 0, ()), "critical"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("0", "0", "0")
    assert root.findall("testsuite") == []


def test_junit_passes_summary_and_none() -> None:
    """summary (the default): one passing case per collected host for its OK checks, a
    warning that passes keeps its case; none: only failures and errors."""
    summary = ET.fromstring(render_junit(report()))
    kvm01, kvm02, fleet = summary.findall("testsuite")
    names = [c.get("name") for c in kvm01.iter("testcase")]
    assert names == ["vm-cpu: web-4", "vm-cpu: web-3", "vm-cpu: new\ufffdvm",
                     "collected, 1 check passed"]  # fmt: skip
    assert _counts(kvm01) == (4, 1, 1)
    assert [c.get("name") for c in kvm02.iter("testcase")] == ["collect"]
    assert [c.get("name") for c in fleet.iter("testcase")] == ["fleet-busy: fleet.cpu.busy_pct.p95"]
    assert (summary.get("tests"), summary.get("failures"), summary.get("errors")) == ("6", "2", "2")
    none = ET.fromstring(render_junit(report(), passes="none"))
    names = [c.get("name") for s in none.findall("testsuite") for c in s.iter("testcase")]
    assert names == ["vm-cpu: web-3", "vm-cpu: new\ufffdvm", "collect",
                     "fleet-busy: fleet.cpu.busy_pct.p95"]  # fmt: skip
    with pytest.raises(OptionError) as exc:
        render_junit(report(), passes="some")
    assert str(exc.value) == "--junit-passes: expected none, summary or all, got 'some'"


@pytest.mark.parametrize("name", ["fleet", "(fleet)"])
def test_a_host_named_like_the_fleet_shares_no_class_with_it(name: str) -> None:
    """A host `fleet` and the fleet-wide findings were two suites `fleet` of one class
    `fleetmon.fleet`: Jenkins and GitLab group by class, so the fleet's failure looked like
    the host's."""
    odd = dataclasses.replace(
        host(name, ("kvm",), {}), findings=(fd("vm-cpu", Severity.CRITICAL, "a", "a"),)
    )
    root = ET.fromstring(render_junit(dataclasses.replace(report(), hosts=(odd,))))
    suites = {s.get("id"): s for s in root.findall("testsuite")}
    assert [(s.get("name"), s.get("hostname")) for s in suites.values()] == [
        (name, name),
        ("(fleet)", "(fleet)"),
    ]
    classes = [{c.get("classname") for c in s.iter("testcase")} for s in suites.values()]
    assert classes == [{f"fleetmon.{name}"}, {"fleetmon"}]
