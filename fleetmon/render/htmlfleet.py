"""The HTML report's fleet-wide views (pure): the hypervisors with their overcommit, and each
row scope's top tables across the fleet (top VMs by CPU, vCPU delay, disk, network; busiest
disks and NICs; fullest filesystems), the catalogue's rankings as the text report has them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleetmon.model import HostReport, Row, catalog
from fleetmon.model.catalog import RowScope
from fleetmon.render.htmlfmt import DASH, column, fmt, heading, number
from fleetmon.render.htmlviews import Cell, Table
from fleetmon.render.pick import column_figure

#: Rows of each top table across the fleet.
TOP = 10


def hypervisors(hosts: Sequence[HostReport], anchors: Mapping[str, str]) -> Table | None:
    """The collected hypervisors in the fleet table's order (worst first): VMs, vCPU and
    memory overcommit (each its own column, sorted on its own), the guests' share of the
    machine. Cells carry no sort key: the script reads the figure they start with (500
    hypervisors cost 40 KB, not 100)."""
    hvs = [h for h in hosts if h.collected and "hv.vms_total" in h.metrics]
    if not hvs:
        return None
    rows = []
    for h in hvs:
        m = h.metrics
        running, total = number(m.get("hv.vms_running")), number(m.get("hv.vms_total"))
        vms = DASH if running is None else f"{running:.0f}/{total or 0:.0f}"
        cells = [Cell(h.name, link=anchors.get(h.name, "")), Cell(vms)]
        cells += [
            Cell(fmt(m.get(name), unit))
            for name, unit in (
                ("hv.vcpu_overcommit_ratio", "ratio"),
                ("hv.mem_overcommit_ratio", "ratio"),
                ("hv.vm_cpu_pct", "%"),
            )
        ]
        rows.append(tuple(cells))
    head = ("hypervisor", "VMs run/all", "vCPU overcommit", "memory overcommit",
            "guest CPU of machine")  # fmt: skip
    return Table(head, tuple(rows), fold=False, sortable=True, text_cols=1)


def rankings(
    hosts: Sequence[HostReport], anchors: Mapping[str, str], n: int = TOP
) -> list[tuple[str, Table]]:
    """Each row scope's top tables across the fleet, one unit per column."""
    out: list[tuple[str, Table]] = []
    for scope in catalog.ROW_SCOPES:
        for ranking in scope.rankings:
            top = _top_by(hosts, scope, ranking.by, n)
            if not top:
                continue
            names = []
            for _h, r in top:
                echo = r.labels.get(scope.echo) if scope.echo is not None else None
                sub = f"{catalog.ROW_SCOPE[str(scope.echo)].name_label} {echo}" if echo else ""
                names.append(Cell(r.name, sub=sub))
            columns: list[list[Cell]] = [
                names,
                [Cell(h.name, link=anchors.get(h.name, "")) for h, _r in top],
            ]
            head = [scope.name_label, "host"]
            for col in scope.columns:
                if col.unit == "state":
                    texts = [fmt(r.metrics.get(col.metrics[0]), "state") for _h, r in top]
                    suffix = ""
                else:
                    suffix, texts = column([column_figure(r, col) for _h, r in top], col.unit)
                # A terminal's "%CPU/vCPU" and "%host" in words: the catalogue's labels.
                label = catalog.ALL[col.metrics[0]].label if col.label[:1] == "%" else col.label
                head.append(heading(label, suffix))
                columns.append([Cell(t) for t in texts])
            body = tuple(zip(*columns, strict=True))
            out.append((ranking.title, Table(tuple(head), body, fold=False)))
    return out


def _top_by(
    hosts: Sequence[HostReport], scope: RowScope, by: catalog.Column, n: int
) -> list[tuple[HostReport, Row]]:
    found = []
    for h in hosts:
        if h.collected:
            for r in h.rows_of(scope.name):
                x = column_figure(r, by)
                if x is not None:
                    found.append((x, h, r))
    found.sort(key=lambda t: -t[0])
    return [(h, r) for _x, h, r in found[:n]]
