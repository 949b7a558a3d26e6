"""The text report (pure): tabulate tables for a terminal, a cron mail or a CI log.

The header's counts, then the findings (critical, warning, unknown; one line for a rule that
says the same on many hosts), the hosts and hypervisors worst first, each row scope's top
tables across the fleet, every host not collected with its reason, and the hosts' notes (a
note that many hosts share said once). TextOptions fits it to a terminal's width.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fleetmon.model import Finding, HostReport, Report, Severity, Status, notable
from fleetmon.render.htmltrends import changes
from fleetmon.render.pick import figure
from fleetmon.render.textfit import GAP, clean, columns, fit_line, fit_table, shorten, tabulate
from fleetmon.render.texttables import (
    hosts_table,
    human_bytes,
    hypervisors,
    num,
    rankings,
    since_last,
)
from fleetmon.rules.ranges import judged_places
from fleetmon.rules.verdict import summary

__all__ = ["MAX_FINDINGS", "TextOptions", "clean", "human_bytes", "num", "render_text", "tabulate"]

#: Findings lines shown by default: a fleet-wide problem would otherwise bury the rest.
MAX_FINDINGS = 50
#: Hosts named on a folded findings line or a shared note before "+N".
NAMES_SHOWN = 4
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: How the Findings table gives way to a narrow terminal, in order: (columns dropped, the
#: most WHERE takes, the least MESSAGE must keep). WHERE shrinks first (fewer names, then
#: `+N`), VALUE and THRESHOLD go before RULE (what a user tunes), RULE goes last.
FINDINGS_LAYOUTS: tuple[tuple[frozenset[str], int, int], ...] = (
    (frozenset(), 36, 30),
    (frozenset({"THRESHOLD"}), 36, 30),
    (frozenset({"THRESHOLD", "VALUE"}), 36, 30),
    (frozenset({"THRESHOLD", "VALUE"}), 20, 30),
    (frozenset({"THRESHOLD", "VALUE"}), 14, 24),
    (frozenset({"THRESHOLD", "VALUE", "RULE"}), 20, 30),
    (frozenset({"THRESHOLD", "VALUE", "RULE"}), 14, 0),
)
FINDINGS_HEADERS = ["SEVERITY", "N", "WHERE", "VALUE", "THRESHOLD", "RULE", "MESSAGE"]


@dataclass(frozen=True, slots=True)
class TextOptions:
    """How the text report is laid out.

    width: no line wider (None: tables as wide as they come); problems: only hosts with a
    finding or not collected in the tables of hosts and rows; top: rows of each such table.
    """

    width: int | None = None
    problems: bool = False
    top: int | None = None


def _shape(text: str, host: str, subject: str) -> str:
    """A message with its host, subject and figures blanked: what makes two "the same"."""
    for name in sorted({host, subject} - {""}, key=len, reverse=True):
        text = text.replace(name, "\0")
    return _NUMBER.sub("#", text)


def _names(items: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """`a, b, c, d +12`."""
    head = ", ".join(items[:limit])
    return head + (f" +{len(items) - limit}" if len(items) > limit else "")


def _names_within(items: Sequence[str], room: int) -> str:
    """`_names` in at most `room` columns: fewer names before `+N`, the first one cut last."""
    for shown in range(min(NAMES_SHOWN, len(items)), 0, -1):
        text = _names(items, shown)
        if columns(clean(text)) <= room:
            return text
    more = f" +{len(items) - 1}" if len(items) > 1 else ""
    return shorten(clean(items[0]), max(room - len(more), 1)) + more


def _fit_findings(rows: list[list[str]], wheres: list[list[str]], width: int | None) -> str:
    """The Findings table no wider than `width`, by the first of FINDINGS_LAYOUTS that leaves
    MESSAGE its least (the last layout otherwise); MESSAGE is then cut to fit."""
    hdr = FINDINGS_HEADERS
    if width is None or _table_width(rows, hdr) <= width:
        return fit_table(rows, hdr, width)
    longest = max(columns(clean(r[-1])) for r in rows)
    for dropped, where_most, message_least in FINDINGS_LAYOUTS:
        keep = [i for i, h in enumerate(hdr) if h not in dropped]
        cells = [[clean(c) for c in r] for r in rows]
        for r, items in zip(cells, wheres, strict=True):
            r[2] = clean(_names_within(items, where_most))
        cells = [[r[i] for i in keep] for r in cells]
        heads = [hdr[i] for i in keep]
        room = width - _table_width([r[:-1] for r in cells], heads[:-1]) - GAP
        if room >= min(message_least, longest):
            break
    return fit_table(cells, heads, width, flex=("MESSAGE", "WHERE"))


def _table_width(rows: Sequence[Sequence[str]], heads: Sequence[str]) -> int:
    """What tabulate's simple format takes for these columns (each at least heading + 2)."""
    widths = [
        max([len(h) + GAP, *(columns(clean(r[i])) for r in rows)]) for i, h in enumerate(heads)
    ]
    return sum(widths) + GAP * (len(widths) - 1)


