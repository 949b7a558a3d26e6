"""The history around a run (I/O edge): opened, checked and locked before collecting, the
run recorded after its reports are written.

A history file that cannot be used stops the run before it starts (exit 4, the file left as
it was). A run that cannot be recorded (a full disk, a folder it may not write: a read-only
filesystem) still has its reports written; the failure is then reported and the exit code
is 4.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from operator import attrgetter
from types import TracebackType

from fleetmon.analyse.gap import since_last_run
from fleetmon.cli.common import write_outputs
from fleetmon.cli.exports import export_after
from fleetmon.cli.historyhtml import report_trends
from fleetmon.errors import HistoryError, OutputError, RuleError
from fleetmon.history import (
    History,
    Retention,
    open_history,
    parse_keep,
    record_run,
    resolve,
    retention,
)
from fleetmon.history.forrules import counters_lost, fetch_points, load_counters, load_states
from fleetmon.history.store import check_file, failed
from fleetmon.history.write import run_time
from fleetmon.io.atomic import run_lock
from fleetmon.io.lock import NoRoomForLock
from fleetmon.model import HostReport, Report, RunInfo
from fleetmon.rules import RuleSet
from fleetmon.rules.historical import Past, RuleState, StateKey
from fleetmon.rules.lint import where
from fleetmon.rules.states import before


def lock_path(history: str) -> str:
    """The history's writer lock: `.history.sqlite.lock` beside it, by its real path as
    SQLite's -wal (a symlink's target's folder): every name of one history, one lock."""
    folder, name = os.path.split(os.path.realpath(history))
    return os.path.join(folder, f".{name}.lock")


def unwritable(folder: str) -> str | None:
    """Why nothing can be written in `folder` by this process, or None when it can be."""
    if os.access(folder, os.W_OK):
        return None
    if not os.path.isdir(folder):  # a symlink's target in a folder that is not there
        return "not a folder"
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "on a read-only filesystem" if read_only else "not writable by this user"


