"""The history in the HTML report (pure): sparklines, forecasts in words, what changed.

A sparkline is sent as its values scaled to 64 levels, one character each, with its range in
words in its table cell; a host's lines are one `data-v` on its table, a part per cell in the
cells' order (empty: no line there), and the page's script draws each as an inline SVG
polyline. The numbers of 500 hosts then weigh ~0.3 MB, not the ~2 MB of drawn paths, and the
page keeps within its size budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleetmon.model import Finding, Report, Severity, Trend, catalog, notable
from fleetmon.render.htmlfmt import fmt

#: 64 levels, one character each; a missing bucket is a space.
LEVELS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
GAP = " "
WINDOWS = {"24h": "24 h", "7d": "7 d"}


@dataclass(frozen=True, slots=True)
class Spark:
    """One sparkline: its window ("24h"), encoded values (empty: a flat line), range in words."""

    window: str
    data: str
    lo: str
    hi: str


#: One row of the sparklines table: what it shows, and a cell per window (None: no line).
SparkRow = tuple[str, tuple[Spark | None, ...]]


@dataclass(frozen=True, slots=True)
class HostTrends:
    """A host's history on its section: a row of sparklines per metric (the host's, its
    busiest disk's and NIC's, then each VM's shown), a cell per window, and its forecasts."""

    rows: tuple[SparkRow, ...]
    vms: tuple[SparkRow, ...]
    forecasts: tuple[str, ...]

    @property
    def data(self) -> str:
        """Every cell's encoded line in the table's order, comma-separated (none: empty)."""
        cells = (s.data if s else "" for _label, row in self.rows + self.vms for s in row)
        return ",".join(cells).rstrip(",")


def encode(values: Sequence[float | None]) -> tuple[str, float, float] | None:
    """The values as one character per level (min..max of the known ones), and that range;
    None when fewer than two values are known."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    lo, hi = min(known), max(known)
    span = hi - lo
    top = len(LEVELS) - 1
    chars = [
        GAP if v is None else LEVELS[0 if span == 0 else round((v - lo) / span * top)]
        for v in values
    ]
    return "".join(chars), lo, hi


def label_of(t: Trend) -> str:
    """What a trend shows: the metric's label, a row's name before it."""
    d = catalog.ALL.get(t.metric)
    label = t.label or (d.label if d else t.metric)
    return f"{t.subject} {label}" if t.scope in ("disk", "nic") else label


def spark(t: Trend) -> Spark | None:
    """The sparkline of one trend (no line when it stayed flat), or None without two known
    values, or when it stayed at 0 (no steal: nothing to draw)."""
    enc = encode(t.values)
    if enc is None:
        return None
    data, lo, hi = enc
    if lo == hi == 0:
        return None
    unit = (catalog.ALL[t.metric].unit if t.metric in catalog.ALL else "") or ""
    low = fmt(lo, unit)
    high = fmt(hi, unit)
    if unit == "%":  # 4.5-8.6%: the unit once (bytes keep theirs: KiB to MiB)
        low = low.removesuffix("%")
    return Spark(t.window, "" if lo == hi else data, low, high)


def _rows(cells: Mapping[str, dict[str, Spark]]) -> tuple[SparkRow, ...]:
    """Each row's sparklines in the table's window columns (a gap where a window has none)."""
    return tuple((k, tuple(v.get(w) for w in WINDOWS)) for k, v in cells.items())


def host_trends(report: Report) -> dict[str, HostTrends]:
    """Each host's sparklines (the host's own, then its VMs') and forecasts."""
    out: dict[str, HostTrends] = {}
    for name, trends in report.trends.items():
        rows: dict[str, dict[str, Spark]] = {}
        vms: dict[str, dict[str, Spark]] = {}
        for t in trends:
            s = spark(t)
            if s is None:
                continue
            if t.scope == "vm":  # a row per VM and metric, under the same window columns
                vms.setdefault(f"VM {t.subject} {label_of(t)}", {})[t.window] = s
            else:
                rows.setdefault(label_of(t), {})[t.window] = s
        forecasts = tuple(report.forecasts.get(name, ()))
        if rows or vms or forecasts:
            out[name] = HostTrends(_rows(rows), _rows(vms), forecasts)
    return out


@dataclass(frozen=True, slots=True)
class Change:
    """A finding new or resolved since the last run."""

    host: str
    finding: Finding


def changes(report: Report) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """Findings that started firing this run, and those resolved this run (none on a
    history's first run: nothing to be new against)."""
    new: list[Change] = []
    gone: list[Change] = []
    if report.run.previous_run_at is None:
        return (), ()
    for h in report.hosts:
        for f in notable(h.findings):
            if f.state == "firing" and f.new and f.severity is not Severity.OK:
                new.append(Change(h.name, f))
            elif f.state == "resolved":
                gone.append(Change(h.name, f))
    return tuple(new), tuple(gone)


def trend_map(report: Report) -> Mapping[str, HostTrends]:
    """host_trends, empty without a history (the template asks it for every host)."""
    return host_trends(report) if report.trends or report.forecasts else {}
