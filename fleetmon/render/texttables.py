"""The text report's tables of hosts and rows (pure): hosts and hypervisors worst first, each
row scope's top tables across the fleet, the averages since the last run; each fitted to the
width asked for (textfit) and cut to `top` rows when asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleetmon.model import (
    SEVERITIES_LISTED,
    HostReport,
    MetricValue,
    Row,
    Severity,
    catalog,
    notable,
)
from fleetmon.model.catalog import Column, RowScope
from fleetmon.model.durations import format_duration
from fleetmon.model.stubs import stub_name
from fleetmon.render.pick import busiest, column_figure, figure
from fleetmon.render.textfit import fit_table
from fleetmon.rules.verdict import host_verdict

#: Rows of each top table across the fleet when `--top` is not given.
TOP = 10
#: Hosts in the table of averages since the last run when `--top` is not given.
SINCE_LAST_TOP = 20
_LISTED = tuple(s for s in SEVERITIES_LISTED if s is not Severity.OK)


def num(v: MetricValue, digits: int = 1) -> str:
    """A number for a table cell; '-' for unknown. `z`: a tiny negative (-0.001) is `0.0`,
    not `-0.0`, read as a sign error."""
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return "-" if v is None else str(v)
    return f"{v:z.{digits}f}" if isinstance(v, float) else str(v)


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


def figure_text(v: MetricValue, unit: str, digits: int) -> str:
    """A cell: bytes in binary units, anything else as a plain number (text as it is)."""
    if unit == "B/s":
        return human_bytes(v, "/s")
    if unit == "B":
        return human_bytes(v)
    return num(v, digits)


def heading(col: Column) -> str:
    """A column's heading: its label in capitals, `%` after a percentage (`UTIL%`)."""
    label = col.label.upper() if not col.label.startswith("%") else col.label
    return label + ("%" if col.unit == "%" and not col.label.startswith("%") else "")


def host_order(h: HostReport) -> tuple[int, tuple[int, ...], float]:
    """Worst first: not collected, then by the count of findings of each severity in listing
    order (critical, warning, unknown), then the busiest CPU."""
    counts = dict.fromkeys(_LISTED, 0)
    for f in notable(h.findings):
        if f.severity in counts:
            counts[f.severity] += 1
    cpu = figure(h.metrics.get("cpu.busy_pct"))
    return (int(h.collected), tuple(-n for n in counts.values()), -(cpu or 0.0))


def _more(shown: int, total: int, what: str) -> list[str]:
    return [f"\u2026 and {total - shown} more {what} (--top N shows more)"] if total > shown else []


def _busiest_cell(h: HostReport, scope: RowScope) -> str:
    """The hosts table's cell for a host's busiest row ("sdb 93%"); '-' if none."""
    best = busiest(h, scope)
    if best is None:
        return "-"
    unit = scope.rankings[0].by.unit
    return f"{best[0].name} {figure_text(best[1], unit, 0)}" + ("%" if unit == "%" else "")


def hosts_table(hosts: Sequence[HostReport], width: int | None, top: int | None) -> list[str]:
    """The collected hosts, worst first, with each row scope's busiest row."""
    scopes = [s for s in catalog.ROW_SCOPES if s.busiest]
    collected = sorted((h for h in hosts if h.collected), key=host_order)
    shown = collected[:top] if top is not None else collected
    rows = []
    for h in shown:
        m = h.metrics
        rows.append(
            [
                h.name,
                host_verdict(h).upper(),  # a StrEnum: its text
                num(m.get("cpu.busy_pct")),
                num(m.get("cpu.iowait_pct")),
                num(m.get("cpu.steal_pct")),
                num(m.get("mem.used_pct")),
                num(m.get("load.per_cpu"), 2),
                *(_busiest_cell(h, s) for s in scopes),
                vm_counts(m),
            ]
        )
    busy = [str(s.busiest).upper() for s in scopes]
    headers = ["HOST", "HEALTH", "CPU%", "IOW%", "STEAL%", "MEM%", "LOAD/CPU", *busy, "VMS"]
    drop = ["IOW%", "LOAD/CPU", "STEAL%", *reversed(busy), "VMS"]
    if any(h.virt is not None for h in shown):
        # What each host runs on (sources/virt.py), where the probe read it; the first
        # column a narrow terminal loses.
        for h, row in zip(shown, rows, strict=True):
            row.append("-" if h.virt is None else h.virt.words(h.hypervisor))
        headers.append("VIRT")
        drop.insert(0, "VIRT")
    table = fit_table(rows, headers, width, drop, flex=("HOST",))
    return ["Hosts", table, *_more(len(shown), len(collected), "hosts"), ""]


def _own_cpu(h: HostReport) -> str:
    """The host's own CPU busy: on KVM the machine's (guests included); on Xen dom0's only
    (its /proc sees its own vCPUs), said so, not to be read against the guests' share."""
    text = num(h.metrics.get("cpu.busy_pct"))
    return f"{text} (dom0)" if h.hypervisor == "xen" and text != "-" else text


