"""The text report (pure): tabulate tables for a terminal, a cron mail or a CI log.

Findings first, then one row per host worst first and the hypervisors, each row scope's top
tables across the fleet (busiest disks, top VMs), and every host not collected with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from tabulate import tabulate as _tabulate

from fleetmon.model import Finding, HostReport, MetricValue, Report, Row, Severity, Status, catalog
from fleetmon.model.catalog import Column, RowScope
from fleetmon.model.durations import format_duration
from fleetmon.rules.verdict import host_verdict, summary

TOP = 10
#: Findings rows shown by default: a fleet-wide problem would otherwise bury the rest.
MAX_FINDINGS = 50


def _escape(char: str) -> str:
    return char if char.isprintable() else repr(char)[1:-1]


def clean(text: object) -> str:
    """Text from a host made safe for a terminal: every non-printable character shown as an
    escape (`\x1b`, `\u202e`): C0/C1 controls, and the format and separator characters that
    reorder or break lines (bidi overrides U+202A-U+202E/U+2066-U+2069, U+2028/U+2029)."""
    s = str(text)
    if s.isprintable():  # nothing to escape: the common case (300,000 cells)
        return s
    return "".join(map(_escape, s))


def tabulate(rows: list[list[str]], headers: list[str], **kw: str | bool) -> str:
    """tabulate, with every cell cleaned of control characters."""
    return _tabulate([[clean(c) for c in r] for r in rows], headers=headers, **kw)  # type: ignore[arg-type]


def num(v: MetricValue, digits: int = 1) -> str:
    """A number for a table cell; '-' for unknown."""
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return "-" if v is None else str(v)
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def human_bytes(v: MetricValue, suffix: str = "") -> str:
    """Bytes in binary units (1.5 MiB); '-' for unknown."""
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return "-"
    size = float(v)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}{suffix}" if unit == "B" else f"{size:.1f} {unit}{suffix}"
        size /= 1024
    return "-"  # pragma: no cover


def _f(row: Row | HostReport, name: str) -> float:
    v = row.metrics.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return -1.0
    return float(v)


def _sum(row: Row, names: tuple[str, ...]) -> float | None:
    # sum() of the numbers, started from 0 as sum() is (so -0.0 prints as sum() prints it).
    total: float = 0
    found = False
    metrics = row.metrics
    for n in names:
        v = metrics.get(n)
        if isinstance(v, int | float) and not isinstance(v, bool):
            total += float(v)
            found = True
    return total if found else None


def _value(row: Row, col: Column) -> MetricValue:
    """A column's value in a row: its one metric as it is, or the sum of its metrics."""
    if len(col.metrics) == 1:
        return row.metrics.get(col.metrics[0])
    return _sum(row, col.metrics)


def _key(col: Column) -> Callable[[Row], float | None]:
    """A row's figure in `col` as a float to rank by; None when it has none."""
    if len(col.metrics) > 1:
        names = col.metrics
        return lambda r: _sum(r, names)
    name = col.metrics[0]  # the usual case, without a call per row: 700,000 at 10,000 hosts

    def key(r: Row) -> float | None:
        v = r.metrics.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    return key


def _figure(v: MetricValue, unit: str, digits: int) -> str:
    """A cell: bytes in binary units, anything else as a plain number (text as it is)."""
    if unit == "B/s":
        return human_bytes(v, "/s")
    if unit == "B":
        return human_bytes(v)
    return num(v, digits)


def _heading(col: Column) -> str:
    return col.label.upper() + ("%" if col.unit == "%" else "")


def _top(
    hosts: Iterable[HostReport],
    scope: str,
    key: Callable[[Row], float | None],
    n: int = TOP,
) -> list[tuple[HostReport, Row, float]]:
    found = [
        (h, r, k)
        for h in hosts
        if h.collected
        for r in h.rows_of(scope)
        if (k := key(r)) is not None
    ]
    found.sort(key=lambda t: -t[2])
    return found[:n]


def _finding_rows(report: Report) -> list[tuple[str, Finding]]:
    ok = Severity.OK
    pairs = [(h.name, f) for h in report.hosts for f in h.findings if f.severity is not ok]
    pairs += [("(fleet)", f) for f in report.findings if f.severity is not ok]
    pairs.sort(key=lambda p: (-p[1].severity.rank, p[0], p[1].rule))
    return pairs


