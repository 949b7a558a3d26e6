"""Opening the history file (I/O): checks, pragmas, migrations, the catalogue's columns.

A file that is not a fleetmon history, was written by a newer fleetmon or is corrupt is a
HistoryError (exit 4) and is never written to. Writers use WAL with synchronous=NORMAL: a
crash loses at most the run being written, and readers never block the writer. On a
network filesystem the rollback journal is used instead (WAL needs shared memory), and the
run's notes say so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleetmon import __version__
from fleetmon.errors import HistoryError
from fleetmon.history import schema
from fleetmon.history.paths import filesystem_of, is_network_fs
from fleetmon.history.schema import Column
from fleetmon.model.catalog import MetricDef

_HEADER = b"SQLite format 3\x00"
#: How long a statement waits for a lock another process holds (a reader on a rollback
#: journal, or a writer that ignored the run lock) before failing.
BUSY_TIMEOUT_MS = 10_000


@dataclass(slots=True)
class History:
    """An open history file: its connection and the columns the file has."""

    path: str
    conn: sqlite3.Connection
    writable: bool
    columns: dict[str, list[Column]] = field(default_factory=dict)
    #: What the reports should say about the file (a network filesystem, a migration).
    notes: list[str] = field(default_factory=list)
    texts: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        """Close the connection (a WAL checkpoint happens when the last one closes)."""
        self.conn.close()

    def meta(self, key: str) -> str | None:
        """A value of the `meta` table."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])


def _refuse(path: str, why: str) -> HistoryError:
    return HistoryError(
        f"history {path}: {why}; the file was not touched (--history PATH|none)", refused=True
    )


def check_file(path: str) -> bool:
    """True when `path` holds data to check, False when there is nothing (or an empty file);
    a refused HistoryError when it is not a history (a device, a folder, another file), or
    is `-`: a history is no stream, and SQLite made `-`, `--wal` and `--shm` in the
    current folder (names that read as options to the shell tools that meet them)."""
    if path == "-":
        raise HistoryError(
            "history -: a history is a file, not standard input or output; nothing was "
            "written (--history PATH|none; ./- for a file named -)",
            refused=True,
        )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _refuse(path, f"cannot read it: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "not a regular file")
    if st.st_size == 0:
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_HEADER))
    except OSError as exc:
        raise _refuse(path, f"cannot read it: {exc.strerror}") from None
    if head != _HEADER:
        raise _refuse(path, "not a SQLite database, so not a fleetmon history")
    return True


def _connect(path: str, writable: bool, immutable: bool = False) -> sqlite3.Connection:
    uri = f"file:{_uri_path(path)}?mode={'rwc' if writable else 'ro'}"
    uri += "&immutable=1" if immutable else ""
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _uri_path(path: str) -> str:
    # https://sqlite.org/uri.html: '?' and '#' end the path and '%' escapes.
    absolute = os.path.abspath(path)
    return absolute.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def open_history(path: str, *, writable: bool) -> History:
    """Open (a writer: create when missing) and check the history at `path`."""
    exists = check_file(path)
    if not exists and not writable:
        # An empty file (`touch`ed, or a run killed before its first write) is not missing.
        what = "an empty file, no history yet" if os.path.exists(path) else "no such file"
        raise HistoryError(f"history {path}: {what} (fleetmon run writes it; see --history)")
    if not exists:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"history {path}: cannot create {folder}: {exc.strerror}") from None
    try:
        return _open(path, writable, immutable=False)
    except sqlite3.OperationalError as exc:
        hint = None if writable else _read_only_hint(path, exc)
        if hint is None:
            raise _open_failed(path, exc) from None
        # A reader where it may not write (a read-only filesystem; root's history read by
        # another user) or has no room to (a full disk: `history status` failed when the
        # operator looked why runs were not recorded): WAL's shared-memory file cannot be
        # made there. With no writer's -wal beside it, the file is all there is: read as
        # immutable.
        if file_size(sidecar(path, "-wal")):
            raise HistoryError(
                f"history {path}: cannot open it: {hint[0]} and a writer's -wal file is "
                f"beside it ({hint[1]})"
            ) from None
    except sqlite3.Error as exc:
        raise _open_failed(path, exc) from None
    try:
        return _open(path, writable, immutable=True)
    except sqlite3.Error as exc:
        raise _open_failed(path, exc) from None


