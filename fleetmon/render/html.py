"""The HTML report (pure): the report model in, one self-contained page out.

The report becomes a small view model of formatted text (htmlfmt); templates/report.html.j2
lays it out with autoescape and StrictUndefined on, so every name from a host is escaped there.

Printed (or saved as PDF) on the printer's paper, A4 or US Letter portrait, every table fits
the width: report.css.j2's `@page` margins (10 mm a side: 718 CSS px of text on A4, the
narrower sheet; no `size`, which would take the paper choice from the print dialog) and its
`@media print` rules, which set the tables in smaller
type, let the fleet table's headings and names wrap (its figures stay on one line), print
whole what screen shortens with an ellipsis and leave out the controls: the navigation, the
group filter, the arrows of the columns not sorted by (the one the rows are sorted by stays:
it says their order). A host's tables and the top lists, which repeat no heading row, move
whole to the next page when they fit on one. tests/test_html_print.py measures it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleetmon.model import (
    SEVERITIES_WORST_FIRST,
    Finding,
    FleetStat,
    HostReport,
    MetricValue,
    Report,
    Row,
    Severity,
    catalog,
    checks_passed,
    notable,
)
from fleetmon.model.catalog import Column, RowScope
from fleetmon.render.htmlenv import assets, render_page
from fleetmon.render.htmlfleet import hypervisors, rankings
from fleetmon.render.htmlfmt import (
    DASH,
    anchors,
    ceiling,
    column,
    columnar,
    finding_unit,
    fmt,
    fmt_finding,
    heading,
    number,
    sort_attr,
)
from fleetmon.render.htmltrends import WINDOWS, changes, trend_map
from fleetmon.render.htmlviews import (
    Cell,
    FindingView,
    FleetRow,
    HostView,
    Seg,
    Strip,
    Table,
    name_cell,
)
from fleetmon.render.pick import busiest
from fleetmon.rules.verdict import host_verdict, summary

#: Tables with more rows than this are folded into a <details> element.
FOLD_ROWS = 8
#: How many rows of a compact table (a host's VMs) are marked as its top ones (report.css.j2
#: styles the table classes t1 to t3).
TOP_ROWS = 3
#: A row's state that goes without saying.
RUNNING = "running"
#: Findings listed at the top before the rest is folded away.
TOP_FINDINGS = 30
#: Above this many hosts the page is lean: hosts whose every check passed get a row in the
#: fleet table but no section of their own (10,000 hosts would make a 40 MB page).
LEAN_HOSTS = 2000
#: A host's status, worst first (the fleet table's order, and the status column's: data-r on
#: its heading): its verdict in Severity's order, and a host not collected just after CRITICAL
#: (it counts as UNKNOWN in the exit code).
_WORST, *_REST = (s.value for s in SEVERITIES_WORST_FIRST)
_RANK = {v: i for i, v in enumerate((_WORST, "failed", *_REST))}
#: The CPU bar's segments: (css class, label, metrics summed).
CPU_PARTS = (
    ("u", "user", ("cpu.user_pct",)),
    ("s", "system", ("cpu.system_pct",)),
    ("w", "iowait", ("cpu.iowait_pct",)),
    ("t", "steal", ("cpu.steal_pct",)),
    ("g", "guest", ("cpu.guest_pct",)),
    ("o", "nice/irq/softirq", ("cpu.nice_pct", "cpu.irq_pct", "cpu.softirq_pct")),
)
#: The CPU bar's width in CSS pixels (svg.cpu in report.css.j2): its segments are drawn in
#: pixels, so the page needs no viewBox on each bar.
CPU_BAR_PX = 90
#: Metrics drawn as distribution strips, when the fleet statistics have them.
STRIPS = (
    "cpu.busy_pct", "cpu.steal_pct", "cpu.iowait_pct", "mem.used_pct", "mem.swap_used_pct",
    "load.per_cpu", "psi.cpu_some_pct", "psi.io_some_pct", "psi.memory_some_pct",
    "hv.vm_cpu_pct", "hv.vcpu_overcommit_ratio", "hv.mem_overcommit_ratio",
)  # fmt: skip
STRIP_W = 300.0
#: A spread over fewer hosts says nothing the fleet table does not.
MIN_STRIP_HOSTS = 3


def _figures(rows: Sequence[Row], col: Column) -> list[float | None]:
    """Each row's figure in a column: its one metric, or the sum of those known (None if none).

    One call per table column, not per cell: a 10,000-host page reads a million figures.
    """
    if len(col.metrics) == 1:
        name = col.metrics[0]
        return [number(r.metrics.get(name)) for r in rows]
    out: list[float | None] = []
    for r in rows:
        total: float | None = None
        for m in col.metrics:
            x = number(r.metrics.get(m))
            if x is not None:
                total = x if total is None else total + x
        out.append(total)
    return out


def _busiest(h: HostReport, scope: RowScope) -> Cell:
    """The fleet table's cell for a host's busiest row of `scope` (render.pick: the text
    report names the same one), named in small type."""
    best = busiest(h, scope)
    if best is None:
        return Cell(DASH)
    by = scope.rankings[0].by
    return Cell(fmt(best[1], by.unit), sort_attr(best[1], by.unit), best[0].name)


def _fleet_row(
    h: HostReport, anchor: str, verdict: str, groups: str, busiest: Sequence[RowScope]
) -> FleetRow:
    m = h.metrics
    segs: list[Seg] = []
    title: list[str] = []
    done = 0.0  # percent of the bar drawn
    for cls, label, names in CPU_PARTS:
        values = [number(m.get(n)) for n in names]
        if all(v is None for v in values):
            continue
        share = sum(v for v in values if v is not None)
        title.append(f"{label} {share:z.1f}%")  # z: a share of -0.001 is 0.0%
        # Whole pixels, each segment from where the last one ended (no gap, no overlap): the
        # title and the figure beside the bar say the exact shares.
        # The bar ends at 100 %: a share past it (a merged report's 1e308, its sum infinite)
        # draws to the end, never a width of infinity.
        end = min(max(done + share, 0.0), 100.0)
        x0, x1 = round(done * CPU_BAR_PX / 100), round(end * CPU_BAR_PX / 100)
        done = max(done, end)
        if x1 > x0:
            segs.append(Seg(cls, str(x0), str(x1 - x0)))
    idle = number(m.get("cpu.idle_pct"))
    if idle is not None:
        title.append(f"idle {idle:z.1f}%")
    busy = number(m.get("cpu.busy_pct"))
    cells: list[Cell] = [
        Cell(fmt(m.get("mem.used_pct"), "%")),
        Cell(fmt(m.get("load.per_cpu"), "load")),
    ]
    cells += [_busiest(h, scope) for scope in busiest]
    running = number(m.get("hv.vms_running"))
    total = number(m.get("hv.vms_total"))
    vms = DASH if running is None else f"{running:.0f}" + (f"/{total:.0f}" if total else "")
    cells.append(Cell(vms))  # "3/4": the script sorts on the running VMs
    # vCPU and memory overcommit in a column each: sorted on their own.
    for name in ("hv.vcpu_overcommit_ratio", "hv.mem_overcommit_ratio"):
        x = number(m.get(name))
        cells.append(Cell(fmt(x, "ratio")))
    return FleetRow(
        h, anchor, verdict, groups,
        Cell(fmt(busy, "%")), ", ".join(title), tuple(segs), tuple(cells),
    )  # fmt: skip


def _metrics(metrics: Mapping[str, MetricValue]) -> tuple[tuple[str, str, str], ...]:
    known = [d for d in catalog.HOST if d.name in metrics]
    out = [(d.label, fmt(metrics[d.name], d.unit), d.name) for d in known]
    extra = sorted(set(metrics) - {d.name for d in known})
    out += [(n, fmt(metrics[n], ""), n) for n in extra]
    return tuple(out)


def _noisy(r: Row) -> bool:
    return any((number(v) or 0) > 0 for k, v in r.metrics.items() if "errors" in k or "drops" in k)


def _rows_table(rows: Sequence[Row], scope: RowScope, links: Mapping[str, str]) -> Table:
    """A host's rows of `scope`, every metric any of them has in a column, one unit a column."""
    extra = ""
    if scope.echo is not None:
        # An echo (a VM's tap port) repeats figures its own scope's table shows (the VM's
        # network): listed only when it errs or drops.
        quiet = {id(r) for r in rows if scope.echo in r.labels and not _noisy(r)}
        rows = [r for r in rows if id(r) not in quiet]
        extra = scope.echo_note.format(n=len(quiet)) if quiet else ""
    cols = [d for d in scope.metrics if any(d.name in r.metrics for r in rows)]
    head = [scope.name_label]
    columns: list[list[Cell]] = [[name_cell(r, scope, links) for r in rows]]
    for d in cols:
        if columnar(d.unit):
            suffix, texts = column([number(r.metrics.get(d.name)) for r in rows], d.unit)
        else:  # a state, a duration: each cell in its own words
            suffix, texts = "", [fmt(r.metrics.get(d.name), d.unit) for r in rows]
        head.append(heading(d.label, suffix))
        columns.append([Cell(t) for t in texts])
    body = tuple(zip(*columns, strict=True))
    return Table(tuple(head), body, len(rows) > FOLD_ROWS, extra)