def _since_last(hosts: Sequence[HostReport], limit: int = 20) -> list[str]:
    """Now and on average since the last run (exact, from the counters of both runs), the
    hosts busiest over the gap first."""
    gapped = [h for h in hosts if h.since_last_s is not None]
    if not gapped:
        return []

    def avg(h: HostReport, metric: str) -> MetricValue:
        return h.since_last.get(("host", ""), {}).get(metric)

    def busy(h: HostReport) -> float:
        v = avg(h, "cpu.busy_pct")
        return float(v) if isinstance(v, int | float) else -1.0

    rows = [
        [
            h.name,
            format_duration(h.since_last_s or 0),
            *(f"{num(h.metrics.get(m))} / {num(avg(h, m))}" for m in _GAP_METRICS),
        ]
        for h in sorted(gapped, key=busy, reverse=True)[:limit]
    ]
    hdr = ["HOST", "SINCE", "CPU% NOW/AVG", "IOW% NOW/AVG", "STEAL% NOW/AVG", "FORKS/S NOW/AVG"]
    title = "Since the last run: this run's sample / the average over the whole gap"
    more = [f"… and {len(gapped) - limit} more hosts"] if len(gapped) > limit else []
    return [title, tabulate(rows, headers=hdr, disable_numparse=True), *more, ""]


_GAP_METRICS = ("cpu.busy_pct", "cpu.iowait_pct", "cpu.steal_pct", "cpu.forks_per_s")


def _changes(report: Report, limit: int = 20) -> list[str]:
    """New and resolved findings since the last run (with a history), before the rest."""
    started = report.run.started_at
    pairs = [(h.name, f) for h in report.hosts for f in h.findings]
    new = [(h, f) for h, f in pairs if f.state == "firing" and f.since == started]
    gone = [(h, f) for h, f in pairs if f.state == "resolved"]
    out: list[str] = []
    for title, items in (("New since the last run", new), ("Resolved since the last run", gone)):
        if items:
            rows = [[f.severity.value.upper(), h, f.subject, f.rule, f.message] for h, f in items]
            out += [title, tabulate(rows[:limit], headers=["SEVERITY", "HOST", "SUBJECT",
                                                           "RULE", "MESSAGE"]), ""]  # fmt: skip
            if len(items) > limit:
                out.insert(-1, f"… and {len(items) - limit} more")
    return out


def _host_sort_key(h: HostReport) -> tuple[int, int, float]:
    return (0 if not h.collected else 1, -host_verdict(h).rank, -_f(h, "cpu.busy_pct"))


def _busiest(rows: Sequence[Row], key: Callable[[Row], float | None], unit: str) -> str:
    """The hosts table's cell for a host's busiest row ("sdb 93%"), by `key`; '-' if none."""
    scored = [(r.name, k) for r in rows if (k := key(r)) is not None]
    if not scored:
        return "-"
    name, k = max(scored, key=lambda t: t[1])
    return f"{name} {_figure(k, unit, 0)}" + ("%" if unit == "%" else "")