def _open(path: str, writable: bool, immutable: bool) -> History:
    conn = _connect(path, writable, immutable)
    hist = History(path, conn, writable)
    try:
        _prepare(hist)
    except BaseException:
        conn.close()
        raise
    return hist


def _open_failed(path: str, exc: sqlite3.Error) -> HistoryError:
    if "unable to open" in str(exc):
        return HistoryError(f"history {path}: cannot open it: {exc}")
    return failed(path, exc, "cannot open it")


def _read_only_hint(path: str, exc: sqlite3.Error) -> tuple[str, str] | None:
    """Why a reader may read `path` as immutable (WAL's -shm cannot be made beside it), and
    what to do when a -wal is there too; None when that is not why it failed."""
    if _unwritable_place(path):
        return "its folder is not writable here", "read it as its owner, or once no run writes it"
    if "full" in str(exc) or ("disk I/O" in str(exc) and _no_room(path)):
        return "no room beside it for its -shm file", "is the disk full?"
    return None


def _no_room(path: str) -> bool:
    """True when the folder of `path` has less room than WAL's -shm takes (32 KiB): SQLite
    says "disk I/O error" when it cannot size that file, as for a failing disk."""
    try:
        return shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < 32 * 1024
    except OSError:
        return False


def _unwritable_place(path: str) -> bool:
    """True when this process may not make files beside `path` (WAL's -shm)."""
    folder = os.path.dirname(os.path.abspath(path))
    return not os.access(folder, os.W_OK) or not os.access(path, os.W_OK)


def sidecar(path: str, suffix: str) -> str:
    """Where SQLite keeps the history's `-wal` or `-shm`: beside the file a symlink names,
    not beside the symlink."""
    return os.path.realpath(path) + suffix


def file_size(path: str) -> int:
    """A file's size in bytes, 0 when it is not there (a history's -wal between runs)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def failed(path: str, exc: sqlite3.Error, doing: str) -> HistoryError:
    """A HistoryError in words for an sqlite3 error while `doing` something with the file."""
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return _refuse(path, f"corrupt ({text}): move it away and fleetmon starts a new one")
    if "full" in text or "disk I/O" in text or "too large" in text:
        return HistoryError(f"history {path}: {doing}: {text} (is the disk full?)")
    return HistoryError(f"history {path}: {doing}: {text}")


def _prepare(hist: History) -> None:
    conn = hist.conn
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != schema.APPLICATION_ID and (app_id != 0 or objects or version):
        raise _refuse(hist.path, "a SQLite database of another program, not a fleetmon history")
    if version > schema.SCHEMA_VERSION:
        raise _refuse(
            hist.path,
            f"written by a newer fleetmon (schema {version}; this fleetmon {__version__} "
            f"knows up to {schema.SCHEMA_VERSION})",
        )
    if hist.writable:
        _set_journal(hist)
        conn.execute("PRAGMA synchronous = NORMAL")
        if version < schema.SCHEMA_VERSION:
            _migrate(hist, version)
        _sync_catalogue(hist)
    elif version == 0:
        raise HistoryError(f"history {hist.path}: empty (no run recorded yet)")
    elif version < schema.SCHEMA_VERSION:
        raise HistoryError(
            f"history {hist.path}: schema {version} predates this fleetmon "
            f"({schema.SCHEMA_VERSION}): the next `fleetmon run` upgrades it"
        )
    hist.columns = _columns(conn)
    hist.texts = dict(conn.execute("SELECT text, id FROM texts").fetchall())


def _set_journal(hist: History) -> None:
    fstype = filesystem_of(hist.path)
    if is_network_fs(fstype):
        _journal_mode(hist.conn, "DELETE")
        hist.notes.append(
            f"history {hist.path} is on {fstype}: rollback journal instead of WAL (WAL does "
            "not work over a network filesystem), so readers may briefly block the writer"
        )
    else:
        mode = _journal_mode(hist.conn, "WAL")
        if str(mode).lower() != "wal":  # pragma: no cover - WAL refused (e.g. no mmap)
            hist.notes.append(f"history {hist.path}: WAL refused, journal mode {mode}")


def _journal_mode(conn: sqlite3.Connection, mode: str) -> str:
    """Set the journal mode: retried while another connection holds the file, as SQLite
    does not wait (busy_timeout) for this one; two writers opening a new file at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (the file stays as it was)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    for stmt in schema.BASE_TABLES.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("created_at", now), ("created_by", f"fleetmon {__version__}")],
    )
    for scope, metrics in schema.stored_scopes():
        for stmt in schema.create_scope(scope, metrics):
            conn.execute(stmt)
        _register(conn, scope, metrics, now)


