"""Output edge (I/O): atomic report files and the run lock for cron.

A report is written to a temporary file in the target's folder and renamed over it, so
a reader (or a run killed half-way) never sees half a report: the previous one stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from fleetmon.errors import LockError, OptionError


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    write_atomic_chunks(path, (text,))


def write_atomic_chunks(path: str | os.PathLike[str], chunks: Iterable[str]) -> None:
    """Write the pieces of a text to `path` through a temporary file (fsync) and a rename."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OptionError(f"cannot write {target}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def default_lock_path(output: str) -> str:
    """The lock beside an output file: `fleet.json` -> `.fleet.json.lock`."""
    p = Path(output)
    return str(p.with_name(f".{p.name}.lock"))


@contextlib.contextmanager
def run_lock(path: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the run; LockError when another run holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OptionError(f"cannot open lock file {path}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    who = f" (pid {holder})" if holder else ""
                    raise LockError(
                        f"another fleetmon run holds the lock {path}{who}; "
                        "not running (use --lock-wait SECONDS to wait)"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
