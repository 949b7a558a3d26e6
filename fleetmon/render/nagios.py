"""`--format nagios` (pure): one status line with perfdata, then one line per finding.

Follows the Nagios plugin development guidelines: `SERVICE STATUS - text | 'label'=value
[UOM];[warn];[crit];[min];[max]`, long output on the following lines (never a `|` in it).
"""

from __future__ import annotations

from fleetmon.model import Report, Severity
from fleetmon.render.text import clean
from fleetmon.rules.verdict import CODE_NAMES, UNKNOWN, all_findings, worst_first


def _clean(text: str) -> str:
    # A `|` anywhere starts perfdata for Nagios; host and VM names come from remote machines.
    # Control characters from a host would reach a pager or a terminal: shown as escapes.
    return clean(" ".join(text.replace("|", "/").split()))


def _perf(label: str, value: int) -> str:
    return f"'{label}'={value};;;0"


def render_nagios(report: Report) -> str:
    """The Nagios/Icinga plugin output of a report; its exit code is report.exit_code."""
    pairs = all_findings(report.hosts, report.findings)
    counts = {s: sum(1 for _h, f in pairs if f.severity is s) for s in Severity}
    failed = [h for h in report.hosts if not h.collected]
    status = CODE_NAMES.get(report.exit_code, CODE_NAMES[UNKNOWN])
    text = f"{counts[Severity.CRITICAL]} critical, {counts[Severity.WARNING]} warning"
    if counts[Severity.UNKNOWN]:
        text += f", {counts[Severity.UNKNOWN]} unknown"
    if failed:
        text += f", {len(failed)} not collected"
    n = len(report.hosts)
    text += f" on {n} host{'s' if n != 1 else ''}"
    perf = " ".join(
        (
            _perf("critical", counts[Severity.CRITICAL]),
            _perf("warning", counts[Severity.WARNING]),
            _perf("unknown", counts[Severity.UNKNOWN]),
            _perf("unreachable", len(failed)),
            _perf("hosts", n),
        )
    )
    lines = [f"FLEETMON {status} - {text} | {perf}"]
    for host, f in worst_first(pairs):
        where = host if f.subject in (host, f.metric) else f"{host} {f.subject}"
        lines.append(_clean(f"{f.severity.value.upper()}: {where} {f.rule}: {f.message}"))
    for h in failed:
        lines.append(_clean(f"NOT COLLECTED: {h.name} {h.status.value}: {h.error or ''}"))
    return "\n".join(lines) + "\n"