def _register(
    conn: sqlite3.Connection, scope: str, metrics: tuple[MetricDef, ...], now: str
) -> None:
    conn.executemany(
        "INSERT INTO columns (scope, metric, unit, scale, added_at) VALUES (?, ?, ?, ?, ?)",
        [(scope, m.name, m.unit, schema.scale_of(m), now) for m in metrics],
    )


def _rule_states(conn: sqlite3.Connection) -> None:
    conn.execute(schema.STATES_TABLE)


def _last_counters(conn: sqlite3.Connection) -> None:
    conn.execute(schema.COUNTERS_TABLE)


def _prev_counters(conn: sqlite3.Connection) -> None:
    for stmt in schema.PREV_COUNTERS:
        conn.execute(stmt)


def _row_scopes_4(conn: sqlite3.Connection) -> None:
    """The ctr and guest tables, in a file made before them (a new file has them from
    _create)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for scope, metrics in schema.SCOPES_4:
        made = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (schema.table("raw", scope),),
        ).fetchone()
        if made is None:
            for stmt in schema.create_scope(scope, metrics):
                conn.execute(stmt)
            _register(conn, scope, metrics, now)


#: schema version -> the step that brings a file from the version before to it.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create,
    2: _rule_states,
    3: _last_counters,
    4: _row_scopes_4,
    5: _prev_counters,
}


def _migrate(hist: History, version: int) -> None:
    with transaction(hist.conn):
        # Read again under the write lock: another writer (--no-lock, or two runs on a new
        # file) may have made or upgraded the schema since `version` was read.
        version = hist.conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= schema.SCHEMA_VERSION:
            return
        for target in range(version + 1, schema.SCHEMA_VERSION + 1):
            MIGRATIONS[target](hist.conn)
        hist.conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")
    if version:
        hist.notes.append(
            f"history {hist.path} upgraded from schema {version} to {schema.SCHEMA_VERSION}"
        )


def _sync_catalogue(hist: History) -> None:
    """Add the columns of catalogue metrics the file does not have yet (one transaction)."""
    if not _missing(hist.conn):
        return
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with transaction(hist.conn):
        missing = _missing(hist.conn)  # again under the write lock: another writer's added
        for scope, m in missing:
            for stmt in schema.add_metric(scope, m):
                hist.conn.execute(stmt)
            _register(hist.conn, scope, (m,), now)
    if not missing:
        return
    hist.notes.append(
        f"history {hist.path}: {len(missing)} new metric(s) added: "
        + ", ".join(m.name for _, m in missing)
    )


def _missing(conn: sqlite3.Connection) -> list[tuple[str, MetricDef]]:
    have = {(c.scope, c.metric) for cols in _columns(conn).values() for c in cols}
    return [(s, m) for s, ms in schema.stored_scopes() for m in ms if (s, m.name) not in have]


def _columns(conn: sqlite3.Connection) -> dict[str, list[Column]]:
    out: dict[str, list[Column]] = {}
    rows = conn.execute("SELECT scope, metric, unit, scale FROM columns ORDER BY rowid")
    for scope, metric, unit, scale in rows:
        out.setdefault(scope, []).append(Column(scope, metric, unit, scale))
    return out
