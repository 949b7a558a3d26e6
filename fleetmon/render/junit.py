"""`--junit FILE` (pure): JUnit XML, a testsuite per host and a testcase per rule x subject;
the fleet-wide findings in a suite `(fleet)` of class `fleetmon`.

Shape of the Ant JUnit schema that Jenkins, GitLab and GitHub read: CRITICAL is a failure,
UNKNOWN an error, WARNING a pass with its message in system-out unless fail_on is warning.
`passes` decides what the checks that passed become: one case each ("all": 110,000 cases
at 1,000 hosts, 10 MB a build), one case per host ("summary", the default) or none.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from fleetmon.errors import OptionError
from fleetmon.model import Finding, HostReport, Report, Severity, checks_passed, notable
from fleetmon.rules.verdict import FAIL_ON

PASSES = ("none", "summary", "all")

# XML 1.0 forbids most control characters; names and errors come from remote machines.
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _timestamp(started_at: str) -> str:
    # The Ant schema's timestamp has no zone designator; ours is always UTC.
    return started_at.removesuffix("Z")


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", name=_x(name), classname=_x(classname), time="0")


def _finding_case(suite: ET.Element, classname: str, f: Finding, fail_on: str) -> str | None:
    """Add one finding's testcase; return 'failure', 'error' or None (passed)."""
    case = _case(suite, classname, f"{f.rule}: {f.subject}")
    kind = _kind(f, fail_on)
    if kind is not None:
        applied = f"apply: {f.apply}\n" if f.apply else ""
        detail = f"metric: {f.metric}\n{applied}value: {f.value}\nthreshold: {f.threshold}\n"
        el = ET.SubElement(case, kind, message=_x(f.message), type=f.severity.value)
        el.text = _x(detail)
    elif f.severity is Severity.WARNING:
        ET.SubElement(case, "system-out").text = _x(f"WARNING: {f.message}")
    return kind


def _kind(f: Finding, fail_on: str) -> str | None:
    """'failure', 'error' or None (passed) for a finding."""
    if f.severity is Severity.CRITICAL or (f.severity is Severity.WARNING and fail_on == "warning"):
        return "failure"
    return "error" if f.severity is Severity.UNKNOWN else None


def _suite(
    root: ET.Element,
    index: int,
    name: str,
    stamp: str,
    host: HostReport | None,
    findings: Sequence[Finding],
    options: tuple[str, str],
) -> tuple[int, int, int]:
    fail_on, passes = options
    suite = ET.SubElement(root, "testsuite", name=_x(name), id=str(index), package="fleetmon")
    props = ET.SubElement(suite, "properties")
    # The fleet's cases are of class `fleetmon`, a host's `fleetmon.NAME`: no host, even one
    # named `fleet` or `(fleet)`, shares theirs (Jenkins and GitLab group cases by class).
    classname = f"fleetmon.{name}" if host is not None else "fleetmon"
    kinds: list[str | None] = []
    if host is not None:
        ET.SubElement(props, "property", name="address", value=_x(host.address))
        ET.SubElement(props, "property", name="groups", value=_x(",".join(host.groups)))
        ET.SubElement(props, "property", name="status", value=host.status.value)
        if not host.collected:
            case = _case(suite, classname, "collect")
            err = ET.SubElement(case, "error", message=_x(host.error or ""), type=host.status.value)
            err.text = _x(f"{host.name} was not collected: {host.status.value}")
            kinds.append("error")
        elif passes == "all":
            _case(suite, classname, "collect")
            kinds.append(None)
    # "summary": the OK checks become one case; a warning that passes keeps its own (its
    # message is in system-out). "none": only failures and errors.
    ok = Severity.OK
    if passes == "all":
        shown = list(findings)
    elif passes == "summary":
        shown = [f for f in notable(findings) if f.severity is not ok]
    else:
        shown = [f for f in notable(findings) if _kind(f, fail_on) is not None]
    kinds += [_finding_case(suite, classname, f, fail_on) for f in shown]
    n = checks_passed(findings, host.passed_unheld if host is not None else 0)
    if passes == "summary" and (host.collected if host is not None else n > 0):
        what = "collected, " if host is not None else ""
        _case(suite, classname, f"{what}{n} check{'s' * (n != 1)} passed")
        kinds.append(None)
    ET.SubElement(suite, "system-out")
    ET.SubElement(suite, "system-err")
    counts = (len(kinds), kinds.count("failure"), kinds.count("error"))
    suite.attrib.update(
        tests=str(counts[0]),
        failures=str(counts[1]),
        errors=str(counts[2]),
        skipped="0",
        time="0",
        timestamp=stamp,
        hostname=_x(name),
    )
    return counts


def render_junit(report: Report, fail_on: str = "critical", passes: str = "summary") -> str:
    """The JUnit XML document of a report (a `(fleet)` suite, as the text report names the
    fleet, when there are fleet findings)."""
    if fail_on not in FAIL_ON:
        raise OptionError(f"--fail-on: expected warning or critical, got '{fail_on}'")
    if passes not in PASSES:
        raise OptionError(f"--junit-passes: expected none, summary or all, got '{passes}'")
    root = ET.Element("testsuites", name="fleetmon")
    stamp = _timestamp(report.run.started_at)
    totals = [0, 0, 0]
    suites: list[tuple[str, HostReport | None, Sequence[Finding]]] = [
        (h.name, h, h.findings) for h in report.hosts
    ]
    if report.findings:
        suites.append(("(fleet)", None, report.findings))
    for index, (name, host, findings) in enumerate(suites):
        counts = _suite(root, index, name, stamp, host, findings, (fail_on, passes))
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    root.attrib.update(tests=str(totals[0]), failures=str(totals[1]), errors=str(totals[2]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
