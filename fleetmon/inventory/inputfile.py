"""Inventory stage, input edge (I/O): read a file the user names (an inventory or vars file,
a `--limit @file`, a rule file: the rules stage reads through this too).

A regular file is read, symlinks followed; and where the caller allows it (a file named on
the command line: `-i <(command)`, `-r <(...)`, as Ansible reads them) a pipe: opened
O_NONBLOCK, so that a FIFO nobody writes to reads as empty (then refused as such) rather
than blocking the open forever, then read to its end as `cat` would. A device such as
/dev/zero never ends (MemoryError), a socket is not a file: anything else is refused before
it is opened, and again on the descriptor. A file past the caller's size limit is refused
unread (a pipe: once it has given that much).
"""

from __future__ import annotations

import errno
import os
import stat

from fleetmon.errors import InputError

#: An inventory or vars file is read whole, and so is a script's output: 100,000 hosts
#: (ranges.MAX_HOSTS) of 2.5 KB each.
MAX_INVENTORY_BYTES = 256 << 20
_BASE = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_input(
    path: str, what: str, max_bytes: int, error: type[InputError], *, pipes: bool = False
) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), or with `pipes` of the
    pipe (a file the user names on the command line: `-i <(command)`), `what` naming it in
    messages ("a rule file"). `error` when it is neither or is over `max_bytes`;
    OSError when it cannot be opened or read (IsADirectoryError for a folder, as open())."""
    _check(path, os.stat(path), what, max_bytes, error, pipes)
    with os.fdopen(os.open(path, _BASE), "rb") as fh:
        _check(path, os.fstat(fh.fileno()), what, max_bytes, error, pipes)
        os.set_blocking(fh.fileno(), True)  # a pipe's writer is read to its end
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise _too_big(path, what, len(data), max_bytes, error)
    return data


def _check(
    path: str, st: os.stat_result, what: str, max_bytes: int, error: type[InputError], pipes: bool
) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(st.st_mode) and not (pipes and stat.S_ISFIFO(st.st_mode)):
        kind = next((words for test, words in _KINDS if test(st.st_mode)), "not a file")
        raise error(f"{what} must be a regular file, not {kind}", file=path)
    if st.st_size > max_bytes:
        raise _too_big(path, what, st.st_size, max_bytes, error)


def _too_big(
    path: str, what: str, size: int, max_bytes: int, error: type[InputError]
) -> InputError:
    limit = f"{max_bytes >> 20} MiB" if max_bytes >= 1 << 20 else f"{max_bytes:,} bytes"
    return error(f"{what} may be {limit} at most; this one is {size:,} bytes", file=path)
