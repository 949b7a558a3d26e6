"""What the rules read from the history (I/O): the points of the metrics their history
functions name, and each rule's pending and firing subjects.

Fetched before the rules run, for the subjects of this run only, so the rules stay pure;
the states the rules leave are written with the run (write.record_run).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from fleetmon.history import query, retention
from fleetmon.history.store import History
from fleetmon.history.subjects import identity, rows_of
from fleetmon.model import HostReport, catalog
from fleetmon.model.utf8 import utf8_safe

#: (scope, host, subject) -> (metric, tier) -> [(t, value)], oldest first.
Points = dict[tuple[str, str, str], dict[tuple[str, str], list[tuple[float, float]]]]
#: (rule, scope, host, subject) -> (state, severity, since_t, runs, last_t)
States = dict[tuple[str, str, str, str], tuple[str, str, int, int, int]]


def subjects_of(
    hist: History, hosts: Sequence[HostReport], scope: str
) -> dict[int, tuple[str, str, str]]:
    """Entity id -> (scope, host, subject) of this run's subjects of one scope, found by the
    identity write.py stores them under (subjects.identity: a VM by its UUID, a container by
    its runtime id, whatever host and name they have this run; others by host and name)."""
    by_name: dict[tuple[str, str], int] = {}
    by_uuid: dict[str, int] = {}
    rows = hist.conn.execute("SELECT id, host, name, uuid FROM entities WHERE scope = ?", (scope,))
    for eid, host, name, uuid in rows:
        if uuid:
            by_uuid[uuid] = eid
        else:
            by_name[host, name] = eid
    out: dict[int, tuple[str, str, str]] = {}
    for h in hosts:
        host = utf8_safe(h.name)  # as write.py stored it
        if scope == "host":
            found = by_name.get((host, host))
            if found is not None:
                out[found] = (scope, h.name, h.name)
            continue
        for r in rows_of(h, scope):
            uuid = identity(scope, r)
            eid = by_uuid.get(uuid) if uuid else by_name.get((host, utf8_safe(r.name)))
            if eid is not None and eid not in out:
                out[eid] = (scope, h.name, r.name)
    return out


def fetch_points(
    hist: History,
    needs: Iterable[tuple[str, int, bool]],
    hosts: Sequence[HostReport],
    now_t: int,
    *,
    hourly_until: int | None = None,
) -> Points:
    """The points of each (metric, window_s, hourly) need, for this run's subjects, before
    `now_t`.

    A window within the raw retention reads one point per run; a longer one, or `hourly`,
    the hourly averages: of the hours before `hourly_until` when given (a replay: those
    summarised when its run was made).
    """
    raw_span = retention.stored(hist).raw_s
    wanted: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for metric, window_s, hourly in needs:
        scope = catalog.scope_of(metric)
        if scope is None or scope == "fleet" or window_s <= 0:
            continue
        tier = "hourly" if hourly or window_s > raw_span else "raw"
        span, metrics = wanted.get((scope, tier), (0, set()))
        wanted[scope, tier] = (max(span, window_s), metrics | {metric})
    out: Points = {}
    for (scope, tier), (span, metrics) in wanted.items():
        have = {c.metric for c in hist.columns.get(scope, ())}
        names = sorted(m for m in metrics if m in have)
        subjects = subjects_of(hist, hosts, scope)
        if not names or not subjects:
            continue
        until = now_t if tier == "raw" or hourly_until is None else min(now_t, hourly_until)
        found = query.numeric_points(hist, tier, scope, list(subjects), names, now_t - span, until)
        for eid, per in found.items():
            series = out.setdefault(subjects[eid], {})
            for metric, points in per.items():
                series[metric, tier] = points
    return out


def load_counters(
    hist: History, hosts: Sequence[HostReport], before_t: int
) -> dict[str, dict[tuple[str, str], dict[str, int | float | str | None]]]:
    """host -> (scope, name) -> the counters its subjects' latest run before `before_t`
    kept (the host's under ("host", "")): the latest, or for a replay of that run (`report
    DIR`, whose own are the latest) the ones before; none when both are not before it."""
    ids: dict[int, tuple[str, str, str]] = {}
    for scope in ("host", "disk", "nic", "vm", "ctr"):
        ids.update(subjects_of(hist, hosts, scope))
    out: dict[str, dict[tuple[str, str], dict[str, int | float | str | None]]] = {}
    if not ids:
        return out
    rows = hist.conn.execute(
        "SELECT entity, t, counters, prev_t, prev_counters FROM last_counters"
        " WHERE t < ?1 OR prev_t < ?1",
        (before_t,),
    )
    for eid, last_t, last, prev_t, prev in rows:
        found = ids.get(eid)
        if found is None:
            continue
        run_t, text = (last_t, last) if last_t < before_t else (prev_t, prev)
        scope, host, name = found
        key = (scope, "" if scope == "host" else name)
        try:
            counters = json.loads(text)
        except ValueError:
            continue
        counters["_t"] = run_t  # which run they are from
        out.setdefault(host, {})[key] = counters
    return out


def counters_lost(hist: History, hosts: Sequence[HostReport], before_t: int) -> list[str]:
    """The hosts whose counters of their run before `before_t` the history no longer has
    (it keeps two runs' per subject: a replay of an older run, or of one recorded before
    schema 5), though it saw them before: their averages since that run are not known."""
    ids = subjects_of(hist, hosts, "host")
    if not ids:
        return []
    rows = hist.conn.execute(
        "SELECT c.entity FROM last_counters c JOIN entities e ON e.id = c.entity"
        " WHERE e.scope = 'host' AND e.first_t < ?1 AND c.t >= ?1"
        " AND (c.prev_t IS NULL OR c.prev_t >= ?1)",
        (before_t,),
    )
    return sorted(ids[eid][1] for (eid,) in rows if eid in ids)


def load_states(hist: History, hosts: Sequence[HostReport] = ()) -> States:
    """Every rule's pending and firing subjects, as the last runs left them (under the
    names `hosts` and their rows have, where the history keeps one escaped: model.utf8)."""
    try:
        rows = hist.conn.execute(
            "SELECT rule, scope, host, subject, state, severity, since_t, runs, last_t"
            " FROM rule_states"
        ).fetchall()
    except sqlite3.OperationalError:  # a reader of a file not yet upgraded
        return {}
    back = {}
    for h in hosts:
        for name in (h.name, *(r.name for rows in h.rows.values() for r in rows)):
            if not name.isascii() and (safe := utf8_safe(name)) != name:
                back[safe] = name
    return {
        (r[0], r[1], back.get(r[2], r[2]), back.get(r[3], r[3])): (r[4], r[5], r[6], r[7], r[8])
        for r in rows
    }


def save_states(
    conn: sqlite3.Connection,
    states: Mapping[tuple[str, str, str, str], tuple[str, str, int, int, int] | None],
    stale_before: int,
) -> None:
    """Write the states the rules left (None: back to OK), drop those not seen for long."""
    keys = {k: (k[0], k[1], utf8_safe(k[2]), utf8_safe(k[3])) for k in states}
    gone = [keys[k] for k, v in states.items() if v is None]
    kept = [(*keys[k], *v) for k, v in states.items() if v is not None]
    conn.executemany(
        "DELETE FROM rule_states WHERE rule = ? AND scope = ? AND host = ? AND subject = ?", gone
    )
    conn.executemany("INSERT OR REPLACE INTO rule_states VALUES (?,?,?,?,?,?,?,?,?)", kept)
    conn.execute("DELETE FROM rule_states WHERE last_t < ?", (stale_before,))