def _hosts_table(hosts: Sequence[HostReport]) -> str:
    # The scopes with a busiest column: (scope, its ranking key, the key's unit).
    scopes = [
        (s.name, _key(s.rankings[0].by), s.rankings[0].by.unit)
        for s in catalog.ROW_SCOPES
        if s.busiest
    ]
    rows = []
    for h in sorted(hosts, key=_host_sort_key):
        if not h.collected:
            continue
        m = h.metrics
        vms = m.get("hv.vms_running")
        rows.append(
            [
                h.name,
                host_verdict(h).upper(),  # a StrEnum: its text
                num(m.get("cpu.busy_pct")),
                num(m.get("cpu.iowait_pct")),
                num(m.get("cpu.steal_pct")),
                num(m.get("mem.used_pct")),
                num(m.get("load.per_cpu"), 2),
                *(_busiest(h.rows_of(name), key, unit) for name, key, unit in scopes),
                "-" if vms is None else f"{vms}/{m.get('hv.vms_total')}",
            ]
        )
    headers = ["HOST", "HEALTH", "CPU%", "IOW%", "STEAL%", "MEM%", "LOAD/CPU"]
    headers += [str(s.busiest).upper() for s in catalog.ROW_SCOPES if s.busiest] + ["VMS"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _hypervisors(report: Report) -> list[str]:
    hvs = [h for h in report.hosts if h.collected and "hv.vms_total" in h.metrics]
    if not hvs:
        return []
    rows = [
        [
            h.name,
            f"{h.metrics.get('hv.vms_running')}/{h.metrics.get('hv.vms_total')}",
            num(h.metrics.get("hv.vcpu_overcommit_ratio"), 2),
            num(h.metrics.get("hv.mem_overcommit_ratio"), 2),
            num(h.metrics.get("hv.vm_cpu_pct")),
            num(h.metrics.get("cpu.busy_pct")),
        ]
        for h in sorted(hvs, key=lambda h: h.name)
    ]
    hdr = ["HOST", "VMS RUN/ALL", "VCPU OVERCOMMIT", "MEM OVERCOMMIT", "GUEST CPU%", "HOST CPU%"]
    return ["Hypervisors", tabulate(rows, headers=hdr, disable_numparse=True), ""]


def _ranked_row(scope: RowScope, h: HostReport, r: Row) -> list[str]:
    name = r.name
    if scope.echo is not None and scope.echo in r.labels:  # "vnet3 (VM web-1)"
        name += f" ({catalog.ROW_SCOPE[scope.echo].name_label} {r.labels[scope.echo]})"
    figures = [_figure(_value(r, c), c.unit, c.digits) for c in scope.columns]
    return [name, h.name, *figures] if scope.name_first else [h.name, name, *figures]


def _rankings(report: Report) -> list[str]:
    """Each row scope's top tables across the fleet (busiest disks, top VMs by CPU, ...)."""
    out = []
    for scope in catalog.ROW_SCOPES:
        first = [scope.noun.upper(), "HOST"] if scope.name_first else ["HOST", scope.noun.upper()]
        hdr = first + [_heading(c) for c in scope.columns]
        for ranking in scope.rankings:
            top = _top(report.hosts, scope.name, _key(ranking.by))
            if top:
                rows = [_ranked_row(scope, h, r) for h, r, _k in top]
                out += [ranking.title, tabulate(rows, headers=hdr, disable_numparse=True), ""]
    return out


def render_text(report: Report, max_findings: int = MAX_FINDINGS) -> str:
    """The whole text report; the Findings table keeps its `max_findings` worst rows."""
    run = report.run
    s = summary(report)
    lines = [
        f"fleetmon {run.fleetmon_version}  {run.started_at}  inventory {run.inventory}"
        + (f"  limit {run.limit}" if run.limit else "")
        + f"  interval {run.interval_s:g} s",
        f"{s['hosts']} hosts: {s['collected']} collected, {s['failed']} not collected; "
        f"{s['critical']} critical, {s['warning']} warning, {s['unknown']} unknown, "
        f"{s['ok']} ok  (exit {report.exit_code})",
    ]
    if run.rule_files:
        lines.append("rules: " + ", ".join(run.rule_files))
    lines += [f"WARNING: {note}" for note in run.host_key_notes]
    lines += [f"note: {note}" for note in run.notes]
    lines.append("")
    lines += _changes(report)
    findings = _finding_rows(report)
    if findings:
        rows = [
            [
                f.severity.value.upper(),
                host,
                f.subject,
                num(f.value, 2),
                f.threshold or "",
                f.message,
            ]
            for host, f in findings[:max_findings]
        ]
        hdr = ["SEVERITY", "HOST", "SUBJECT", "VALUE", "THRESHOLD", "MESSAGE"]
        lines += ["Findings", tabulate(rows, headers=hdr, disable_numparse=True)]
        if len(findings) > max_findings:
            more = len(findings) - max_findings
            lines.append(f"… and {more} more findings (see --format json or html)")
        lines.append("")
    if any(h.collected for h in report.hosts):
        lines += ["Hosts", _hosts_table(report.hosts), ""]
    lines += _since_last(report.hosts)
    lines += _hypervisors(report)
    lines += _rankings(report)
    failed = [h for h in report.hosts if h.status is not Status.OK]
    if failed:
        rows = [[h.name, h.address, h.status.value, h.error or ""] for h in failed]
        hdr = ["HOST", "ADDRESS", "STATUS", "REASON"]
        lines += ["Not collected", tabulate(rows, headers=hdr, disable_numparse=True), ""]
    noted = [h for h in report.hosts if h.collected and h.notes]
    if noted:
        lines.append("Notes")
        lines += [f"  {clean(h.name)}: {clean(note)}" for h in noted for note in h.notes]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
