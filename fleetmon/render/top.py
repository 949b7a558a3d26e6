"""`fleetmon top`'s screens as lines of text (pure): the hosts view, the VMs view (virt-top's
columns across the fleet) and one host drilled into, sorted, filtered and cut to a size.

The curses front end and `--batch` print the same lines; each line carries the severity of
what it shows, so the terminal can highlight findings as they fire.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetmon.model import HostReport, MetricValue, Report, Row, Severity, Status, catalog, notable
from fleetmon.render.text import clean, human_bytes, num
from fleetmon.render.texttables import vm_counts
from fleetmon.rules.verdict import host_verdict, summary

VIEWS = ("hosts", "vms")


@dataclass(frozen=True, slots=True)
class Item:
    """One table row: a host, or a VM with its host."""

    host: HostReport
    row: Row | None = None

    @property
    def name(self) -> str:
        return self.row.name if self.row is not None else self.host.name

    def get(self, metric: str) -> MetricValue:
        if self.row is not None:
            return self.row.metrics.get(metric)
        return self.host.metrics.get(metric)


@dataclass(frozen=True, slots=True)
class TopColumn:
    """A column: its heading, width, the figure it shows and the number it sorts by."""

    head: str
    width: int
    text: Callable[[Item], str]
    key: Callable[[Item], float | str | None]
    #: Lower is dropped first when the terminal is narrow; 0 never.
    keep: int = 1


def _metric(name: str, digits: int = 1) -> tuple[Callable[[Item], str], Callable[[Item], float]]:
    def text(it: Item) -> str:
        return num(it.get(name), digits)

    def key(it: Item) -> float:
        v = it.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else -1.0

    return text, key


def _bytes(*names: str) -> tuple[Callable[[Item], str], Callable[[Item], float]]:
    def total(it: Item) -> float | None:
        vals = [it.get(n) for n in names]
        nums = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        return sum(nums) if nums else None

    def text(it: Item) -> str:
        t = total(it)
        return "-" if t is None else human_bytes(t).replace(" ", "")

    def key(it: Item) -> float:
        t = total(it)
        return -1.0 if t is None else t

    return text, key


def _col(head: str, width: int, pair: tuple[Callable[[Item], str], Callable[[Item], float]],
         keep: int = 1) -> TopColumn:  # fmt: skip
    return TopColumn(head, width, pair[0], pair[1], keep)


def _busiest(scope: str) -> tuple[Callable[[Item], str], Callable[[Item], float]]:
    ranking = catalog.ROW_SCOPE[scope].rankings[0].by

    def score(r: Row) -> float | None:
        vals = [r.metrics.get(m) for m in ranking.metrics]
        nums = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        return sum(nums) if nums else None

    def best(it: Item) -> tuple[str, float] | None:
        scored = [(r.name, s) for r in it.host.rows_of(scope) if (s := score(r)) is not None]
        return max(scored, key=lambda t: t[1]) if scored else None

    def text(it: Item) -> str:
        b = best(it)
        if b is None:
            return "-"
        fig = f"{b[1]:.0f}%" if ranking.unit == "%" else human_bytes(b[1]).replace(" ", "")
        return f"{b[0]} {fig}"

    def key(it: Item) -> float:
        b = best(it)
        return -1.0 if b is None else b[1]

    return text, key


def _verdict(it: Item) -> str:
    h = it.host
    if not h.collected:
        return h.status.value.upper()
    v = host_verdict(h)
    return "-" if v is Severity.OK else v.value.upper()


def _vms(it: Item) -> str:
    return vm_counts(it.host.metrics)


def _vm_count(it: Item) -> float:
    v = it.host.metrics.get("hv.vms_running")
    return float(v) if isinstance(v, int | float) else -1.0


HOST_COLUMNS: tuple[TopColumn, ...] = (
    TopColumn("HOST", 18, lambda it: clean(it.host.name), lambda it: it.host.name, keep=0),
    TopColumn("HEALTH", 8, _verdict, lambda it: float(host_verdict(it.host).rank), keep=0),
    _col("CPU%", 6, _metric("cpu.busy_pct"), keep=0),
    _col("STEAL%", 6, _metric("cpu.steal_pct"), keep=5),
    _col("IOW%", 6, _metric("cpu.iowait_pct"), keep=4),
    _col("MEM%", 6, _metric("mem.used_pct"), keep=0),
    _col("LOAD/C", 6, _metric("load.per_cpu", 2), keep=3),
    TopColumn("VMS", 7, _vms, _vm_count, keep=2),
    _col("DISK", 14, _busiest("disk"), keep=1),
    _col("NIC", 16, _busiest("nic"), keep=1),
)

VM_COLUMNS: tuple[TopColumn, ...] = (
    TopColumn("VM", 18, lambda it: clean(it.name), lambda it: it.name, keep=0),
    TopColumn("HOST", 12, lambda it: clean(it.host.name), lambda it: it.host.name, keep=0),
    TopColumn(
        "STATE",
        8,
        lambda it: clean(it.get("vm.state") or "-"),
        lambda it: str(it.get("vm.state") or ""),
        keep=3,
    ),
    _col("%CPU", 6, _metric("vm.cpu_host_pct"), keep=0),
    _col("%VCPU", 6, _metric("vm.cpu_pct"), keep=0),
    _col("DELAY%", 6, _metric("vm.vcpu_delay_pct"), keep=0),
    _col("MEM", 9, _bytes("vm.mem_current_bytes"), keep=0),
    _col("RDRQ", 7, _metric("vm.disk_reads_per_s", 0), keep=1),
    _col("WRRQ", 7, _metric("vm.disk_writes_per_s", 0), keep=1),
    _col("RDBY", 9, _bytes("vm.disk_read_bytes_per_s"), keep=2),
    _col("WRBY", 9, _bytes("vm.disk_write_bytes_per_s"), keep=2),
    _col("RXBY", 9, _bytes("vm.net_rx_bytes_per_s"), keep=2),
    _col("TXBY", 9, _bytes("vm.net_tx_bytes_per_s"), keep=2),
    # virt-top's packet counts (KVM; xentop has none) and xentop's VBD_OO (Xen only).
    _col("RXPK", 7, _metric("vm.net_rx_packets_per_s", 0), keep=1),
    _col("TXPK", 7, _metric("vm.net_tx_packets_per_s", 0), keep=1),
    _col("VBD_OO", 6, _metric("vm.disk_oo_per_s"), keep=1),
)

#: top's own keys: P sorts by CPU, M by memory (in both views).
SORT_KEYS = {"P": {"hosts": "CPU%", "vms": "%CPU"}, "M": {"hosts": "MEM%", "vms": "MEM"}}


@dataclass(frozen=True, slots=True)
class ViewState:
    """What the user chose: the view, the sort column, the filter, the host drilled into."""

    view: str = "hosts"
    sort: str = "CPU%"
    ascending: bool = False
    pattern: str = ""
    host: str | None = None  # drilled into
    paused: bool = False
    offset: int = 0  # first row shown (scrolling)
    cursor: int = 0  # the row selected (Enter drills into its host)

    def columns(self) -> tuple[TopColumn, ...]:
        return HOST_COLUMNS if self.view == "hosts" else VM_COLUMNS


@dataclass(frozen=True, slots=True)
class Line:
    """One screen line and how to show it."""

    text: str
    severity: Severity | None = None  # a row whose host or VM has findings
    kind: str = "row"  # "title", "head", "row", "cursor" (the selected row), "note"


def matches(pattern: str, *names: str) -> bool:
    """The filter: a shell glob when it has one of *?[, else a case-insensitive substring."""
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return any(fnmatch.fnmatchcase(n, pattern) for n in names)
    low = pattern.lower()
    return any(low in n.lower() for n in names)


def items(report: Report, state: ViewState) -> list[Item]:
    """The rows of the view, filtered and sorted."""
    if state.view == "vms":
        rows = [Item(h, r) for h in report.hosts for r in h.rows_of("vm")]
        rows = [it for it in rows if matches(state.pattern, it.name, it.host.name)]
    else:
        rows = [Item(h) for h in report.hosts if matches(state.pattern, h.name)]
    col = next((c for c in state.columns() if c.head == state.sort), state.columns()[2])
    numeric = [it for it in rows if not isinstance(col.key(it), str)]

    def key(it: Item) -> tuple[float | str, str]:
        k = col.key(it)
        return (-1.0 if k is None else k, it.name)

    if len(numeric) == len(rows):
        # Uncollected hosts last whichever way, as top puts idle processes last.
        collected = sorted((i for i in rows if i.host.collected), key=key)
        if not state.ascending:
            collected.reverse()
        return collected + [i for i in rows if not i.host.collected]
    return sorted(rows, key=lambda it: str(col.key(it) or ""), reverse=not state.ascending)


def fit(
    columns: Sequence[TopColumn], width: int, name_width: int | None = None, sort: str = ""
) -> list[TopColumn]:
    """The columns that fit `width`: every one that is never dropped and the one sorted by,
    then the others, most needed first (left to right among equals), each that still fits,
    so that a narrow terminal shows what fits. The first (name) column counts as
    `name_width` when its names are shorter than its width (it shrinks to them), and grows
    into what is left."""
    first = columns[0].width if name_width is None else min(columns[0].width, name_width)
    must = {i for i, c in enumerate(columns) if i == 0 or c.keep == 0 or c.head == sort}
    used = first + 1 + sum(columns[i].width + 1 for i in must if i != 0)
    for i in sorted(set(range(len(columns))) - must, key=lambda i: (-columns[i].keep, i)):
        if used + columns[i].width + 1 <= width:
            used += columns[i].width + 1
            must.add(i)
    return [c for i, c in enumerate(columns) if i in must]


def _cells(cols: Sequence[TopColumn], values: Sequence[str], width: int, grow: int = 0) -> str:
    spare = min(grow, max(0, width - sum(c.width + 1 for c in cols)))
    out = []
    for i, (c, v) in enumerate(zip(cols, values, strict=True)):
        w = c.width + (spare if i == 0 else 0)
        v = v if len(v) <= w else v[: max(1, w - 1)] + "~"
        out.append(v.ljust(w) if i == 0 or not _numeric_head(c) else v.rjust(w))
    return " ".join(out)[:width]


def _numeric_head(c: TopColumn) -> bool:
    return c.head not in ("HOST", "VM", "HEALTH", "STATE", "DISK", "NIC")


def _severity(it: Item) -> Severity | None:
    if not it.host.collected:
        return Severity.UNKNOWN
    found = [
        f.severity for f in notable(it.host.findings) if it.row is None or f.subject == it.name
    ]
    if not found:
        return None
    worst = max(found, key=lambda s: s.rank)
    return None if worst is Severity.OK else worst


def _ticks(report: Report) -> str:
    """The refresh asked for (-d), and the hosts' own intervals where they stray from it: a
    Xen host's tick is xentop's whole seconds, so `-d 0.5` gives it 1 s (its rates use its
    own interval, measured on its clock)."""
    asked = report.run.interval_s
    seen = [h.interval_s for h in report.hosts if h.interval_s]
    text = f"{asked:g} s"
    if asked > 0 and seen and not asked * 0.75 <= min(seen) <= max(seen) <= asked * 1.25:
        lo, hi = f"{min(seen):.1f}", f"{max(seen):.1f}"
        text += f" (ticks {lo} s)" if lo == hi else f" (ticks {lo}-{hi} s)"
    return text


def title(report: Report, state: ViewState, clock: str) -> list[Line]:
    """The two summary lines at the top, as top has."""
    s = summary(report)
    vms = sum(len(h.rows_of("vm")) for h in report.hosts)
    # SKIPPED: not streamed (the inventory says why), or waiting for its first two samples.
    waiting = sum(1 for h in report.hosts if h.status is Status.SKIPPED)
    counts = [f"{s['collected']} live"]
    if waiting:
        counts.append(f"{waiting} waiting")
    if s["failed"] - waiting:
        counts.append(f"{s['failed'] - waiting} down")
    first = (
        f"fleetmon top - {clock}  {_ticks(report)}  hosts {s['hosts']}: "
        f"{', '.join(counts)}  VMs {vms}"
    )
    flags = "  PAUSED" if state.paused else ""
    filt = f"  filter: {clean(state.pattern)}" if state.pattern else ""
    order = "asc" if state.ascending else "desc"
    second = (
        f"findings: {s['critical']} critical, {s['warning']} warning  "
        f"{state.view} by {state.sort} {order}{filt}{flags}"
    )
    return [Line(first, kind="title"), Line(second, kind="title")]


def table(report: Report, state: ViewState, width: int, height: int) -> list[Line]:
    """The view's header and as many rows as `height` allows, from `state.offset`."""
    rows = items(report, state)
    shown = rows[state.offset : state.offset + max(0, height - 1)]
    # The name column grows to the longest name shown, not further, and shrinks to it.
    longest = max((len(state.columns()[0].text(it)) for it in shown), default=0)
    name_width = max(longest, len(state.columns()[0].head))
    cols = fit(state.columns(), width, name_width, state.sort)
    grow = longest - cols[0].width
    lines = [Line(_cells(cols, [c.head for c in cols], width, grow), kind="head")]
    for n, it in enumerate(shown):
        kind = "cursor" if n + state.offset == state.cursor else "row"
        texts = [c.text(it) for c in cols]
        if not it.host.collected and it.row is None:
            texts = [texts[0], texts[1], clean(it.host.error or "")]
            lines.append(Line(_join_free(cols, texts, width, grow), Severity.UNKNOWN, kind))
            continue
        lines.append(Line(_cells(cols, texts, width, grow), _severity(it), kind))
    return lines


def _join_free(cols: Sequence[TopColumn], texts: Sequence[str], width: int, grow: int) -> str:
    """A down host's row: name and status in their columns, then its reason in words."""
    spare = min(grow, max(0, width - sum(c.width + 1 for c in cols)))
    head = texts[0].ljust(cols[0].width + spare)[: cols[0].width + spare]
    return f"{head} {texts[1].ljust(cols[1].width)} {texts[2]}"[:width]


def host_detail(report: Report, name: str, width: int, height: int) -> list[Line]:
    """One host drilled into: its figures, findings, disks, NICs and VMs."""
    host = next((h for h in report.hosts if h.name == name), None)
    if host is None:
        return [Line(f"host {clean(name)} is not in the report", kind="note")]
    m = host.metrics
    lines = [
        Line(f"{clean(host.name)}  {host.status.value}  {clean(host.error or '')}", kind="head"),
        Line(
            f"CPU {num(m.get('cpu.busy_pct'))}%  steal {num(m.get('cpu.steal_pct'))}%  "
            f"iowait {num(m.get('cpu.iowait_pct'))}%  mem {num(m.get('mem.used_pct'))}%  "
            f"load/CPU {num(m.get('load.per_cpu'), 2)}  VMs {_vms(Item(host))}"
        ),
    ]
    for f in sorted(notable(host.findings), key=lambda f: -f.severity.rank):
        if f.severity is not Severity.OK:
            text = (
                f"{f.severity.value.upper()} {clean(f.rule)} {clean(f.subject)}: {clean(f.message)}"
            )
            lines.append(Line(text, f.severity))
    for scope in catalog.ROW_SCOPES:
        rows = host.rows_of(scope.name)
        if not rows:
            continue
        heads = [scope.noun.upper(), *(c.label for c in scope.columns)]
        lines.append(Line("  ".join(h for h in heads), kind="head"))
        for r in rows:
            cells = [clean(r.name)]
            for c in scope.columns:
                vals = [r.metrics.get(x) for x in c.metrics]
                if c.unit == "B/s" or c.unit == "B":
                    nums = [float(v) for v in vals if isinstance(v, int | float)]
                    cells.append(human_bytes(sum(nums)) if nums else "-")
                elif len(vals) == 1:
                    cells.append(clean(num(vals[0], c.digits)))
                else:
                    nums = [float(v) for v in vals if isinstance(v, int | float)]
                    cells.append(num(sum(nums), c.digits) if nums else "-")
            lines.append(Line("  ".join(cells)))
    return [Line(ln.text[:width], ln.severity, ln.kind) for ln in lines[:height]]


def frame(report: Report, state: ViewState, width: int, height: int, clock: str) -> list[Line]:
    """A whole screen: the summary lines, then the view (or the host drilled into)."""
    head = title(report, state, clock)
    head = [Line(ln.text[:width], ln.severity, ln.kind) for ln in head]
    rest = max(0, height - len(head) - 1)
    if state.host is not None:
        body = host_detail(report, state.host, width, rest)
    else:
        body = table(report, state, width, rest)
    return [*head, Line(""), *body][:height]