def _compact_table(rows: Sequence[Row], scope: RowScope, links: Mapping[str, str]) -> Table:
    """A host's rows of `scope` in its `detail` columns, busiest first (VMs by CPU)."""
    ranked = [
        (r, -1.0 if x is None else x)
        for r, x in zip(rows, _figures(rows, scope.rankings[0].by), strict=True)
    ]
    ranked.sort(key=lambda p: p[1], reverse=True)
    ordered = [r for r, _x in ranked]
    # Marks only help when there is a crowd to pick from; the busiest come first, so the
    # marked rows are the table's first ones.
    top = sum(1 for _r, x in ranked[:TOP_ROWS] if x > 0) if len(rows) > TOP_ROWS else 0
    # A row's state, when the scope has one, is said under its name unless it is running.
    state = next((d.name for d in scope.metrics if d.unit == "state"), None)
    states = [fmt(r.metrics.get(state), "state") if state else RUNNING for r in ordered]
    columns: list[list[Cell]] = [
        [
            name_cell(r, scope, links, "" if st == RUNNING else st)
            for r, st in zip(ordered, states, strict=True)
        ]
    ]
    head = [scope.name_label]
    for col in scope.detail:
        xs = _figures(ordered, col)
        known = [x for x in xs if x is not None]
        # The largest figure of a column is highlighted (the busiest disk, the noisiest NIC).
        unit = col.unit
        peak = max(known) if unit != "count" and len(known) >= 3 and max(known) > 0 else None
        suffix, texts = column(xs, unit)
        head.append(heading(col.label, suffix))
        # (An unknown figure is never the peak: a column of dashes has none.)
        marks = ["hi" * (x is not None and x == peak) for x in xs]
        columns.append([Cell(t, cls=m) for t, m in zip(texts, marks, strict=True)])
    body = tuple(zip(*columns, strict=True))
    return Table(tuple(head), body, len(body) > FOLD_ROWS, top=top)


