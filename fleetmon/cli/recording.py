"""The history around a run (I/O edge): opened, checked and locked before collecting, the
run recorded after its reports are written.

A history file that cannot be used stops the run before it starts (exit 4, the file left as
it was). A run that cannot be recorded (a full disk) still has its reports written; the
failure is then reported and the exit code is 4.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from types import TracebackType

from fleetmon.cli.common import write_outputs
from fleetmon.errors import HistoryError, OutputError
from fleetmon.history import History, Retention, open_history, parse_keep, record_run, resolve
from fleetmon.io.atomic import run_lock
from fleetmon.model import Report


def lock_path(history: str) -> str:
    """The history's writer lock: `.history.sqlite.lock` beside it."""
    folder, name = os.path.split(os.path.abspath(history))
    return os.path.join(folder, f".{name}.lock")


class Recorder:
    """The run's history: a context manager that locks and opens it (no-op when off)."""

    def __init__(self, path: str | None, keep: Retention | None, *, lock: bool, wait_s: float):
        self.path = path
        self.keep = keep
        self.lock = lock
        self.wait_s = wait_s
        self.hist: History | None = None
        #: Why the history could not be opened when that was no fault of the file (a full
        #: disk): the run goes on, its reports are written, then this is raised.
        self.error: HistoryError | None = None
        self._stack = contextlib.ExitStack()  # what __exit__ undoes

    def __enter__(self) -> Recorder:
        if self.path is None:
            return self
        with contextlib.ExitStack() as stack:
            folder = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(folder, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise HistoryError(
                    f"history {self.path}: cannot create {folder}: {exc.strerror}"
                ) from None
            if self.lock:
                stack.enter_context(run_lock(lock_path(self.path), self.wait_s))
            try:
                self.hist = open_history(self.path, writable=True)
            except HistoryError as exc:
                if exc.refused:
                    raise
                self.error = exc
                self._stack = stack.pop_all()
                return self
            stack.callback(self.hist.close)
            self._stack = stack.pop_all()
        return self

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

    def record(self, report: Report) -> None:
        """Record the run (HistoryError when it cannot be)."""
        if self.error is not None:
            raise self.error
        if self.hist is not None:
            record_run(self.hist, report, self.keep)


def recorder(args: argparse.Namespace) -> Recorder:
    """The Recorder of `run` or `report DIR` from their options (OptionError if invalid)."""
    keep = parse_keep(args.history_keep) if args.history_keep else None
    return Recorder(
        resolve(args.history),
        keep,
        lock=not getattr(args, "no_lock", False),
        wait_s=getattr(args, "lock_wait", 0.0),
    )


def finish(args: argparse.Namespace, report: Report, rec: Recorder) -> None:
    """Write every output, then record the run: a failure of either does not stop the
    other, and both are reported (exit 4)."""
    failure: OutputError | None = None
    try:
        write_outputs(args, report)
    except OutputError as exc:
        failure = exc
    try:
        rec.record(report)
    except HistoryError as exc:
        if failure is not None:
            raise OutputError(f"{failure}; {exc}") from None
        sys.stderr.write("fleetmon: the reports were written, but not the history:\n")
        raise
    if failure is not None:
        raise failure
