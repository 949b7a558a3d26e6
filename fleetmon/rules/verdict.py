"""The health verdicts (pure): a host's worst finding, the report's counts, the exit code.

METRICS.md: 2 if any CRITICAL; else 3 if a host was not collected or a rule was UNKNOWN;
else 1 if any WARNING; else 0. `--unreachable` decides how uncollected hosts count. A host's
verdict takes the same order (Severity.rank), so the summary agrees with the exit code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from fleetmon.errors import OptionError
from fleetmon.model import Finding, HostReport, Report, Severity, notable, worst

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
UNREACHABLE_POLICIES = ("critical", "unknown", "ignore")
FAIL_ON = ("warning", "critical")

#: The Nagios plugin code of each severity: the exit code is the worst one's.
EXIT_CODES = {
    Severity.OK: OK,
    Severity.WARNING: WARNING,
    Severity.CRITICAL: CRITICAL,
    Severity.UNKNOWN: UNKNOWN,
}
CODE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def host_verdict(host: HostReport) -> Severity:
    """A host's worst finding (OK without any): critical, unknown, warning, ok."""
    # A set display, not a generator: 10,000 hosts have 600,000 findings to look at.
    return worst({f.severity for f in notable(host.findings)})


def summary(report: Report) -> dict[str, int]:
    """Host counts: all, collected, failed, and collected hosts by their verdict."""
    collected = [h for h in report.hosts if h.collected]
    verdicts = Counter(host_verdict(h) for h in collected)
    return {
        "hosts": len(report.hosts),
        "collected": len(collected),
        "failed": len(report.hosts) - len(collected),
        "ok": verdicts[Severity.OK],
        "warning": verdicts[Severity.WARNING],
        "critical": verdicts[Severity.CRITICAL],
        "unknown": verdicts[Severity.UNKNOWN],
    }


def all_findings(
    hosts: Sequence[HostReport], fleet_findings: Iterable[Finding] = ()
) -> list[tuple[str, Finding]]:
    """(host name or "fleet", finding) for every finding of the run, in report order."""
    pairs = [(h.name, f) for h in hosts for f in h.findings]
    return pairs + [("fleet", f) for f in fleet_findings]


def worst_first(pairs: Iterable[tuple[str, Finding]]) -> list[tuple[str, Finding]]:
    """Non-OK findings sorted critical, warning, unknown (Severity.listing); stable within a
    severity."""
    problems = [p for p in pairs if p[1].severity is not Severity.OK]
    return sorted(problems, key=lambda p: -p[1].severity.listing)


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
    severities = {f.severity for h in hosts for f in notable(h.findings)}
    severities.update(f.severity for f in fleet_findings)
    if unreachable != "ignore" and any(not h.collected for h in hosts):
        severities.add(Severity(unreachable))
    if not hosts:  # nothing was looked at (a merge or replay of no host), as a run of none
        severities.add(Severity.UNKNOWN)
    return EXIT_CODES[worst(severities)]
