"""Reading the history (I/O): entities, series of metrics over time, the file's status.

A series comes from one tier: `raw` (one point per run), `hourly` or `daily` (one point per
bucket, the statistic asked for: avg, min, max or n). A few entities are read by key (one
lookup per run or bucket), many by one scan of the time range.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fleetmon.errors import HistoryError
from fleetmon.history import schema
from fleetmon.history.retention import first_t, floor, stored, table_first_t
from fleetmon.history.store import History, file_size, sidecar
from fleetmon.model import MetricValue
from fleetmon.model.utf8 import utf8_safe

_SHIFT = schema.ENTITY_BITS
_MASK = schema.ENTITY_MASK
#: Up to this many entities, a series is read by key; more, by scanning the time range.
_BY_KEY_MAX = 32


@dataclass(frozen=True, slots=True)
class Entity:
    """A subject with a history: a host, or a disk, NIC, filesystem or VM of one."""

    id: int
    scope: str
    host: str
    name: str
    uuid: str | None
    first_t: int
    last_t: int


#: One point of a series: (Unix time, the values of the metrics asked for, in order).
Point = tuple[int, tuple[MetricValue, ...]]

_ENTITY_COLS = "id, scope, host, name, uuid, first_t, last_t"


def entities(
    hist: History, scope: str, host: str | None = None, name: str | None = None
) -> list[Entity]:
    """The entities of a scope, of one host and/or with one name, most recently seen first."""
    sql = f"SELECT {_ENTITY_COLS} FROM entities WHERE scope = ?"
    args: list[object] = [scope]
    if host is not None:
        sql += " AND host = ?"
        args.append(utf8_safe(host))  # as write.py stores it
    if name is not None:
        sql += " AND name = ?"
        args.append(utf8_safe(name))
    rows = hist.conn.execute(sql + " ORDER BY last_t DESC, id", args).fetchall()
    return [Entity(*r) for r in rows]


def column(hist: History, scope: str, metric: str) -> schema.Column:
    """The file's column of a metric; HistoryError when the file has none."""
    for c in hist.columns.get(scope, ()):
        if c.metric == metric:
            return c
    raise HistoryError(f"history {hist.path}: no {scope} metric {metric!r} recorded")


def _decoder(hist: History, col: schema.Column, stat: str) -> tuple[str, float]:
    if stat == "n":
        return "n", 1.0
    if col.scale == 0:
        return "text", 0.0
    return "int" if col.scale == 1 else "float", float(col.scale)


def _decode(value: int | None, kind: str, scale: float, texts: dict[int, str]) -> MetricValue:
    if value is None:
        return None
    if kind == "text":
        return texts.get(value)
    if kind in ("int", "n"):
        return value
    return value / scale


def series(
    hist: History,
    tier: str,
    scope: str,
    ids: Sequence[int],
    metrics: Sequence[str],
    since_t: int,
    until_t: int,
    *,
    stat: str = "avg",
    status: bool = False,
) -> dict[int, list[Point]]:
    """Points in [since_t, until_t) of each entity in `ids`, oldest first. `status` (raw
    tier only): each point's values start with the row's status (a host's: ok,
    unreachable, timeout...), so a run the host missed says why instead of being blank."""
    cols = [column(hist, scope, m) for m in metrics]
    if tier != "raw" and any(c.scale == 0 for c in cols) and stat != "n":
        names = [c.metric for c in cols if c.scale == 0]
        raise HistoryError(f"{', '.join(names)}: a state has no {tier} {stat}, only raw values")
    if not cols:
        raise HistoryError("no metric asked for")
    names = [c.metric if tier == "raw" else f"{c.metric}:{stat}" for c in cols]
    decoders = [_decoder(hist, c, stat) for c in cols]
    if status and tier == "raw":
        names, decoders = ["status", *names], [("text", 0.0), *decoders]
    select = ", ".join(schema.q(n) for n in names)
    table = schema.table(tier, scope)
    texts = {v: k for k, v in hist.texts.items()}
    out: dict[int, list[Point]] = {i: [] for i in ids}

    def point(t: int, row: Sequence[int | None]) -> Point:
        return t, tuple(_decode(v, k, s, texts) for v, (k, s) in zip(row, decoders, strict=True))

    if len(ids) <= _BY_KEY_MAX:
        sql = _keyed_sql(tier, table, names)
        start = _walk_from(hist, tier, table, since_t)
        for eid in ids if start is not None else ():
            for t, *row in hist.conn.execute(sql, (start, until_t, eid)):
                out[eid].append(point(t, row))
        return out
    wanted = set(ids)
    rows = hist.conn.execute(
        f"SELECT k, {select} FROM {table} WHERE k >= ? AND k < ? ORDER BY k",
        (since_t << _SHIFT, until_t << _SHIFT),
    )
    for k, *row in rows:
        eid = k & _MASK
        if eid in wanted:
            out[eid].append(point(k >> _SHIFT, row))
    return out