def _host_view(h: HostReport, anchor: str, verdict: str, links: Mapping[str, str]) -> HostView:
    tables: list[tuple[str, Table]] = []
    for scope in catalog.ROW_SCOPES:
        rows = h.rows_of(scope.name)
        if rows:
            build = _compact_table if scope.detail else _rows_table
            table = build(rows, scope, links)
            tables.append((scope.title, table))
    bad = [f for f in notable(h.findings) if f.severity is not Severity.OK]
    findings = tuple(sorted(bad, key=lambda f: -f.severity.listing))
    passed = checks_passed(h.findings, h.passed_unheld)
    metrics = _metrics(h.metrics)
    return HostView(h, anchor, verdict, metrics, tuple(tables), findings, passed)


def _strip(
    name: str, stat: FleetStat, hosts: Sequence[HostReport], ids: Mapping[str, str]
) -> Strip:
    d = catalog.ALL.get(name)
    unit = d.unit if d else ""
    lo = min(0.0, stat.min)
    hi = ceiling(stat.max)
    if unit == "%" and stat.max <= 100:
        hi = min(max(hi, 1.0), 100.0)

    def x(v: float) -> str:
        return f"{(v - lo) / (hi - lo) * STRIP_W:.1f}"

    values = {h.name: number(h.metrics.get(name)) for h in hosts if h.collected}
    # One short vertical tick per host in a single path keeps 500 hosts to a few KB.
    ticks = "".join(f"M{x(v)} 5v10" for v in sorted({v for v in values.values() if v is not None}))
    outliers = tuple(
        (o, ids.get(o, ""), x(v)) for o in stat.outliers if (v := values.get(o)) is not None
    )
    facts = " \u00b7 ".join(
        f"{k} {fmt(v, unit)}"
        for k, v in (("median", stat.median), ("p95", stat.p95), ("max", stat.max))
    )
    return Strip(
        name, d.label if d else name, stat, unit, ticks, x(stat.median), x(stat.p95), outliers,
        (fmt(lo, unit), fmt(hi, unit)), f"{facts} \u00b7 {stat.count} hosts",
    )  # fmt: skip


