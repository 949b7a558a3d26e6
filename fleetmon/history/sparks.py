"""Series for the HTML report's sparklines (I/O): bucket averages over the last day and
week, from the hourly tier and, for the hour not summarised yet, the raw rows.

The averaging is SQLite's (GROUP BY bucket): a week of 100 hosts x 20 VMs is a few
hundred thousand hourly rows read in C, and only the buckets reach Python.
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
    out: Buckets = {}
    if not names or not ids:
        return out
    wanted = set(ids)
    rolled = max(since_t, min(until_t, _rolled_to(hist)))
    parts = (
        ("hourly", since_t, rolled, [f"avg({schema.q(m + ':avg')})" for m in names]),
        ("raw", rolled, until_t, [f"avg({schema.q(m)})" for m in names]),
    )
    total = hist.conn.execute("SELECT count(*) FROM entities WHERE scope = ?", (scope,))
    keyed = len(ids) * 4 < total.fetchone()[0]
    for tier, lo, hi, cols in parts:
        if hi <= lo:
            continue
        sql = _sql(scope, tier, cols, bucket_s, keyed)
        bounds = (json.dumps(sorted(wanted)), lo, hi) if keyed else (lo << _SHIFT, hi << _SHIFT)
        for eid, start, *vals in hist.conn.execute(sql, bounds):
            if eid not in wanted:
                continue
            per = out.setdefault(eid, {})
            for m, v in zip(names, vals, strict=True):
                if v is not None:
                    # The raw part's bucket may repeat an hourly one: the later value wins.
                    per.setdefault(m, {})[start] = v / have[m].scale
    return out
