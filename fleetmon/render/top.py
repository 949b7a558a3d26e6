"""`fleetmon top`'s screens as lines of text (pure): the hosts view, the VMs view (virt-top's
columns across the fleet), the containers view (`podman stats`' across the fleet) and one
host drilled into, sorted, filtered and cut to a size (columns: render/topcolumns.py).

The curses front end and `--batch` print the same lines; each line carries the severity of
what it shows, so the terminal can highlight findings as they fire.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fleetmon.model import Report, Severity, Status, catalog, notable
from fleetmon.model.stubs import stub_name
from fleetmon.render.text import clean, human_bytes, num
from fleetmon.render.textfit import MIN_FLEX, columns, cut, fit_line, pad, shorten
from fleetmon.render.texttables import row_name
from fleetmon.render.topcolumns import (
    COLUMNS,
    CTR_COLUMNS,
    HOST_COLUMNS,
    NAME_HEADS,
    SORT_KEYS,
    TEXT_HEADS,
    VIEW_SCOPES,
    VIEWS,
    VM_COLUMNS,
    Item,
    TopColumn,
    vms_of,
)
from fleetmon.rules.verdict import summary

__all__ = [
    "CTR_COLUMNS", "HOST_COLUMNS", "NAME_HEADS", "SORT_KEYS", "VIEWS", "VM_COLUMNS", "Item", "Line",
    "TopColumn", "ViewState", "fit", "frame", "host_detail", "items", "matches", "table",
    "title",
]  # fmt: skip


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
        return COLUMNS[self.view]


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
    scope = VIEW_SCOPES.get(state.view)
    if scope is not None:
        rows = [Item(h, r) for h in report.hosts for r in h.rows_of(scope)]
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


def _cell(text: str, width: int, right: bool = False) -> str:
    """A cell of `width` terminal columns: the text cleaned (a host's), cut with `~` when
    wider (a CJK character counts two), padded."""
    text = clean(text)
    if columns(text) > width:
        text = cut(text, max(1, width - 1)) + "~"
    return pad(text, width, right)


def _cells(cols: Sequence[TopColumn], values: Sequence[str], width: int, grow: int = 0) -> str:
    spare = min(grow, max(0, width - sum(c.width + 1 for c in cols)))
    out = []
    for i, (c, v) in enumerate(zip(cols, values, strict=True)):
        w = c.width + (spare if i == 0 else 0)
        out.append(_cell(v, w, right=i != 0 and _numeric_head(c)))
    return cut(" ".join(out), width)


def _numeric_head(c: TopColumn) -> bool:
    return c.head not in TEXT_HEADS


def _severity(it: Item) -> Severity | None:
    if not it.host.collected:
        return Severity.UNKNOWN
    # A vm.* finding on a Xen stub domain names it "hvm1-dm (stub of hvm1)" (model/stubs.py).
    found = [
        f.severity
        for f in notable(it.host.findings)
        if it.row is None or f.subject == (stub_name(it.row) if f.scope == "vm" else it.name)
    ]
    if not found:
        return None
    worst = max(found, key=lambda s: s.rank)
    return None if worst is Severity.OK else worst


def _secs(s: float) -> str:
    """A tick's length to a tenth, or to two figures under a second (-d 0.05: "0.052")."""
    return f"{s:.1f}" if s >= 1 else f"{s:.2g}"


def _ticks(report: Report) -> str:
    """The refresh asked for (-d), and the hosts' own intervals where they stray from it: a
    Xen host's tick is xentop's whole seconds, so `-d 0.5` gives it 1 s (its rates use its
    own interval, measured on its clock)."""
    asked = report.run.interval_s
    seen = [h.interval_s for h in report.hosts if h.interval_s]
    text = f"{asked:g} s"
    if asked > 0 and seen and not asked * 0.75 <= min(seen) <= max(seen) <= asked * 1.25:
        lo, hi = _secs(min(seen)), _secs(max(seen))
        text += f" (ticks {lo} s)" if lo == hi else f" (ticks {lo}-{hi} s)"
    return text


#: How a live mode words a host still waiting for its first two samples (cli/live.py).
WAITING_WORDS = ("connecting since ",)


def title(report: Report, state: ViewState, clock: str, width: int | None = None) -> list[Line]:
    """The two summary lines at the top, as top has: the clock, tick and hosts; then what
    fired, what is shown, and the guests' counts last (cut first in a narrow terminal).
    Narrower than the first line (`width`), it keeps the clock and the hosts' counts."""
    s = summary(report)
    vms = sum(len(h.rows_of("vm")) for h in report.hosts)
    ctrs = sum(len(h.rows_of("ctr")) for h in report.hosts)
    # SKIPPED: waiting for its first two samples, or not streamed (the inventory says why,
    # or the open-file limit): skipped.
    skipped = [h for h in report.hosts if h.status is Status.SKIPPED]
    waiting = sum(1 for h in skipped if (h.error or "").startswith(WAITING_WORDS))
    counts = [f"{s['collected']} live"]
    if waiting:
        counts.append(f"{waiting} waiting")
    if len(skipped) - waiting:
        counts.append(f"{len(skipped) - waiting} skipped")
    if s["failed"] - len(skipped):
        counts.append(f"{s['failed'] - len(skipped)} down")
    hosts = f"hosts {s['hosts']}: {', '.join(counts)}"
    # Too wide, the hosts' own ticks go first, then -d, then the clock: 40 columns were cut
    # inside "(ticks 0.5-1.0 s)", the hosts' counts gone.
    firsts = [
        f"fleetmon top - {clock}  {_ticks(report)}  {hosts}",
        f"fleetmon top - {clock}  {report.run.interval_s:g} s  {hosts}",
        f"fleetmon top - {clock}  {hosts}",
        f"fleetmon top  {hosts}",
    ]
    first = next((f for f in firsts if width is None or columns(f) <= width), firsts[-1])
    flags = "  PAUSED" if state.paused else ""
    filt = f"  filter: {clean(state.pattern)}" if state.pattern else ""
    order = "asc" if state.ascending else "desc"
    guests = f"VMs {vms}" + (f"  containers {ctrs}" if ctrs else "")
    # Hosts by their worst finding, as top's "Tasks:" counts tasks (not findings: `run`
    # counts both); unknown only when there is one, to leave the guests' counts room.
    unknown = f", {s['unknown']} unknown" if s["unknown"] else ""
    second = (
        f"hosts: {s['critical']} critical, {s['warning']} warning{unknown}  "
        f"{state.view} by {state.sort} {order}{filt}{flags}  {guests}"
    )
    return [Line(first, kind="title"), Line(second, kind="title")]


def table(report: Report, state: ViewState, width: int, height: int) -> list[Line]:
    """The view's header and as many rows as `height` allows, from `state.offset`."""
    rows = items(report, state)
    shown = rows[state.offset : state.offset + max(0, height - 1)]
    # The name column grows to the longest name shown, not further, and shrinks to it.
    longest = max((columns(clean(state.columns()[0].text(it))) for it in shown), default=0)
    name_width = max(longest, len(state.columns()[0].head))
    cols = fit(state.columns(), width, name_width, state.sort)
    grow = name_width - cols[0].width  # the heading never cut, even over no rows
    lines = [Line(_cells(cols, [c.head for c in cols], width, grow), kind="head")]
    for n, it in enumerate(shown):
        kind = "cursor" if n + state.offset == state.cursor else "row"
        texts = [c.text(it) for c in cols]
        if not it.host.collected and it.row is None:
            texts = [texts[0], texts[1], clean(it.host.error or "")]
            line = _join_free(cols, texts, width, grow, report.run.started_at[:11])
            lines.append(Line(line, Severity.UNKNOWN, kind))
            continue
        lines.append(Line(_cells(cols, texts, width, grow), _severity(it), kind))
    return lines


def _join_free(
    cols: Sequence[TopColumn], texts: Sequence[str], width: int, grow: int, today: str
) -> str:
    """A down host's row: name and status in their columns, then its reason in words."""
    spare = min(grow, max(0, width - sum(c.width + 1 for c in cols)))
    head = _cell(texts[0], cols[0].width + spare)
    state = pad(clean(texts[1]), cols[1].width)  # UNREACHABLE whole: the row has room
    lead = f"{head} {state} "
    return cut(lead + _reason(clean(texts[2]), width - columns(lead), today), width)


#: The end of a down host's reason (cli/live.py's link_words): since when, the next try.
_SINCE = re.compile(r" \((down|stopped) since (\d{4}-\d\d-\d\dT)([\d:]{8}Z)(; retry in \d+ s)?\)$")


def _reason(text: str, room: int, today: str) -> str:
    """A down host's reason in `room` columns: since when it is down outlives the words
    before it, which a narrow terminal cut first. Shortened in turn: the failure's words,
    the next try, the date when it is the report's (`today`, "2026-12-02T")."""
    m = _SINCE.search(text)
    if columns(text) <= room or m is None:
        return text
    what, (state, day, clock, retry) = text[: m.start()], m.groups()
    whens = [f"({state} since {day}{clock}{retry or ''})", f"({state} since {day}{clock})"]
    if day == today:
        whens.append(f"({state} since {clock})")
    for when in whens:
        if room - len(when) - 1 >= MIN_FLEX:
            return f"{shorten(what, room - len(when) - 1)} {when}"
    # Narrower (40 columns: 19 left after the name and UNREACHABLE), the state's word goes
    # (the HEALTH column says it), then the bracket: a row cut inside it ("(down since 05:12")
    # told less than none; the host drilled into has the reason whole.
    if day == today:
        whens += [f"(since {clock})"]
    return next((w for w in whens if len(w) <= room), "")


#: A host's notes take at least this many lines of the host drilled into (its tables give
#: way), more when the rest leaves room: 4 of the 21 rows an 80x24 terminal has below the
#: title, the figures and findings above them.
NOTE_LINES = 4


def _note_lines(notes: Sequence[str], width: int, room: int) -> list[Line]:
    """A host's notes (a guest's pairing, containers restarted...) folded to `width`, each
    cleaned (host-supplied text), whole notes only, in at most `room` lines: the last then
    says how many more there are (the text report and /api/report have them all)."""
    out: list[Line] = []
    for k, note in enumerate(notes):
        folded = fit_line(f"note: {clean(note)}", width, indent="      ")
        more = len(notes) - k - 1
        if len(out) + len(folded) + (1 if more else 0) > room:
            left = len(notes) - k
            return [*out, Line(f"+{left} more note{'s' if left > 1 else ''}", kind="note")][:room]
        out += [Line(ln, kind="note") for ln in folded]
    return out


def host_detail(report: Report, name: str, width: int, height: int) -> list[Line]:
    """One host drilled into: its figures, findings, disks, NICs, VMs and notes."""
    host = next((h for h in report.hosts if h.name == name), None)
    if host is None:
        return [Line(f"host {clean(name)} is not in the report", kind="note")]
    m = host.metrics
    # A down host's reason (what failed, since when, the next try) wrapped over as many
    # lines as it takes: this is where it is read whole, its row in the hosts view cut.
    said = f"{clean(host.name)}  {host.status.value}  {clean(host.error or '')}".rstrip()
    lines = [
        *(Line(ln, kind="head") for ln in fit_line(said, width, indent="  ")),
        Line(
            f"CPU {num(m.get('cpu.busy_pct'))}%  steal {num(m.get('cpu.steal_pct'))}%  "
            f"iowait {num(m.get('cpu.iowait_pct'))}%  mem {num(m.get('mem.used_pct'))}%  "
            f"load/CPU {num(m.get('load.per_cpu'), 2)}  VMs {vms_of(Item(host))}"
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
            cells = [clean(row_name(scope.name, r))]
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
    # The notes below the rest, in the room it leaves but at least NOTE_LINES (the tables
    # give way): they were not shown at all, though nowhere else in top says them.
    room = min(max(NOTE_LINES, height - len(lines)), max(0, height - 2))
    notes = _note_lines(host.notes, width, room) if host.notes else []
    lines = [*lines[: height - len(notes)], *notes]
    return [Line(cut(ln.text, width), ln.severity, ln.kind) for ln in lines[:height]]


def frame(report: Report, state: ViewState, width: int, height: int, clock: str) -> list[Line]:
    """A whole screen: the summary lines, then the view (or the host drilled into)."""
    head = title(report, state, clock, width)
    rest = max(0, height - len(head) - 1)
    if state.host is not None:
        body = host_detail(report, state.host, width, rest)
    else:
        body = table(report, state, width, rest)
    # Each cell is cleaned where it is made; cleaning the whole line again (a no-op then)
    # keeps any text a host sent from reaching the terminal raw, whatever the column.
    lines = [*head, Line(""), *body][:height]
    return [Line(cut(clean(ln.text), width), ln.severity, ln.kind) for ln in lines]