def _where(host: str, f: Finding) -> str:
    return host if f.subject in (host, f.metric, "") else f"{host} {f.subject}"


def _value_range(found: Sequence[tuple[str, Finding]]) -> str:
    """2 decimals, or the more a value needs to stay on its side of the threshold beside it
    (rules.ranges.judged_places: 0.0122 over `> 0.01` is 0.012)."""
    pairs = [(x, f.threshold) for _h, f in found if (x := figure(f.value)) is not None]
    places = max((judged_places(x, th, 2) for x, th in pairs), default=2)
    if len(found) == 1:
        return num(found[0][1].value, places)
    if not pairs:
        return "-"
    lo, hi = min(x for x, _th in pairs), max(x for x, _th in pairs)
    return f"{lo:.{places}f}" if lo == hi else f"{lo:.{places}f}-{hi:.{places}f}"


#: Where the text report's findings table puts the fleet-scope findings.
FLEET = "(fleet)"


def fold_findings(report: Report, fleet: str = FLEET) -> list[list[tuple[str, Finding]]]:
    """The non-OK findings in groups of one rule saying the same thing (its message alike but
    for the host, subject and figures): critical, warning, unknown; larger groups first.
    Fleet findings are under the host name `fleet`."""
    ok = Severity.OK
    pairs = [(h.name, f) for h in report.hosts for f in notable(h.findings) if f.severity is not ok]
    pairs += [(fleet, f) for f in report.findings if f.severity is not ok]
    pairs.sort(key=lambda p: (-p[1].severity.listing, p[0], p[1].rule))
    groups: dict[tuple[Severity, str, str | None, str], list[tuple[str, Finding]]] = {}
    for host, f in pairs:
        key = (f.severity, f.rule, f.threshold, _shape(f.message, host, f.subject))
        groups.setdefault(key, []).append((host, f))
    return sorted(groups.values(), key=lambda g: (-g[0][1].severity.listing, -len(g)))


def _findings(report: Report, width: int | None, max_lines: int) -> list[str]:
    groups = fold_findings(report)
    if not groups:
        return []
    rows, wheres = [], []
    for found in groups[:max_lines]:
        first, f = found[0]
        wheres.append([_where(h, g) for h, g in found])
        where = _names(wheres[-1])
        same = all(g.message.replace(h, first) == f.message for h, g in found)
        message = f.message if same else f"e.g. {f.message}"
        rows.append([f.severity.value.upper(), str(len(found)), where, _value_range(found),
                     f.threshold or "", f.rule, message])  # fmt: skip
    total = sum(len(g) for g in groups)
    # The fleet's findings (under FLEET) are no host's: "on 2 hosts and the fleet".
    names = {h for g in groups for h, _f in g}
    hosts = len(names - {FLEET})
    on = [f"{hosts} host{'s' * (hosts != 1)}"] * bool(hosts) + ["the fleet"] * (FLEET in names)
    title = f"Findings: {total} on {' and '.join(on)}"
    if len(groups) < total:
        n = len(groups)
        title += f", {n} line{'s' * (n != 1)} (a rule saying the same on several hosts is one line)"
    out = [*fit_line(title, width, "  "), _fit_findings(rows, wheres, width)]
    if len(groups) > max_lines:
        more = len(groups) - max_lines
        out += fit_line(
            f"\u2026 and {more} more lines of findings (see --format json or html)", width
        )
    return [*out, ""]


