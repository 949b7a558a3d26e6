"""`fleetmon history` output (pure): series, the file's status and exports as text, CSV or
JSON. Times are UTC, ISO 8601 in CSV and JSON; names are cleaned as in the text report (and
in CSV written to a terminal; a CSV cell a spreadsheet would take for a formula is defused).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from fleetmon.model import MetricValue
from fleetmon.model.durations import format_duration
from fleetmon.render.text import clean, tabulate

#: One subject's points: (its name, [(Unix time, values in the metrics' order)]).
Series = tuple[str, Sequence[tuple[int, tuple[MetricValue, ...]]]]


def iso(t: int | None) -> str:
    """Unix seconds as `2026-11-26T03:00:00Z` (empty for None)."""
    if t is None:
        return ""
    return _when(t, "%Y-%m-%dT%H:%M:%SZ")


def _short(t: int) -> str:
    return _when(t, "%Y-%m-%d %H:%M")


def _when(t: int, fmt: str) -> str:
    """`t` as `fmt`; a time no calendar holds (a corrupt file's: `history status --check`
    is how one finds out) as the number it is."""
    try:
        return datetime.fromtimestamp(t, UTC).strftime(fmt)
    except (ValueError, OverflowError, OSError):
        return f"(time {t}?)"


def _cell(v: MetricValue) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) >= 1e6 else f"{v:.2f}".rstrip("0").rstrip(".")
    return str(v)


#: How a cell a spreadsheet runs as a formula begins (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(c: object, terminal: bool = False) -> str:
    """One field: a number as stored (a float's repr: the shortest text that reads back as
    the same number, as the JSON has it, not rounded for the eye as the text table is; a
    negative one stays a number); a text from a host (a VM named `=cmd|' /C calc'!A0`) that
    begins as a formula does with a `'` before it, as OWASP advises, and, on a `terminal`,
    its control characters escaped as in the text report (`\x1b`). RFC 4180: a field with a
    comma, semicolon (a separator in some locales), quote or line break is quoted."""
    if c is None:
        text = ""
    elif isinstance(c, int | float):
        text = repr(c) if isinstance(c, float) else str(c)
    else:
        text = str(c)
        if text.startswith(FORMULA_START):
            text = "'" + text
        if terminal:
            text = clean(text)
    if any(ch in text for ch in ',;"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def csv_line(cells: Iterable[object], terminal: bool = False) -> str:
    """One RFC 4180 line of csv_cell()s."""
    return ",".join(csv_cell(c, terminal) for c in cells) + "\r\n"


def render_series(
    fmt: str,
    head: Mapping[str, object],
    metrics: Sequence[str],
    series: Sequence[Series],
    *,
    terminal: bool = False,
) -> Iterator[str]:
    """The points of `history show` as text, CSV or JSON; `head` says what they are;
    `terminal`: the CSV is written to one (csv_cell)."""
    several = len(series) > 1
    if fmt == "json":
        doc = {
            **head,
            "metrics": list(metrics),
            "series": [
                {"subject": name, "points": [[iso(t), *vals] for t, vals in points]}
                for name, points in series
            ],
        }
        yield json.dumps(doc, indent=1, allow_nan=False) + "\n"
        return
    if fmt == "csv":
        yield csv_line(["time", *(["subject"] if several else []), *metrics])
        for name, points in series:
            for t, vals in points:
                yield csv_line([iso(t), *([name] if several else []), *vals], terminal)
        return
    count = sum(len(p) for _, p in series)
    yield (
        f"{clean(str(head['subject']))} ({head['scope']}), {head['tier']}"
        + (f" {head['stat']}" if head["tier"] != "raw" else "")
        + f", {count} point(s) since {iso(int(str(head['since_t'])))}"
        + (f" until {iso(int(str(head['until_t'])))}" if head.get("until_t") is not None else "")
        + "\n"
    )
    rows = [
        [_short(t), *([name] if several else []), *(_cell(v) for v in vals)]
        for name, points in series
        for t, vals in points
    ]
    hdr = ["time (UTC)", *(["subject"] if several else []), *metrics]
    yield tabulate(rows, headers=hdr, disable_numparse=True) + "\n"


def render_status(status: Mapping[str, object], fmt: str) -> str:
    """`history status` as text or JSON."""
    if fmt == "json":
        return json.dumps(status, indent=1, sort_keys=True) + "\n"
    tiers = status["tiers"]
    assert isinstance(tiers, Mapping)
    ents = status["entities"]
    assert isinstance(ents, Mapping)
    last = status.get("last_run")
    lines = [
        f"history   {clean(str(status['path']))}",
        f"size      {int(str(status['bytes'])):,} bytes (schema {status['schema']}, "
        f"{status['journal_mode']} journal; {status['created_by']})",
        f"runs      {status['runs']} kept, {iso(_int(status['first_run_t']))} to "
        f"{iso(_int(status['last_run_t']))}",
    ]
    if isinstance(last, Mapping):
        lines.append(
            f"last run  {last['started_at']}: {last['collected']}/{last['hosts']} hosts "
            f"collected, exit {last['exit_code']}"
        )
    lines.append("subjects  " + ", ".join(f"{n} {s}" for s, n in sorted(ents.items())))
    lines.append(f"retention {status['retention']}")
    rows = []
    for tier, t in tiers.items():
        oldest, newest = _int(t["oldest_t"]), _int(t["newest_t"])
        span = "" if oldest is None or newest is None else format_duration(newest - oldest)
        rows.append([tier, f"{t['rows']:,}", iso(oldest), iso(newest), span])
    lines += ["", tabulate(rows, headers=["tier", "rows", "oldest", "newest", "span"])]
    if "integrity" in status:
        lines.append(f"\nintegrity {status['integrity']}")
    return "\n".join(lines) + "\n"


def _int(v: object) -> int | None:
    return v if isinstance(v, int) else None


EXPORT_HEAD = ("time", "scope", "host", "name", "uuid", "metric", "value")
ROLLUP_HEAD = ("min", "max", "n")


def render_export(
    fmt: str, tier: str, rows: Iterable[tuple[object, ...]], *, terminal: bool = False
) -> Iterator[str]:
    """Exported rows (query.export_rows) as CSV, or a JSON document, a chunk at a time;
    `terminal`: the CSV is written to one (csv_cell)."""
    head = EXPORT_HEAD + (ROLLUP_HEAD if tier != "raw" else ())
    if fmt == "csv":
        yield csv_line(head)
        for r in rows:
            yield csv_line((iso(int(str(r[0]))), *r[1:]), terminal)
        return
    yield '{"schema": "fleetmon.history-export/1", "tier": ' + json.dumps(tier) + ', "rows": ['
    sep = "\n"
    for r in rows:
        item = dict(zip(head, (iso(int(str(r[0]))), *r[1:]), strict=True))
        yield sep + json.dumps(item, allow_nan=False)
        sep = ",\n"
    yield "\n]}\n"