def numeric_points(
    hist: History,
    tier: str,
    scope: str,
    ids: Sequence[int],
    metrics: Sequence[str],
    since_t: int,
    until_t: int,
) -> dict[int, dict[str, list[tuple[float, float]]]]:
    """The numbers only (the hourly tier's averages), as (time, value) lists per entity and
    metric: what rules and fits read, without series()'s per-point decoding (a day of 1,000
    hosts is 288,000 rows)."""
    cols = [column(hist, scope, m) for m in metrics]
    names = [c.metric if tier == "raw" else f"{c.metric}:avg" for c in cols]
    scales = [float(c.scale or 1) for c in cols]
    out: dict[int, dict[str, list[tuple[float, float]]]] = {
        i: {m: [] for m in metrics} for i in ids
    }
    table = schema.table(tier, scope)
    if len(ids) > _BY_KEY_MAX:
        _grouped_points(hist, table, names, scales, metrics, since_t, until_t, out)
        return out
    sql = _keyed_sql(tier, table, names)
    start = _walk_from(hist, tier, table, since_t)
    pairs = list(zip(metrics, scales, strict=True))
    for eid in ids if start is not None else ():
        per = out[eid]
        for t, *vals in hist.conn.execute(sql, (start, until_t, eid)):
            for (m, scale), v in zip(pairs, vals, strict=True):
                if v is not None:
                    per[m].append((float(t), v / scale))
    return out


def _grouped_points(
    hist: History,
    table: str,
    names: Sequence[str],
    scales: Sequence[float],
    metrics: Sequence[str],
    since_t: int,
    until_t: int,
    out: dict[int, dict[str, list[tuple[float, float]]]],
) -> None:
    """numeric_points() of many entities: grouped by entity in SQLite, each group's times
    and values as JSON arrays that json.loads reads at C speed (Python never walks the rows
    one by one); entities not in `out` are passed over."""
    arrays = ", ".join(
        f"json_group_array({schema.q(n)} * 1.0 / {s})" for n, s in zip(names, scales, strict=True)
    )
    grouped = hist.conn.execute(
        f"SELECT k & {_MASK}, json_group_array(k >> {_SHIFT}), {arrays} FROM {table}"
        " WHERE k >= ? AND k < ? GROUP BY 1",
        (since_t << _SHIFT, until_t << _SHIFT),
    )
    for eid, times_json, *values_json in grouped:
        per = out.get(eid)
        if per is None:
            continue
        times = json.loads(times_json)
        for m, vj in zip(metrics, values_json, strict=True):
            got = [
                (float(t), v) for t, v in zip(times, json.loads(vj), strict=True) if v is not None
            ]
            got.sort()  # a group's rows in key order is not promised
            per[m] = got


def _walk_from(hist: History, tier: str, table: str, since_t: int) -> int | None:
    """Where _keyed_sql's walk over a rollup tier's buckets starts: `since_t`, or the
    table's oldest bucket when later (a walk from 292 years ago is millions of buckets);
    None when the table is empty."""
    if tier == "raw":
        return since_t  # the runs are the walk: no bucket is made up
    oldest = table_first_t(hist, table)
    return None if oldest is None else max(since_t, oldest)


def _keyed_sql(tier: str, table: str, names: Sequence[str]) -> str:
    cols = ", ".join(f"s.{schema.q(n)}" for n in names)
    if tier == "raw":
        return (
            f"SELECT r.t, {cols} FROM runs r JOIN {table} s ON s.k = (r.t << {_SHIFT}) | ?3 "
            "WHERE r.t >= ?1 AND r.t < ?2 ORDER BY r.t"
        )
    size = schema.BUCKET_S[tier]
    return (
        f"WITH RECURSIVE b(t) AS (SELECT ?1 / {size} * {size} UNION ALL "
        f"SELECT t + {size} FROM b WHERE t + {size} < ?2) "
        f"SELECT b.t, {cols} FROM b JOIN {table} s ON s.k = (b.t << {_SHIFT}) | ?3 "
        "WHERE b.t >= ?1 ORDER BY b.t"
    )