def _one_of(words: Sequence[str]) -> str:
    """`a, b or c`."""
    return " or ".join(w for w in (", ".join(words[:-1]), *words[-1:]) if w)


def _problems(report: Report, ids: Mapping[str, str]) -> list[FindingView]:
    """The findings that are not OK, critical, warning then unknown (Severity.listing), fleet
    ones first within a severity."""
    # OK verdicts are only counted: a view (or even a pair) for each would cost 84 objects
    # per host.
    ok = Severity.OK
    bad: list[tuple[str | None, Finding]] = [
        (None, f) for f in report.findings if f.severity is not ok
    ]
    bad += [(h.name, f) for h in report.hosts for f in notable(h.findings) if f.severity is not ok]
    return sorted(
        (
            FindingView(
                f,
                name,
                "" if name is None else ids[name],
                fmt_finding(f.value, finding_unit(f), f.threshold),
            )
            for name, f in bad
        ),
        key=lambda v: -v.finding.severity.listing,
    )


def render_html(report: Report) -> str:
    """The whole report as one HTML page with inline CSS, SVG and a small script."""
    ids = anchors(h.name for h in report.hosts)
    verdicts = {h.name: host_verdict(h).value if h.collected else "failed" for h in report.hosts}
    groups = sorted({g for h in report.hosts for g in h.groups})
    gidx = {g: str(i) for i, g in enumerate(groups)}
    hgroups = {h.name: " ".join(gidx[g] for g in h.groups) for h in report.hosts}
    ordered = sorted(report.hosts, key=lambda h: (_RANK[verdicts[h.name]], h.name))
    lean = len(report.hosts) > LEAN_HOSTS
    detailed = [h for h in ordered if not lean or verdicts[h.name] != "ok"]
    # Links only to the sections on the page (every host with a finding has one).
    linked = {h.name: ids[h.name] for h in detailed} if lean else ids
    # The row scopes with a column of each host's busiest row (disk, NIC, filesystem).
    busiest = [s for s in catalog.ROW_SCOPES if s.busiest]
    fleet_rows = [
        _fleet_row(h, linked.get(h.name, ""), verdicts[h.name], hgroups[h.name], busiest)
        for h in ordered
    ]
    problems = _problems(report, ids)
    everything = len(report.findings) + sum(len(h.findings) + h.passed_unheld for h in report.hosts)
    strips = [
        _strip(n, report.fleet[n], report.hosts, linked)
        for n in STRIPS
        if n in report.fleet and report.fleet[n].count >= MIN_STRIP_HOSTS
    ]
    css, js, csp = assets()
    return render_page(
        "report.html.j2",
        dict(
            run=report.run,
            exit_code=report.exit_code,
            counts=summary(report),
            findings=problems,
            top_findings=TOP_FINDINGS,
            passed=everything - len(problems),
            groups=groups,
            fleet_rows=fleet_rows,
            busiest_heads=[s.busiest for s in busiest],
            busiest_names=_one_of([s.name_label for s in busiest]),
            cpu_parts=CPU_PARTS,
            ranks=list(_RANK),
            strips=strips,
            strip_w=STRIP_W,
            min_strip_hosts=MIN_STRIP_HOSTS,
            hosts=[_host_view(h, ids[h.name], verdicts[h.name], linked) for h in detailed],
            not_detailed=len(ordered) - len(detailed),
            lean_hosts=LEAN_HOSTS,
            trends=trend_map(report),
            windows=WINDOWS,
            hypervisors=hypervisors(ordered, linked),
            rankings=rankings(report.hosts, linked),
            changes=changes(report),
            css=css,
            js=js,
            csp=csp,
            dash=DASH,
        ),
    )
