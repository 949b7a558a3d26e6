"""The health verdict (pure): findings and host statuses -> the process exit code.

METRICS.md: 2 if any CRITICAL; else 3 if a host was not collected or a rule was UNKNOWN;
else 1 if any WARNING; else 0. `--unreachable` decides how uncollected hosts count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fleetmon.errors import OptionError
from fleetmon.model import Finding, HostReport, Severity

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
UNREACHABLE_POLICIES = ("critical", "unknown", "ignore")
FAIL_ON = ("warning", "critical")

#: Worst first, in the exit code's precedence: critical, unknown, warning, ok.
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.UNKNOWN: 1, Severity.WARNING: 2, Severity.OK: 3}
CODE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def all_findings(
    hosts: Sequence[HostReport], fleet_findings: Iterable[Finding] = ()
) -> list[tuple[str, Finding]]:
    """(host name or "fleet", finding) for every finding of the run, in report order."""
    pairs = [(h.name, f) for h in hosts for f in h.findings]
    return pairs + [("fleet", f) for f in fleet_findings]


def worst_first(pairs: Iterable[tuple[str, Finding]]) -> list[tuple[str, Finding]]:
    """Non-OK findings sorted critical, unknown, warning; stable within a severity."""
    problems = [p for p in pairs if p[1].severity is not Severity.OK]
    return sorted(problems, key=lambda p: SEVERITY_RANK[p[1].severity])


def exit_code(
    hosts: Sequence[HostReport],
    fleet_findings: Sequence[Finding] = (),
    unreachable: str = "unknown",
    fail_on: str = "critical",
) -> int:
    """The exit code of a run.

    `fail_on` is validated but changes nothing here: every severity already has its own
    code; it decides what JUnit counts as a failure. OptionError on an unknown policy.
    """
    if unreachable not in UNREACHABLE_POLICIES:
        raise OptionError(
            f"--unreachable: expected critical, unknown or ignore, got '{unreachable}'"
        )
    if fail_on not in FAIL_ON:
        raise OptionError(f"--fail-on: expected warning or critical, got '{fail_on}'")
    severities = {f.severity for _host, f in all_findings(hosts, fleet_findings)}
    uncollected = any(not h.collected for h in hosts)
    if Severity.CRITICAL in severities or (uncollected and unreachable == "critical"):
        return CRITICAL
    if Severity.UNKNOWN in severities or (uncollected and unreachable == "unknown"):
        return UNKNOWN
    if Severity.WARNING in severities:
        return WARNING
    return OK
