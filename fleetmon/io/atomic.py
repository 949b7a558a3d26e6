"""Output edge (I/O): each report written where the user pointed, without damaging it.

- `-`, /dev/stdout, /dev/stderr, /dev/fd/N: written to that descriptor.
- a character device (/dev/null) or a FIFO: opened and written directly; never renamed
  over, no temporary file and no lock beside it.
- a regular file, or a name not there yet: a temporary file in its folder (O_EXCL|O_NOFOLLOW),
  fsynced and renamed over it, so a reader never sees half a report and a failed write
  leaves the previous one. A replaced file keeps its mode (and, under root, its owner); a
  new one gets 0666 less the umask.
- a symlink is followed to what it names: a regular file there is replaced in its own folder
  and the link stays a link. A link in a sticky world-writable folder (/tmp) that belongs to
  another user is refused, as the kernel's fs.protected_symlinks would refuse it.
- a block device, a folder or a socket: refused.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fleetmon.errors import OutputError
from fleetmon.io.files import hidden_name, kind, replace_in, untrusted_in_sticky
from fleetmon.io.lock import run_lock

__all__ = [
    "Target",
    "check_output",
    "default_lock_path",
    "hold_std_fds",
    "resolve_output",
    "run_lock",
    "write_output",
    "write_text",
]

_STD = {"/dev/stdout": 1, "/dev/stderr": 2}
#: /dev/fd/N, /proc/self/fd/N and /proc/<our pid>/fd/N name a descriptor of ours (bash
#: treats them so in redirections): reopening one would truncate or move a shell's file.
_FD_PATH = re.compile(r"/(?:dev/fd|proc/self/fd|proc/(\d+)/fd)/(\d+)")
#: Linux's MAXSYMLINKS.
_MAX_LINKS = 40


@dataclass(frozen=True, slots=True)
class Target:
    """Where an output goes: `stream` (descriptor `fd`), `device` (a character device or
    FIFO at `path`, written directly) or `file` (a regular file at `path`, replaced)."""

    kind: str
    path: str
    fd: int = -1


def _fd_of(path: str) -> int | None:
    if path in _STD:
        return _STD[path]
    m = _FD_PATH.fullmatch(path)
    if m and (m.group(1) is None or int(m.group(1)) == os.getpid()):
        return int(m.group(2))
    return None


#: The standard descriptors fleetmon was started without (`>&-`): see hold_std_fds.
_closed_at_start: set[int] = set()


def hold_std_fds() -> None:
    """Put /dev/null in place of whichever of descriptors 0, 1 and 2 the process started
    without (`fleetmon run inv >&-`), as OpenSSH does: else the first file opened takes the
    number (a history, a report's temporary file) and a write meant for standard output or
    a local probe's error output lands in it. Standard output asked for a report is then
    refused (resolve_output) and any other write to it fails as OutputError (exit 4, as
    coreutils' "write error: Bad file descriptor"); warnings on a closed standard error are
    lost, as they were."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            got = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
            if got != fd:  # pragma: no cover - the lower ones are all open by now
                os.close(got)
                continue
            _closed_at_start.add(fd)
            if fd == 1:
                sys.stdout = _ClosedStdout()
                continue
            stream = open(fd, "r" if fd == 0 else "w", closefd=False, encoding="utf-8")  # noqa: SIM115
            if fd == 0:
                sys.stdin = stream
            else:
                sys.stderr = stream


class _ClosedStdout(io.TextIOBase):
    """sys.stdout when fleetmon started without one: writing to it is an OutputError."""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1  # /dev/null, holding the number

    def write(self, text: str) -> int:
        raise OutputError("cannot write standard output: it was closed when fleetmon started")


def _stream(path: str, fd: int) -> Target:
    """The descriptor an output names, refused when it is not open (or was closed when
    fleetmon started, /dev/null holding its place)."""
    if fd in _closed_at_start:
        raise OutputError(f"cannot write {path}: it was closed when fleetmon started (`>&-`)")
    try:
        os.fstat(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: descriptor {fd}: {exc.strerror}") from None
    return Target("stream", path, fd)


def resolve_output(path: str) -> Target:
    """What the output option `path` names, symlinks followed; OutputError when refused."""
    if path == "-":
        return _stream("standard output", 1)
    if os.path.basename(path) in ("", ".", "..") and not os.path.isdir(path):
        # `newdir/`, `keep.txt/`: a folder's name, as open() and the shell read it; Path
        # drops the slash, and a file `newdir` was created, or `keep.txt` replaced.
        raise OutputError(f"cannot write {path}: it names a folder, not a file")
    p = str(Path(path).absolute())  # "." components dropped; ".." kept for the kernel
    for _ in range(_MAX_LINKS):
        fd = _fd_of(p)
        if fd is not None:
            return _stream(path, fd)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            return Target("file", p)  # created where it is named (its folder checked later)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}") from None
        if not stat.S_ISLNK(st.st_mode):
            return _existing(path, p, st)
        if untrusted_in_sticky(st.st_uid, os.stat(os.path.dirname(p))):
            raise OutputError(
                f"cannot write {path}: {p} is a symlink of uid {st.st_uid} in a shared "
                "sticky folder; not followed (as fs.protected_symlinks)"
            )
        p = str(Path(os.path.dirname(p), os.readlink(p)))
    raise OutputError(f"cannot write {path}: too many levels of symbolic links")


def to_terminal(path: str) -> bool:
    """Whether the output `path` (`-`: standard output) is a terminal (`/dev/tty`,
    `/dev/stdout` on one...): where a host's text must not go with its escapes raw."""
    try:
        t = resolve_output(path)
        if t.kind == "stream":
            return os.isatty(t.fd)
        if t.kind != "device" or not stat.S_ISCHR(os.stat(t.path).st_mode):
            return False  # a file, a FIFO: not opened here
        fd = os.open(t.path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, OutputError):
        return False  # refused: write_output says why
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _existing(path: str, p: str, st: os.stat_result) -> Target:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return Target("file", p)
    if stat.S_ISFIFO(mode) and untrusted_in_sticky(st.st_uid, os.stat(os.path.dirname(p))):
        raise OutputError(
            f"cannot write {path}: a FIFO of uid {st.st_uid} in a shared sticky folder; "
            "not opened (as fs.protected_fifos)"
        )
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return Target("device", p)
    why = " (a report would overwrite the disk)" if stat.S_ISBLK(mode) else ""
    raise OutputError(f"cannot write {path}: it is {kind(mode)}{why}")


def check_output(path: str) -> None:
    """Refuse, before a run starts, an output that cannot be written (OutputError)."""
    t = resolve_output(path)
    if t.kind == "file":
        folder = os.path.dirname(t.path)
        if not os.path.isdir(folder):
            raise OutputError(f"cannot write {path}: its folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {path}: its folder {folder} is not writable")
    elif t.kind == "device" and not os.access(t.path, os.W_OK):
        raise OutputError(f"cannot write {path}: permission denied")


def default_lock_path(*outputs: str | None) -> str | None:
    """The run lock beside the first output that is a regular file (or not there yet):
    `fleet.json` -> `.fleet.json.lock`. None when every output is a stream or a device:
    a lock is never put beside /dev/null (nor in /dev)."""
    for out in outputs:
        if not out:
            continue
        try:
            t = resolve_output(out)
        except OutputError:
            continue
        if t.kind == "file":
            # By its real path: runs writing one file by two names (a symlinked folder,
            # `..`) share one lock.
            folder, name = os.path.split(os.path.realpath(t.path))
            return os.path.join(folder, hidden_name(name, ".lock"))
    return None


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write one text to an output (see write_output)."""
    write_output(path, (text,))


def write_output(
    path: str | os.PathLike[str], chunks: Iterable[str], *, mode: int | None = None
) -> None:
    """Write the pieces of a text to the output `path` as the module docstring says.

    `mode` forces the permission bits of a regular file (0o600 for a private key). Any
    failure is an OutputError naming the path; a regular file is then left as it was.
    """
    shown = os.fspath(path)
    shown = "standard output" if shown == "-" else shown
    try:
        t = resolve_output(os.fspath(path))
        if t.kind == "stream":
            _write_fd(t.fd, chunks)
        elif t.kind == "device":
            _write_device(t.path, chunks)
        else:
            _write_file(t.path, chunks, mode)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    except UnicodeError as exc:
        # A renderer let through a lone surrogate (bytes that were not UTF-8): a regular
        # file is left as it was, as for any failed write.
        raise OutputError(f"cannot write {shown}: text that is not UTF-8 ({exc})") from None


def _write_file(p: str, chunks: Iterable[str], mode: int | None) -> None:
    folder, name = os.path.split(p)
    if not name:
        raise IsADirectoryError(21, "is a folder")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        folder_fd = os.open(folder, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(2, f"its folder {folder} does not exist") from None
    try:
        replace_in(folder_fd, name, chunks, mode=mode)
    finally:
        os.close(folder_fd)


def _write_device(p: str, chunks: Iterable[str]) -> None:
    fd = os.open(p, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            raise OSError(0, f"changed into {kind(mode)} while being opened")
        for chunk in chunks:
            fh.write(chunk)


def _write_fd(fd: int, chunks: Iterable[str]) -> None:
    if fd in (1, 2):
        stream = sys.stdout if fd == 1 else sys.stderr
        try:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
        except BrokenPipeError:
            # The reader took what it wanted and left (`| head`): not a failure of the
            # run, whose other outputs, history and exports go on, as `head`'s writer is
            # not told off either.
            discard(stream)
        return
    for chunk in chunks:
        data = chunk.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]


def discard(stream: TextIO) -> None:
    # The reader went away (`| head`): what Python still buffers would fail again at exit
    # with "Exception ignored"; point the descriptor at /dev/null (Python's signal docs).
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