def hypervisors(hosts: Sequence[HostReport], width: int | None, top: int | None) -> list[str]:
    """The hypervisors worst first: VMs, overcommit, the guests' share of the machine."""
    hvs = sorted((h for h in hosts if h.collected and "hv.vms_total" in h.metrics), key=host_order)
    if not hvs:
        return []
    shown = hvs[:top] if top is not None else hvs
    rows = [
        [
            h.name,
            host_verdict(h).upper(),
            vm_counts(h.metrics),
            num(h.metrics.get("hv.vcpu_overcommit_ratio"), 2),
            num(h.metrics.get("hv.mem_overcommit_ratio"), 2),
            num(h.metrics.get("hv.vm_cpu_pct")),
            _own_cpu(h),
        ]
        for h in shown
    ]
    hdr = ["HOST", "HEALTH", "VMS RUN/ALL", "VCPU OVERCOMMIT", "MEM OVERCOMMIT",
           "GUEST CPU% OF MACHINE", "HOST CPU%"]  # fmt: skip
    table = fit_table(rows, hdr, width, ["HEALTH", "HOST CPU%"], flex=("HOST",))
    return ["Hypervisors", table, *_more(len(shown), len(hvs), "hypervisors"), ""]


def vm_counts(m: Mapping[str, MetricValue]) -> str:
    """`running/total` VMs; `-` where the hypervisor's tools failed (both null). The text
    report's tables and `fleetmon top` print it."""
    running, total = m.get("hv.vms_running"), m.get("hv.vms_total")
    return "-" if running is None else f"{running}/{'-' if total is None else total}"


def _top(
    hosts: Sequence[HostReport], scope: str, col: Column, n: int
) -> tuple[list[tuple[HostReport, Row]], int]:
    """The `n` rows of a scope with the largest figure in `col`, and how many have one."""
    found = [
        (h, r, k)
        for h in hosts
        if h.collected
        for r in h.rows_of(scope)
        if (k := column_figure(r, col)) is not None
    ]
    found.sort(key=lambda t: -t[2])
    return [(h, r) for h, r, _k in found[:n]], len(found)


def _value(row: Row, col: Column) -> MetricValue:
    """A column's value in a row: its one metric as it is (a state), or the sum of its metrics."""
    if len(col.metrics) == 1:
        return row.metrics.get(col.metrics[0])
    return column_figure(row, col)


def row_name(scope: str, r: Row) -> str:
    """A row's name, a VM's with the inventory host that is its guest ("web-3 (host
    web03)"): the way to the guest's own figures (here and in top's host drilled into); a
    Xen stub domain's with what it is ("hvm1-dm (stub of hvm1)", "Xenstore (xenstore)")."""
    if scope != "vm":
        return r.name
    if r.labels.get("guest_host"):
        return f"{r.name} (host {r.labels['guest_host']})"
    return stub_name(r)


def _ranked_row(scope: RowScope, h: HostReport, r: Row) -> list[str]:
    name = row_name(scope.name, r)
    if scope.echo is not None and scope.echo in r.labels:  # "vnet3 (VM web-1)"
        name += f" ({catalog.ROW_SCOPE[scope.echo].name_label} {r.labels[scope.echo]})"
    figures = [figure_text(_value(r, c), c.unit, c.digits) for c in scope.columns]
    return [name, h.name, *figures] if scope.name_first else [h.name, name, *figures]


def rankings(hosts: Sequence[HostReport], width: int | None, top: int | None) -> list[str]:
    """Each row scope's top tables across the fleet (busiest disks, top VMs by CPU, ...)."""
    out = []
    n = TOP if top is None else top
    for scope in catalog.ROW_SCOPES:
        name_col = [scope.noun.upper(), "HOST"]
        first = name_col if scope.name_first else name_col[::-1]
        hdr = first + [heading(c) for c in scope.columns]
        for ranking in scope.rankings:
            shown, total = _top(hosts, scope.name, ranking.by, n)
            if not shown:
                continue
            keep = heading(ranking.by)
            drop = [heading(c) for d in scope.narrow for c in scope.columns if c.label == d]
            rows = [_ranked_row(scope, h, r) for h, r in shown]
            table = fit_table(rows, hdr, width, [d for d in drop if d != keep], flex=tuple(first))
            out += [ranking.title, table, *_more(len(shown), total, scope.noun + "s"), ""]
    return out


_GAP_METRICS = ("cpu.busy_pct", "cpu.iowait_pct", "cpu.steal_pct", "cpu.forks_per_s")


def since_last(hosts: Sequence[HostReport], width: int | None, top: int | None) -> list[str]:
    """Now and on average since the last run (exact, from the counters of both runs), the
    hosts busiest over the gap first."""
    gapped = [h for h in hosts if h.since_last_s is not None]
    if not gapped:
        return []
    limit = SINCE_LAST_TOP if top is None else top

    def avg(h: HostReport, metric: str) -> MetricValue:
        return h.since_last.get(("host", ""), {}).get(metric)

    def busy(h: HostReport) -> float:
        v = figure(avg(h, "cpu.busy_pct"))
        return -1.0 if v is None else v

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
    table = fit_table(rows, hdr, width, ["FORKS/S NOW/AVG", "IOW% NOW/AVG"], flex=("HOST",))
    return [title, table, *_more(min(limit, len(gapped)), len(gapped), "hosts"), ""]