def pick_tier(hist: History, since_t: int, now_t: int) -> str:
    """The finest tier that holds all that is kept of `since_t`..now: the first whose
    retention reaches back to `since_t`, or else whose oldest row no coarser tier goes
    back further than (a history younger than the raw tier's retention is all in raw:
    its hourly and daily rollups come as the hours and days close)."""
    keep = stored(hist)
    oldest = {tier: first_t(hist, tier) for tier in schema.TIERS}
    for i, tier in enumerate(schema.TIERS):
        if now_t - since_t <= keep.span(tier):
            return tier
        mine = oldest[tier]
        coarser = [(oldest[c], c) for c in schema.TIERS[i + 1 :]]
        if mine is not None and not any(t is not None and t < floor(mine, c) for t, c in coarser):
            return tier
    return "daily"


def status(hist: History) -> dict[str, object]:
    """Facts about the file: size, schema, runs, and each tier's rows and span."""
    conn = hist.conn
    size = file_size(hist.path) + file_size(sidecar(hist.path, "-wal"))
    runs, first, last = conn.execute("SELECT count(*), min(t), max(t) FROM runs").fetchone()
    last_run = conn.execute(
        "SELECT started_at, hosts, collected, exit_code FROM runs ORDER BY t DESC LIMIT 1"
    ).fetchone()
    tiers: dict[str, dict[str, object]] = {}
    for tier in schema.TIERS:
        rows, oldest, newest = 0, None, None
        for scope in hist.columns:
            n, lo, hi = conn.execute(
                f"SELECT count(*), min(k), max(k) FROM {schema.table(tier, scope)}"
            ).fetchone()
            rows += n
            if lo is not None:
                oldest = min(oldest or lo >> _SHIFT, lo >> _SHIFT)
                newest = max(newest or 0, hi >> _SHIFT)
        tiers[tier] = {"rows": rows, "oldest_t": oldest, "newest_t": newest}
    ents = dict(conn.execute("SELECT scope, count(*) FROM entities GROUP BY scope").fetchall())
    return {
        "path": hist.path,
        "bytes": size,
        "schema": conn.execute("PRAGMA user_version").fetchone()[0],
        "created_by": hist.meta("created_by"),
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "runs": runs,
        "first_run_t": first,
        "last_run_t": last,
        "last_run": None
        if last_run is None
        else dict(zip(("started_at", "hosts", "collected", "exit_code"), last_run, strict=True)),
        "entities": ents,
        "tiers": tiers,
        "retention": stored(hist).text(),
    }


def integrity(hist: History) -> str:
    """`PRAGMA quick_check`'s verdict: "ok", or the first problems found."""
    try:
        rows = hist.conn.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return "; ".join(str(r[0]) for r in rows)


def export_rows(
    hist: History, tier: str, since_t: int, until_t: int, scopes: Sequence[str]
) -> Iterator[tuple[object, ...]]:
    """Long rows (t, scope, host, name, uuid, metric, value[, min, max, n]) of every value
    in the range, by scope then time: the history in a form any tool reads."""
    ents = {
        r[0]: Entity(*r)
        for r in hist.conn.execute(f"SELECT {_ENTITY_COLS} FROM entities").fetchall()
    }
    texts = {v: k for k, v in hist.texts.items()}
    for scope in scopes:
        cols = [c for c in hist.columns.get(scope, ()) if tier == "raw" or c.scale != 0]
        names = [n for c in cols for n in schema.metric_columns(tier, c.metric)]
        select = ", ".join(schema.q(n) for n in names)
        width = 1 if tier == "raw" else len(schema.STATS)
        rows = hist.conn.execute(
            f"SELECT k, {select} FROM {schema.table(tier, scope)} WHERE k >= ? AND k < ?"
            " ORDER BY k",
            (since_t << _SHIFT, until_t << _SHIFT),
        )
        for k, *vals in rows:
            e = ents.get(k & _MASK)
            if e is None:
                continue
            for i, c in enumerate(cols):
                cell = vals[i * width : (i + 1) * width]
                if cell[0] is None:
                    continue
                kind, scale = _decoder(hist, c, "avg")
                head = (k >> _SHIFT, scope, e.host, e.name, e.uuid, c.metric)
                if tier == "raw":
                    yield (*head, _decode(cell[0], kind, scale, texts))
                else:
                    lo, avg, hi, n = cell
                    yield (
                        *head,
                        _decode(avg, kind, scale, texts),
                        _decode(lo, kind, scale, texts),
                        _decode(hi, kind, scale, texts),
                        n,
                    )
