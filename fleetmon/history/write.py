"""Recording a run in the history (I/O): one transaction per run, retention included.

Each subject (host, disk, NIC, filesystem, VM, container, guest pair) is an entity with a
stable id: a VM with a UUID (libvirt domain UUID, Xen domain UUID) keeps its id across a
rename or a migration to another host, a container its runtime id across a rename
(subjects.identity); anything else is known by (scope, host, name). A run recorded again (the same
`started_at` and inventory, e.g. `fleetmon report DIR` twice) replaces its earlier record.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from fleetmon.errors import HistoryError
from fleetmon.history import retention, schema
from fleetmon.history.forrules import save_states
from fleetmon.history.store import History, failed, transaction
from fleetmon.history.subjects import identities, rows_of
from fleetmon.model import HostReport, Metrics, MetricValue, Report
from fleetmon.model.utf8 import utf8_safe

_SHIFT = schema.ENTITY_BITS
_INT64 = (1 << 63) - 1


def run_time(started_at: str) -> int:
    """Unix seconds of an ISO 8601 `started_at` ("2026-11-26T03:00:00Z")."""
    try:
        return int(datetime.fromisoformat(started_at).timestamp())
    except ValueError:
        raise HistoryError(f"run start {started_at!r} is not an ISO 8601 time") from None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a run did: its key time, values stored, rows deleted by retention."""

    t: int
    values: int
    rows: int
    replaced: bool
    deleted: dict[str, int]


#: vm.state of a domain with no QEMU or Xen domain behind it (libvirt virDomainState, Xen).
_STOPPED = frozenset({"shutoff", "nostate", "crashed", "dying"})


