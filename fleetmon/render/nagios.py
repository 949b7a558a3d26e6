"""`--format nagios` (pure): one status line with perfdata, then the long output, worst first.

Follows the Nagios plugin development guidelines: `SERVICE STATUS - text | 'label'=value
[UOM];[warn];[crit];[min];[max]`, long output on the following lines (never a `|` in it).
The status line counts hosts (by their worst finding) and names the worst of them, then
counts findings; the long output lists critical findings, the hosts not collected, then
warnings and unknowns. The whole output fits a size Nagios keeps (MAX_BYTES): the long
output is cut, with a line saying so, and the names on the status line shortened; the
perfdata is never cut (MIN_BYTES always hold the status line without names).
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmon.model import Finding, HostReport, Report, Severity
from fleetmon.render.text import clean, fold_findings
from fleetmon.rules.verdict import CODE_NAMES, UNKNOWN, all_findings, host_verdict

#: Nagios Core keeps 8 KiB of a plugin's output (MAX_PLUGIN_OUTPUT_LENGTH, 8192 bytes);
#: 8,000 leaves room for a transport's framing (NRPE, check_by_ssh).
MAX_BYTES = 8000
#: The least --nagios-max-bytes: the status line with its counts and perfdata, no names
#: (~400 bytes with seven-digit counts), and NRPE 2's 1 KiB packets hold it.
MIN_BYTES = 512
#: Hosts named on the status line for each severity before "+N".
NAMED = 3
#: The bytes each name on the status line is cut to, in turn, until it fits (0: no names).
_NAME_BYTES = (64, 32, 16, 8, 0)


def _clean(text: str) -> str:
    # A `|` anywhere starts perfdata for Nagios; host and VM names come from remote machines.
    # Control characters from a host would reach a pager or a terminal: shown as escapes.
    return clean(" ".join(text.replace("|", "/").split()))


def _perf(label: str, value: int) -> str:
    return f"'{label}'={value};;;0"


def _cut(name: str, most: int | None) -> str:
    """A name (cleaned) in `most` bytes at most, a cut marked with an ellipsis."""
    name = _clean(name)
    if most is None or len(name.encode()) <= most:
        return name
    name = name[: most - 3]  # the ellipsis takes 3 bytes; a character, 1 to 4
    while len(name.encode()) > most - 3:
        name = name[:-1]
    return name + "\u2026"


def _named(count: int, what: str, names: Sequence[str], most: int | None = None) -> str:
    if not names or most == 0:
        return f"{count} {what}"
    more = f" +{len(names) - NAMED}" if len(names) > NAMED else ""
    return f"{count} {what} ({', '.join(_cut(n, most) for n in names[:NAMED])}{more})"


def _status_text(
    report: Report, counts: dict[Severity, int], failed: list[HostReport], most: int | None = None
) -> str:
    """`8 hosts: 2 critical (a, b), ...; findings: 2 critical, 3 warning`, each name in
    `most` bytes at most (0: no names)."""
    by: dict[Severity, list[str]] = {s: [] for s in Severity}
    for h in report.hosts:
        if h.collected:
            by[host_verdict(h)].append(h.name)
    n = len(report.hosts)
    parts = [_named(len(by[Severity.CRITICAL]), "critical", by[Severity.CRITICAL], most)]
    parts.append(_named(len(by[Severity.WARNING]), "warning", by[Severity.WARNING], most))
    if by[Severity.UNKNOWN]:
        parts.append(_named(len(by[Severity.UNKNOWN]), "unknown", by[Severity.UNKNOWN], most))
    if failed:
        parts.append(_named(len(failed), "not collected", [h.name for h in failed], most))
    parts.append(f"{len(by[Severity.OK])} ok")
    found = f"{counts[Severity.CRITICAL]} critical, {counts[Severity.WARNING]} warning"
    if counts[Severity.UNKNOWN]:
        found += f", {counts[Severity.UNKNOWN]} unknown"
    return f"{n} host{'s' * (n != 1)}: {', '.join(parts)}; findings: {found}"


def _finding_line(group: Sequence[tuple[str, Finding]]) -> str:
    host, f = group[0]
    sev = f.severity.value.upper()
    if len(group) == 1:
        where = host if f.subject in (host, f.metric) else f"{host} {f.subject}"
        return _clean(f"{sev}: {where} {f.rule}: {f.message}")
    names = [h if g.subject in (h, g.metric) else f"{h} {g.subject}" for h, g in group]
    shown = ", ".join(names[:NAMED]) + (f" +{len(names) - NAMED}" if len(names) > NAMED else "")
    return _clean(f"{sev}: {f.rule} on {len(group)}: {shown}: e.g. {f.message}")


def _long_output(report: Report, failed: list[HostReport]) -> list[str]:
    """Critical findings, the hosts not collected, warnings, unknowns: one line each, a rule
    that says the same on several hosts folded into one."""
    groups = fold_findings(report, fleet="fleet")
    crit = [_finding_line(g) for g in groups if g[0][1].severity is Severity.CRITICAL]
    rest = [_finding_line(g) for g in groups if g[0][1].severity is not Severity.CRITICAL]
    lost = [_clean(f"NOT COLLECTED: {h.name} {h.status.value}: {h.error or ''}") for h in failed]
    return [*crit, *lost, *rest]


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


def _note_bytes(lines: Sequence[str], max_bytes: int) -> int:
    """The most the line saying how many lines were cut takes (its newline counted)."""
    return len(f"... {len(lines)} more lines cut at --nagios-max-bytes {max_bytes}\n".encode())


def _cap(lines: list[str], max_bytes: int) -> list[str]:
    """The first lines that fit in `max_bytes` (newlines counted), then one saying how many
    were cut; the status line is always kept."""
    if _size(lines) <= max_bytes:
        return lines
    kept = [lines[0]]
    used = len(lines[0].encode()) + 1
    note = _note_bytes(lines, max_bytes)
    for line in lines[1:]:
        cost = len(line.encode()) + 1
        if used + cost + note > max_bytes:
            break
        kept.append(line)
        used += cost
    cut = len(lines) - len(kept)
    return [*kept, f"... {cut} more lines cut at --nagios-max-bytes {max_bytes}"]


def render_nagios(report: Report, max_bytes: int = MAX_BYTES) -> str:
    """The Nagios/Icinga plugin output of a report; its exit code is report.exit_code."""
    pairs = all_findings(report.hosts, report.findings)
    counts = {s: sum(1 for _h, f in pairs if f.severity is s) for s in Severity}
    failed = [h for h in report.hosts if not h.collected]
    status = CODE_NAMES.get(report.exit_code, CODE_NAMES[UNKNOWN])
    summary = {s: 0 for s in Severity}
    for h in report.hosts:
        if h.collected:
            summary[host_verdict(h)] += 1
    perf = " ".join(
        (
            # Findings by severity (labels kept for graphs made before the host counts).
            _perf("critical", counts[Severity.CRITICAL]),
            _perf("warning", counts[Severity.WARNING]),
            _perf("unknown", counts[Severity.UNKNOWN]),
            _perf("unreachable", len(failed)),
            _perf("hosts", len(report.hosts)),
            # Collected hosts by their worst finding.
            _perf("hosts_critical", summary[Severity.CRITICAL]),
            _perf("hosts_warning", summary[Severity.WARNING]),
            _perf("hosts_unknown", summary[Severity.UNKNOWN]),
        )
    )
    head, tail = f"FLEETMON {status} - ", f" | {perf}"
    lines = [f"{head}{_clean(_status_text(report, counts, failed))}{tail}"]
    lines += _long_output(report, failed)
    if _size(lines) > max_bytes:
        # The status line, and the note of what was cut, fit whatever the hosts' names:
        # each name cut shorter, in turn, then none.
        note = _note_bytes(lines, max_bytes) if len(lines) > 1 else 0
        room = max_bytes - _size([head + tail]) - note
        for most in _NAME_BYTES:
            text = _clean(_status_text(report, counts, failed, most))
            if len(text.encode()) <= room:
                break
        lines[0] = f"{head}{text}{tail}"
    return "\n".join(_cap(lines, max_bytes)) + "\n"