class Recorder:
    """The run's history: a context manager that locks and opens it (no-op when off)."""

    def __init__(
        self,
        path: str | None,
        keep: str | None,
        *,
        lock: bool,
        wait_s: float,
        replay: bool = False,
    ):
        """`keep`: a --history-keep spec (checked here, OptionError), read over the file's
        stored spans once it is open: the tiers it does not name keep theirs."""
        self.path = path
        self._keep_spec = keep
        if keep is not None:
            parse_keep(keep)
        #: The retention --history-keep gives, over the file's (None: the file's own).
        self.keep: Retention | None = None
        #: `report DIR`: the run replayed replaces its earlier record (write.record_run).
        self.replay = replay
        self.lock = lock
        self.wait_s = wait_s
        self.hist: History | None = None
        #: Why the history could not be opened when that was no fault of the file (a full
        #: disk): the run goes on, its reports are written, then this is raised.
        self.error: HistoryError | None = None
        self._stack = contextlib.ExitStack()  # what __exit__ undoes
        #: The lock file this run made, removed when the file is refused (another program's
        #: database, a newer fleetmon's history): nothing is left beside what is not ours.
        self._made_lock: str | None = None
        #: The states the rules leave this run, recorded with it.
        self.states: dict[StateKey, RuleState | None] = {}

    def __enter__(self) -> Recorder:
        if self.path is None:
            return self
        # Refused before the lock is taken: a lock beside /dev/null is /dev/.null.lock.
        check_file(self.path)
        with contextlib.ExitStack() as stack:
            folder = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(folder, mode=0o755, exist_ok=True)
            except OSError as exc:
                self.error = HistoryError(
                    f"history {self.path}: cannot create {folder}: {exc.strerror}"
                )
                return self  # as below: the run reports, then says so
            # Where the lock and SQLite's -wal go: beside the file a symlink names.
            real = os.path.dirname(os.path.realpath(self.path))
            why = unwritable(real)
            if why is not None:
                # Neither can be made there (a filesystem remounted read-only after errors):
                # the run reports, then says so, as on a full disk. Was "cannot open lock
                # file" (or "cannot create" its folder), exit 4 before collecting: no
                # report, no export.
                self.error = HistoryError(f"history {self.path}: {real} is {why}")
                return self
            if self.lock:
                lock = lock_path(self.path)
                if not os.path.lexists(lock):  # ours to take away if the file is refused
                    self._made_lock = lock
                    stack.callback(self._unmade)
                try:
                    stack.enter_context(run_lock(lock, self.wait_s))
                except NoRoomForLock as exc:  # a full disk: reported after the reports
                    self.error = HistoryError(f"history {self.path}: {exc} (is the disk full?)")
                    return self
            try:
                self.hist = open_history(self.path, writable=True)
            except HistoryError as exc:
                if exc.refused:
                    raise  # the lock made for it goes (_unmade)
                self._made_lock = None
                self.error = exc
                self._stack = stack.pop_all()
                return self
            self._made_lock = None  # the history is ours: its lock stays, as every run's
            stack.callback(self.hist.close)
            if self._keep_spec is not None:
                try:
                    self.keep = parse_keep(self._keep_spec, retention.stored(self.hist))
                except sqlite3.Error as exc:
                    raise failed(self.path, exc, "cannot read it") from None
            self._stack = stack.pop_all()
        return self

    def _unmade(self) -> None:
        if self._made_lock is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._made_lock)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    @property
    def notes(self) -> tuple[str, ...]:
        """What the reports should say about the history (network filesystem, upgrade)."""
        return tuple(self.hist.notes) if self.hist is not None else ()

    def prepare(
        self, rules: RuleSet | None, hosts: Sequence[HostReport], run: RunInfo
    ) -> tuple[list[HostReport], Past | None, RunInfo]:
        """The hosts with their averages since the last run, what the rules read from the
        history (their series, states and those averages; None: no history), and the run
        with the time of the history's last run before it."""
        if self.hist is None:
            return list(hosts), None, run
        now = run_time(run.started_at)
        calls = rules.history_calls() if rules is not None else []
        notes: tuple[str, ...] = ()
        try:
            last = self.hist.conn.execute(
                "SELECT started_at, t FROM runs WHERE t < ? ORDER BY t DESC LIMIT 1", (int(now),)
            ).fetchone()
            hosts = since_last(hosts, load_counters(self.hist, hosts, now))
            # A replay reads the hourly buckets the run could: those rolled up by then (the
            # one of its own hour holds itself and the runs after it).
            closed = None
            if self.replay:
                closed = last[1] // 3600 * 3600 if last else now
            points = fetch_points(self.hist, {(c.metric, c.window_s, c.hourly) for c in calls},
                                  hosts, now, hourly_until=closed)  # fmt: skip
            states = {k: RuleState(*v) for k, v in load_states(self.hist, hosts).items()}
            if self.replay:
                states = _as_found(states, now, last[1] if last else None, rules)
                notes = _lost_note(counters_lost(self.hist, [h for h in hosts if h.collected], now))
        except sqlite3.Error as exc:
            raise failed(self.hist.path, exc, "cannot read it") from None
        gaps = {
            (scope, h.name, name or h.name): metrics
            for h in hosts
            for (scope, name), metrics in h.since_last.items()
        }
        run = dataclasses.replace(
            run, previous_run_at=str(last[0]) if last else None, notes=(*run.notes, *notes)
        )
        return list(hosts), Past(now, points, states, gaps), run

    def record(self, report: Report) -> None:
        """Record the run and the rules' states (HistoryError when it cannot be)."""
        if self.error is not None:
            raise self.error
        if self.hist is not None:
            fields = _STATE_FIELDS
            states = {k: None if v is None else fields(v) for k, v in self.states.items()}
            record_run(self.hist, report, self.keep, states, replay=self.replay)


