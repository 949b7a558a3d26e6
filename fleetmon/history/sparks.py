"""Series for the HTML report's sparklines (I/O): bucket averages over the last day and
week, from the hourly tier and, for the hour not summarised yet, the raw rows.

The averaging is SQLite's (GROUP BY bucket): a week of 100 hosts x 20 VMs is a few
hundred thousand hourly rows read in C, and only the buckets reach Python. A bucket is the
average of its runs' values: each hour's average weighs as many runs as it summarises, and
a bucket the last rolled-up hour cuts in two (the 7 d line's newest 6 h) adds its raw runs'
sums and counts to its hours', as if all were raw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fleetmon.history import schema
from fleetmon.history.store import History

_SHIFT = schema.ENTITY_BITS
_MASK = schema.ENTITY_MASK

#: entity id -> metric -> bucket start -> average
Buckets = dict[int, dict[str, dict[int, float]]]
#: entity id -> metric -> bucket start -> [sum of the values (scaled), how many]
_Sums = dict[int, dict[str, dict[int, list[float]]]]


def _sql(scope: str, tier: str, cols: Sequence[str], bucket_s: int, keyed: bool) -> str:
    """The bucket averages' query: a scan of the range, or (a few of many entities: the
    busiest NIC of each host among its VMs' ports) a lookup of each one's keys."""
    table = schema.table(tier, scope)
    key = f"(k >> {_SHIFT}) / {bucket_s} * {bucket_s}"
    if not keyed:
        return (
            f"SELECT k & {_MASK}, {key}, {', '.join(cols)} FROM {table}"
            " WHERE k >= ? AND k < ? GROUP BY 1, 2"
        )
    # The times that have rows: each hour (hourly tier) or each run (raw tier).
    times = (
        "WITH RECURSIVE h(t) AS (SELECT ?2 / 3600 * 3600 UNION ALL SELECT t + 3600 FROM h"
        " WHERE t + 3600 < ?3)"
        if tier == "hourly"
        else "WITH h(t) AS (SELECT t FROM runs WHERE t >= ?2 AND t < ?3)"
    )
    return (
        f"{times}, e(id) AS (SELECT value FROM json_each(?1))"
        f" SELECT e.id, h.t / {bucket_s} * {bucket_s}, {', '.join(cols)}"
        f" FROM h CROSS JOIN e JOIN {table} ON k = (h.t << {_SHIFT}) | e.id"
        " WHERE h.t >= ?2 GROUP BY 1, 2"
    )


def _rolled_to(hist: History) -> int:
    value = hist.meta("rolled_hourly_to")
    return int(value) if value and value.isdigit() else 0


def bucketed(
    hist: History,
    scope: str,
    ids: Sequence[int],
    metrics: Sequence[str],
    since_t: int,
    until_t: int,
    bucket_s: int,
) -> Buckets:
    """Average of each metric per entity and bucket of `bucket_s` seconds in the range."""
    have = {c.metric: c for c in hist.columns.get(scope, ()) if c.scale}
    names = [m for m in metrics if m in have]
    if not names or not ids:
        return {}
    wanted = set(ids)
    rolled = max(since_t, min(until_t, _rolled_to(hist)))
    parts = (
        ("hourly", since_t, rolled, [_weighed(m) for m in names]),
        ("raw", rolled, until_t, [f"total({schema.q(m)}), count({schema.q(m)})" for m in names]),
    )
    total = hist.conn.execute("SELECT count(*) FROM entities WHERE scope = ?", (scope,))
    keyed = len(ids) * 4 < total.fetchone()[0]
    sums: _Sums = {}
    for tier, lo, hi, cols in parts:
        if hi <= lo:
            continue
        sql = _sql(scope, tier, cols, bucket_s, keyed)
        bounds = (json.dumps(sorted(wanted)), lo, hi) if keyed else (lo << _SHIFT, hi << _SHIFT)
        for eid, start, *vals in hist.conn.execute(sql, bounds):
            if eid in wanted:
                _add(sums.setdefault(eid, {}), names, start, vals)
    return {
        eid: {m: {b: s / n / have[m].scale for b, (s, n) in per[m].items() if n} for m in per}
        for eid, per in sums.items()
    }


def _weighed(metric: str) -> str:
    """An hourly bucket's sum of its runs' values (its average times how many) and count."""
    avg, n = schema.q(metric + ":avg"), schema.q(metric + ":n")
    return f"total(CAST({avg} AS REAL) * {n}), total(CASE WHEN {avg} IS NULL THEN 0 ELSE {n} END)"


def _add(
    per: dict[str, dict[int, list[float]]], names: Sequence[str], start: int, vals: Sequence[float]
) -> None:
    """One tier's sums and counts of a bucket, added to the other tier's for it."""
    for i, m in enumerate(names):
        total, n = vals[2 * i], vals[2 * i + 1]
        if n:
            acc = per.setdefault(m, {}).setdefault(start, [0.0, 0.0])
            acc[0] += total
            acc[1] += n
