"""The HTML report's view model (pure): formatted cells, rows and tables the template lays out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetmon.model import Finding, FleetStat, HostReport, Row
from fleetmon.model.catalog import RowScope
from fleetmon.model.stubs import stub_role


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: its text, the sort key the script reads, a sub-line, a mark."""

    text: str
    sort: str = ""
    sub: str = ""  # the device, interface or mount the figure belongs to; a VM's state
    cls: str = ""  # "hi" marks a column's largest figure
    link: str = ""  # the anchor of the host section it names


@dataclass(frozen=True, slots=True)
class Seg:
    """One segment of a host's CPU bar: where it starts and its width, in pixels."""

    cls: str
    x: str
    width: str


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One host's row in the fleet table."""

    host: HostReport
    anchor: str
    verdict: str  # its class: the status column sorts on it (the heading's data-r)
    groups: str  # indices into the group filter's options
    cpu: Cell
    cpu_title: str
    segs: tuple[Seg, ...]
    cells: tuple[Cell, ...]  # memory, load, each row scope's busiest row, VMs, overcommit


@dataclass(frozen=True, slots=True)
class Table:
    """A host's table of one row scope (its disks, its VMs), folded when long."""

    head: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    fold: bool
    extra: str = ""  # a line under the table
    #: Sorted on a click on a heading (the script); its first `text_cols` columns by text.
    sortable: bool = False
    text_cols: int = 1
    #: Its first `top` rows are marked as the busiest (class t1-t3 on the table, styled in
    #: report.css.j2: one class a table, not one a row).
    top: int = 0


@dataclass(frozen=True, slots=True)
class HostView:
    """One host's section."""

    host: HostReport
    anchor: str
    verdict: str
    metrics: tuple[tuple[str, str, str], ...]  # (label, value, metric name)
    tables: tuple[tuple[str, Table], ...]
    findings: tuple[Finding, ...]  # the problems, worst first
    passed: int  # OK verdicts: counted, not listed (a rule set yields dozens per host)


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding in the list at the top, with the host it links to."""

    finding: Finding
    host: str | None
    anchor: str
    value: str


@dataclass(frozen=True, slots=True)
class Strip:
    """One metric's spread across the fleet, drawn as ticks on a line."""

    name: str
    label: str
    stat: FleetStat
    unit: str
    ticks: str  # SVG path data, one tick per host
    median_x: str
    p95_x: str
    outliers: tuple[tuple[str, str, str], ...]  # (host, anchor, x)
    scale: tuple[str, str]
    facts: str


#: The label naming another host of the report a row is also seen from: a VM's guest (the
#: VM is an inventory host too), a guest pair's hypervisor. Its name links to that section.
_HOST_LABEL = {"vm": "guest_host", "guest": "hypervisor"}


def name_cell(
    r: Row, scope: RowScope, links: Mapping[str, str], sub: str = "", cls: str = ""
) -> Cell:
    """A row's name; linked to the host section it is also seen from (a VM's guest host,
    and back), which the sub-line names, as it names what a Xen stub domain is ("stub of
    hvm1", "xenstore")."""
    role = stub_role(r) if scope.name == "vm" else None
    if role is not None:
        sub = f"{sub}, {role}" if sub else role
    other = r.labels.get(_HOST_LABEL.get(scope.name, ""), "")
    if not other:
        return Cell(r.name, "", sub, cls)
    also = f"host {other}" if scope.name == "vm" else f"on {other}"
    return Cell(r.name, "", f"{sub}, {also}" if sub else also, cls, links.get(other, ""))