#: A RuleState as the tuple save_states writes, its fields in order: what astuple() gives
#: for these plain str and int fields, without its deep copy of each (20 hosts of 200
#: simulated containers leave ~400 states: 2,400 deepcopy calls a run).
_STATE_FIELDS = attrgetter(*(f.name for f in dataclasses.fields(RuleState)))


def _lost_note(hosts: Sequence[str]) -> tuple[str, ...]:
    if not hosts:
        return ()
    names = ", ".join(hosts[:5]) + (", ..." if len(hosts) > 5 else "")
    return (
        f"averages since the last run not recomputed for {len(hosts)} host(s) ({names}): the"
        " history keeps each subject's counters of its last two runs only",
    )


def _as_found(
    states: dict[StateKey, RuleState], now: int, prev_t: int | None, rules: RuleSet | None
) -> dict[StateKey, RuleState]:
    """The rule states as a replayed run (`report DIR`) found them: a state it left is
    taken back one run (each replay counted one more run of `for:`); one a later run left
    is not its past, and is passed over."""
    out: dict[StateKey, RuleState] = {}
    for key, st in states.items():
        if st.last_t < now:
            out[key] = st
        elif st.last_t == now:
            prior = before(rules.get(key[0]) if rules else None, st, prev_t)
            if prior is not None:
                out[key] = prior
    return out


def since_last(
    hosts: Sequence[HostReport],
    previous: dict[str, dict[tuple[str, str], dict[str, int | float | str | None]]],
) -> list[HostReport]:
    """Each host with its averages over the gap since its last recorded run."""
    out = []
    for h in hosts:
        prev = previous.get(h.name)
        if not h.collected or not prev:
            out.append(h)
            continue
        cpus = h.metrics.get("cpu.count")
        cur = {k: json.loads(v) for k, v in h.counters.items()}
        dt, gaps, note = since_last_run(prev, cur, cpus if isinstance(cpus, int) else None)
        notes = (*h.notes, note) if note else h.notes
        out.append(dataclasses.replace(h, since_last=gaps, since_last_s=dt, notes=notes))
    return out


def recorder(
    args: argparse.Namespace, rules: RuleSet | None = None, *, replay: bool = False
) -> Recorder:
    """The Recorder of `run` or (`replay`) `report DIR` from their options (OptionError if
    invalid; RuleError when a rule needs the history and --history is none)."""
    path = resolve(args.history)
    needy = rules.needing_history() if rules is not None and path is None else None
    if needy is not None:  # at the key that needs it: `for: 3 runs`, an expr's deriv()
        key, what = needy.history_key() or ("for", "")
        file, _, line = where(needy, key).rpartition(":")
        raise RuleError(
            f"rule '{needy.name}': {key}: {what} needs the history of earlier runs, and "
            "--history is none",
            file=file,
            line=int(line) if line.isdigit() else None,
        )
    return Recorder(
        path,
        args.history_keep,
        lock=not getattr(args, "no_lock", False),
        wait_s=getattr(args, "lock_wait", 0.0),
        replay=replay,
    )


def finish(
    args: argparse.Namespace, report: Report, rec: Recorder, rules: RuleSet | None = None
) -> None:
    """Write every output, record the run, then send the exports (Pushgateway, InfluxDB,
    Alertmanager): a failure of one does not stop the others, and all are reported (exit 4).
    """
    failure: OutputError | None = None
    if rec.hist is not None and (args.html or args.format == "html"):
        try:
            report = report_trends(rec.hist, report, run_time(report.run.started_at))
        except sqlite3.Error as exc:
            raise failed(rec.hist.path, exc, "cannot read it") from None
    try:
        write_outputs(args, report)
    except OutputError as exc:
        failure = exc
    history: HistoryError | None = None
    try:
        rec.record(report)
    except HistoryError as exc:
        history = exc
    failure = export_after(args, report, rules, failure)
    if history is not None:
        if failure is not None:
            raise OutputError(f"{failure}; {history}") from None
        sys.stderr.write("fleetmon: the reports were written, but not the history:\n")
        raise history
    if failure is not None:
        raise failure