class _Entities:
    """Entity ids by identity, loaded once per run; new ones inserted as met."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        known = conn.execute("SELECT id, scope, host, name, uuid FROM entities").fetchall()
        self.by_uuid: dict[tuple[str, str], tuple[int, str, str]] = {
            (scope, uuid): (eid, host, name)
            for eid, scope, host, name, uuid in known
            if uuid is not None
        }
        self.by_name: dict[tuple[str, str, str], int] = {
            (scope, host, name): eid for eid, scope, host, name, uuid in known if uuid is None
        }
        self.renamed: list[tuple[str, str, int]] = []
        #: The run's subjects stored from a VM that does not run (entity id -> its values
        #: not null): a running VM of the same UUID later in the run takes their place.
        self.stopped: dict[int, int] = {}

    def id(self, scope: str, host: str, name: str, uuid: str | None, t: int) -> int:
        """The entity id of a subject, created (or given its UUID) when first seen."""
        if uuid:
            found = self.by_uuid.get((scope, uuid))
            if found is not None:
                return found[0]
            eid_or_none = self.by_name.pop((scope, host, name), None)
            if eid_or_none is not None:  # known by name until now: it keeps its history
                self.conn.execute("UPDATE entities SET uuid = ? WHERE id = ?", (uuid, eid_or_none))
                self.by_uuid[scope, uuid] = (eid_or_none, host, name)
                return eid_or_none
        elif (scope, host, name) in self.by_name:
            return self.by_name[scope, host, name]
        cur = self.conn.execute(
            "INSERT INTO entities (scope, host, name, uuid, first_t, last_t) VALUES (?,?,?,?,?,?)",
            (scope, host, name, uuid or None, t, t),
        )
        eid = int(cur.lastrowid or 0)
        if uuid:
            self.by_uuid[scope, uuid] = (eid, host, name)
        else:
            self.by_name[scope, host, name] = eid
        return eid

    def known(self, scope: str, host: str, name: str, uuid: str | None) -> int | None:
        """The id of a subject known by its UUID and still where it was (nothing for id()
        and place() to do: most containers of a run); None for any other."""
        found = self.by_uuid.get((scope, uuid)) if uuid else None
        if found is not None and found[1] == host and found[2] == name:
            return found[0]
        return None

    def place(self, scope: str, host: str, name: str, uuid: str | None) -> None:
        """Record where a subject known by UUID is now (a rename, a migration)."""
        if not uuid:
            return
        eid, old_host, old_name = self.by_uuid[scope, uuid]
        if (old_host, old_name) != (host, name):
            self.renamed.append((host, name, eid))
            self.by_uuid[scope, uuid] = (eid, host, name)

    def flush(self, scopes: Iterable[str], t: int) -> None:
        """Record renames and the last time each entity was seen: those of the run's rows,
        read back from its raw tables (one statement, not one per entity)."""
        self.conn.executemany("UPDATE entities SET host = ?, name = ? WHERE id = ?", self.renamed)
        rows = " UNION ALL ".join(
            f"SELECT k & {schema.ENTITY_MASK} FROM {schema.table('raw', scope)}"
            " WHERE k >= ?2 AND k < ?3"
            for scope in scopes
        )
        self.conn.execute(
            f"UPDATE entities SET last_t = ?1 WHERE last_t < ?1 AND id IN ({rows})",
            (t, t << _SHIFT, (t + 1) << _SHIFT),
        )


class _Texts:
    """State texts (vm.state, a host's status) as small integer ids."""

    def __init__(self, hist: History) -> None:
        self.hist = hist

    def __call__(self, text: str) -> int:
        found = self.hist.texts.get(text)
        if found is None:
            cur = self.hist.conn.execute("INSERT INTO texts (text) VALUES (?)", (text,))
            found = self.hist.texts[text] = int(cur.lastrowid or 0)
        return found


def stored_int(value: MetricValue, scale: int) -> int | None:
    """A metric value as the integer stored for it (None: unknown or not representable)."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and scale == 1:
        return value if -_INT64 <= value <= _INT64 else None
    x = value * scale
    if not math.isfinite(x) or abs(x) > _INT64:
        return None
    return round(x)


class _Encoder:
    """A scope's metrics -> its raw row: the key, a null status (the caller's), then each
    column's value: numbers as they are (SQLite scales and rounds them, see insert_sql),
    states as their text ids."""

    def __init__(self, cols: Sequence[schema.Column], texts: _Texts) -> None:
        self.names = [c.metric for c in cols]
        self.states = [i for i, c in enumerate(cols, start=2) if c.scale == 0]
        self.texts = texts

    def __call__(self, metrics: Metrics, key: int) -> tuple[list[object], int]:
        """The row, and how many of its metric values are not null."""
        # Every column's value at C speed, a metric the row lacks null (an itemgetter
        # with a .get() loop after its KeyError was half the rows of 200 containers).
        out: list[object] = [key, None, *map(metrics.get, self.names)]
        for i in self.states:
            v = out[i]
            out[i] = self.texts(v) if isinstance(v, str) else None
        return out, len(out) - 1 - out.count(None)  # the key is never null, the status is


#: Beyond SQLite's integers (a value no metric has): stored as null, as an unknown.
_CLAMPED = "9223372036854775807, -9223372036854775808"


def insert_sql(scope: str, cols: Sequence[schema.Column]) -> str:
    """The INSERT of one raw row, scaling and rounding each number in SQL (C speed: the
    Python loop it replaces was 60 % of a write): round(value * scale) as an integer; an
    integer of scale 1 as it is; anything else (text, NaN, infinity) null."""
    values = ["?1", "?2"]
    for n, c in enumerate(cols, start=3):
        if c.scale == 0:
            values.append(f"?{n}")
            continue
        scaled = f"CAST(round(?{n} * {c.scale}) AS INTEGER)"
        number = f"nullif(nullif({scaled}, {_CLAMPED.split(', ')[0]}), {_CLAMPED.split(', ')[1]})"
        # One typeof() a value (not two): 4,000 container values a host.
        whole = f"?{n}" if c.scale == 1 else number
        values.append(
            f"CASE typeof(?{n}) WHEN 'integer' THEN {whole} WHEN 'real' THEN {number} END"
        )
    names = ", ".join(["k", "status", *(schema.q(c.metric) for c in cols)])
    return f"INSERT INTO {schema.table('raw', scope)} ({names}) VALUES ({', '.join(values)})"


def _pick_run_time(conn: sqlite3.Connection, report: Report, replay: bool) -> tuple[int, bool]:
    """The run's key time, and whether an earlier record of the same run is replaced: only
    a replay's (`report DIR`) of a run recorded before, by its start and inventory. Two runs
    of one inventory may start in the same second (cron, a lock waited for): each is kept."""
    t = run_time(report.run.started_at)
    while True:
        row = conn.execute("SELECT started_at, inventory FROM runs WHERE t = ?", (t,)).fetchone()
        if row is None:
            return t, False
        if replay and tuple(row) == (report.run.started_at, report.run.inventory):
            return t, True
        t += 1  # another run started in the same second: the next free one


def _insert_rows(hist: History, report: Report, t: int) -> tuple[int, int, list[int]]:
    texts = _Texts(hist)
    ents = _Entities(hist.conn)
    values = rows = 0
    seen: list[int] = []
    counters: list[tuple[int, int, str]] = []
    for scope, cols in hist.columns.items():
        encode = _Encoder(cols, texts)
        batch: dict[int, list[object]] = {}
        for host in report.hosts:
            if scope != "host" and not host.collected:
                continue
            values += _add_host(scope, host, t, ents, encode, batch, counters)
        hist.conn.executemany(insert_sql(scope, cols), batch.values())
        rows += len(batch)
        seen += batch
    ents.flush(hist.columns, t)
    if counters:
        hist.conn.executemany(_COUNTERS_SQL, counters)
    return values, rows, seen


def _subjects(scope: str, host: HostReport) -> Iterable[tuple[str, Metrics, str | None]]:
    """A host's subjects of one scope: each one's name, metrics and identity."""
    if scope == "host":
        return [(host.name, host.metrics, None)]
    found = rows_of(host, scope)
    names, metrics = [r.name for r in found], [r.metrics for r in found]
    return zip(names, metrics, identities(scope, found), strict=True)


def _add_host(
    scope: str,
    host: HostReport,
    t: int,
    ents: _Entities,
    encode: _Encoder,
    batch: dict[int, list[object]],
    counters: list[tuple[int, int, str]],
) -> int:
    """A host's subjects of one scope into `batch` (entity id -> raw row) and their
    counters into `counters`; how many values that is, not null."""
    values = 0
    host_name = utf8_safe(host.name)  # SQLite text is UTF-8 (model.utf8)
    for name, metrics, uuid in _subjects(scope, host):
        safe = name if name.isascii() else utf8_safe(name)
        stopped = metrics.get("vm.state") in _STOPPED
        eid = ents.known(scope, host_name, safe, uuid)
        # A VM listed by two hosts: mid-migration, the first one counts; after one without
        # --undefinesource, the one running, not the source's shut-off definition.
        if eid is None:
            eid = ents.id(scope, host_name, safe, uuid, t)
            if eid in batch and (stopped or eid not in ents.stopped):
                continue
            ents.place(scope, host_name, safe, uuid)
        elif eid in batch and (stopped or eid not in ents.stopped):
            continue
        values -= ents.stopped.pop(eid, 0)
        row, n = encode(metrics, (t << _SHIFT) | eid)
        values += n
        if stopped:
            ents.stopped[eid] = n
        if scope == "host":  # its text id made after its states', as it always was
            row[1] = encode.texts(host.status.value)
        batch[eid] = row
        cnt = host.counters.get((scope, "" if scope == "host" else name))
        if cnt:
            counters.append((eid, t, cnt))
    return values


#: The latest counters of each subject and those of its run before (SQLite evaluates every
#: SET from the row as it was): a newer run moves the latest to the previous; a run recorded
#: late leaves the latest alone, and is the previous if newer than it; a run recorded again
#: (a replay) rewrites its own.
_COUNTERS_SQL = """
INSERT INTO last_counters (entity, t, counters) VALUES (?1, ?2, ?3) ON CONFLICT (entity) DO UPDATE
SET prev_t = CASE WHEN ?2 > t THEN t WHEN ?2 < t AND ?2 >= coalesce(prev_t, ?2) THEN ?2
                  ELSE prev_t END,
    prev_counters = CASE WHEN ?2 > t THEN counters
                         WHEN ?2 < t AND ?2 >= coalesce(prev_t, ?2) THEN ?3
                         ELSE prev_counters END,
    t = max(t, ?2),
    counters = CASE WHEN ?2 >= t THEN ?3 ELSE counters END
