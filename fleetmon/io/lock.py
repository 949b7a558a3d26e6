"""The run lock (I/O): one fleetmon run at a time per output, for cron.

The lock is an flock on a regular file that stays in place (unlinking a lock file lets a
waiting run and a new one both hold "the" lock). The path may sit in a shared folder, so it
is opened without following a symlink and without blocking on a FIFO, and is checked to be
a regular file with a single name before anything is written into it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator

from fleetmon.errors import LockError, OptionError
from fleetmon.io.files import kind


class NoRoomForLock(OptionError):
    """The lock file could not be made for want of room (no inode or block left, a quota):
    a full disk, which the history's lock takes as a run not recorded, not a bad option."""


_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _open_lock(path: str) -> int:
    # Refused before it is opened: opening a device can act on it (a tape rewinds).
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
    try:
        fd = os.open(path, _FLAGS, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink appeared after the lstat
            raise _not_regular(path, stat.S_IFLNK) from None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoRoomForLock(f"cannot create lock file {path}: {exc.strerror}") from None
        raise OptionError(f"cannot open lock file {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = _not_regular(path, st.st_mode)
    elif st.st_nlink > 1:
        # A hard link planted at the lock path would have us truncate the file it names.
        problem = OptionError(
            f"lock file {path} has {st.st_nlink} names (a hard link); not used: "
            "remove it or choose another --lock FILE"
        )
    if problem is not None:
        os.close(fd)
        raise problem
    return fd


def _not_regular(path: str, mode: int) -> OptionError:
    what = "a symlink (not followed)" if stat.S_ISLNK(mode) else f"{kind(mode)}, not a regular file"
    return OptionError(f"lock file {path} is {what}: remove it or choose another --lock FILE")


@contextlib.contextmanager
def run_lock(path: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the run; LockError when another run holds it
    (after waiting up to `wait_s`), OptionError when the path is not a usable lock file."""
    fd = _open_lock(path)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(_held_message(fd, path, wait_s)) from None
                time.sleep(0.1)
        # Our pid for the next run's message, only into a lock file of ours: one another user
        # made, or a file that holds anything but a pid (`--lock inventory.yaml`), is used for
        # the flock alone, never truncated.
        if os.fstat(fd).st_uid == os.geteuid() and _pid_or_empty(fd):
            _write_pid(fd)
        yield
    finally:
        os.close(fd)


def _write_pid(fd: int) -> None:
    """Our pid into the lock file, when it can be written: on a full disk (ENOSPC, EDQUOT)
    the write failed and the run stopped with an internal error before it collected. The
    flock is the lock; the pid only words the next run's message, which goes without it."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)


def _pid_or_empty(fd: int) -> bool:
    """Whether the file holds nothing or a pid only (a lock file's content)."""
    if os.fstat(fd).st_size > 20:
        return False
    text = os.pread(fd, 21, 0).strip()
    return not text or text.isdigit()


def _held_message(fd: int, path: str, wait_s: float) -> str:
    holder = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    who = f" (pid {holder})" if holder.isdecimal() else ""  # digits only reach the terminal
    if wait_s > 0:
        return (
            f"another fleetmon run holds the lock {path}{who}; "
            f"still held after waiting {wait_s:g} s, not running"
        )
    return (
        f"another fleetmon run holds the lock {path}{who}; "
        "not running (use --lock-wait SECONDS to wait)"
    )