def _changes(report: Report, width: int | None, limit: int = 20) -> list[str]:
    """New and resolved findings since the last run (with a history), before the rest."""
    new, gone = changes(report)  # none on a history's first run
    out: list[str] = []
    hdr = ["SEVERITY", "HOST", "SUBJECT", "RULE", "MESSAGE"]
    since = f"since the last run ({report.run.previous_run_at})"
    for title, items in ((f"New {since}", new), (f"Resolved {since}", gone)):
        if items:
            rows = [
                [c.finding.severity.value.upper(), c.host, c.finding.subject, c.finding.rule,
                 c.finding.message]
                for c in items
            ]  # fmt: skip
            out += [title, fit_table(rows[:limit], hdr, width, ["RULE"], ("MESSAGE", "SUBJECT"))]
            if len(items) > limit:
                out.append(f"\u2026 and {len(items) - limit} more")
            out.append("")
    return out


def _header(report: Report, width: int | None) -> list[str]:
    """What was run, and the counts: hosts by their worst finding, and findings."""
    run = report.run
    s = summary(report)
    sev = [f.severity for h in report.hosts for f in notable(h.findings)] + [
        f.severity for f in report.findings
    ]
    lines = [
        f"fleetmon {run.fleetmon_version}  {run.started_at}  inventory {run.inventory}"
        + (f"  limit {run.limit}" if run.limit else "")
        + f"  interval {run.interval_s:g} s",
        f"{s['hosts']} host{'s' * (s['hosts'] != 1)}: {s['collected']} collected, "
        f"{s['failed']} not collected; "
        f"hosts by worst finding: {s['critical']} critical, {s['warning']} warning, "
        f"{s['unknown']} unknown, {s['ok']} ok  (exit {report.exit_code})",
        f"findings: {sev.count(Severity.CRITICAL)} critical, {sev.count(Severity.WARNING)} "
        f"warning, {sev.count(Severity.UNKNOWN)} unknown",
    ]
    if run.rule_files:
        lines.append("rules: " + ", ".join(run.rule_files))
    lines += [f"WARNING: {note}" for note in run.host_key_notes]
    lines += [f"note: {note}" for note in run.notes]
    return [part for line in lines for part in fit_line(line, width, "  ")]


def _notes(hosts: Sequence[HostReport], width: int | None) -> list[str]:
    """Each host's notes; a note that several hosts share (but for figures) said once."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for h in hosts:
        if h.collected:
            for note in h.notes:
                groups.setdefault(_shape(note, h.name, ""), []).append((h.name, note))
    if not groups:
        return []
    out = ["Notes"]
    for items in groups.values():
        name, note = items[0]
        if len(items) == 1:
            line = f"  {clean(name)}: {clean(note)}"
        else:
            names = _names([clean(n) for n, _note in items])
            same = all(n2 == note.replace(name, h2) for h2, n2 in items)
            line = f"  {len(items)} hosts ({names}): {clean(note)}"
            line += "" if same else f" (figures of {clean(name)})"
        out += fit_line(line, width, "    ")
    return [*out, ""]


def _not_collected(hosts: Sequence[HostReport], width: int | None) -> list[str]:
    failed = [h for h in hosts if h.status is not Status.OK]
    if not failed:
        return []
    rows = [[h.name, h.address, h.status.value, h.error or ""] for h in failed]
    hdr = ["HOST", "ADDRESS", "STATUS", "REASON"]
    return ["Not collected", fit_table(rows, hdr, width, ["ADDRESS"], ("REASON", "HOST")), ""]


def render_text(
    report: Report, options: TextOptions | None = None, max_findings: int = MAX_FINDINGS
) -> str:
    """The whole text report; the Findings table keeps its `max_findings` worst lines."""
    opts = options or TextOptions()
    width, top = opts.width, opts.top
    hosts: Sequence[HostReport] = report.hosts
    lines = _header(report, width)
    if opts.problems:
        ok = Severity.OK
        hosts = [
            h
            for h in hosts
            if not h.collected or any(f.severity is not ok for f in notable(h.findings))
        ]
        quiet = len(report.hosts) - len(hosts)
        lines += fit_line(f"--problems: {quiet} hosts without findings are not shown", width)
    lines.append("")
    lines += _changes(report, width)
    lines += _findings(report, width, max_findings)
    if any(h.collected for h in hosts):
        lines += hosts_table(hosts, width, top)
    lines += since_last(hosts, width, top)
    lines += hypervisors(hosts, width, top)
    lines += rankings(hosts, width, top)
    lines += _not_collected(hosts, width)
    lines += _notes(hosts, width)
    if width is not None:
        lines = [shorten(line, width) for text in lines for line in text.split("\n")]
    return "\n".join(lines).rstrip("\n") + "\n"