"""


def _check_time(hist: History, report: Report, keep: retention.Retention, now: int) -> None:
    """HistoryError when the run may not be recorded: too far ahead of this machine's clock,
    or older than a tier it is summarised from keeps (under the write lock)."""
    t = run_time(report.run.started_at)
    why = retention.refusal(t, now) or retention.too_late(hist, keep, t, now)
    if why is not None:
        raise HistoryError(
            f"history {hist.path}: the run of {report.run.started_at} was not recorded: {why}"
        )


def record_run(
    hist: History,
    report: Report,
    keep: retention.Retention | None = None,
    states: Mapping[tuple[str, str, str, str], tuple[str, str, int, int, int] | None] | None = None,
    *,
    replay: bool = False,
    now: int | None = None,
) -> Recorded:
    """Write one run, the rules' states and apply the retention, in one transaction. A
    `replay` (`report DIR`) replaces the record of the run it replays, if any. `now`: this
    machine's clock (None: read here); a run too far ahead of it is not recorded
    (HistoryError, the file as it was)."""
    if not hist.writable:
        raise HistoryError(f"history {hist.path}: opened read-only")
    conn = hist.conn
    now = int(time.time()) if now is None else now
    try:
        with transaction(conn):
            # Read again under the write lock: a writer that ignored the run lock
            # (--no-lock) may have added texts since the file was opened.
            hist.texts = dict(conn.execute("SELECT text, id FROM texts").fetchall())
            if keep is not None:
                retention.save(hist, keep)
            rules = keep or retention.stored(hist)
            _check_time(hist, report, rules, now)
            t, replaced = _pick_run_time(conn, report, replay)
            if replaced:
                for scope in hist.columns:
                    conn.execute(
                        f"DELETE FROM {schema.table('raw', scope)} WHERE k >= ? AND k < ?",
                        (t << _SHIFT, (t + 1) << _SHIFT),
                    )
            run = report.run
            conn.execute(
                "INSERT OR REPLACE INTO runs (t, started_at, inventory, fleetmon_version,"
                " interval_s, hosts, collected, exit_code) VALUES (?,?,?,?,?,?,?,?)",
                (
                    t,
                    run.started_at,
                    run.inventory,
                    run.fleetmon_version,
                    run.interval_s,
                    len(report.hosts),
                    sum(h.collected for h in report.hosts),
                    report.exit_code,
                ),
            )
            values, rows, _ = _insert_rows(hist, report, t)
            # A replay of an older run leaves the states the later runs wrote as they are.
            later = replay and conn.execute("SELECT 1 FROM runs WHERE t > ?", (t,)).fetchone()
            if states is not None and not later:
                save_states(conn, states, t - rules.raw_s)
            deleted = retention.apply(hist, rules, now=now, recorded_t=t)
    except sqlite3.Error as exc:
        hist.texts = {}  # ids made in the rolled-back transaction are gone
        with contextlib.suppress(sqlite3.Error):
            hist.texts = dict(conn.execute("SELECT text, id FROM texts").fetchall())
        raise failed(hist.path, exc, "this run was not recorded") from None
    return Recorded(t, values, rows, replaced, deleted)
