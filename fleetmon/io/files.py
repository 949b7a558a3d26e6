"""Safe file primitives (I/O): replace a file atomically inside an open folder, read only
regular files of bounded size, and use only folders that are ours.

Every file fleetmon creates is opened with O_CREAT|O_EXCL|O_NOFOLLOW under a fresh random
name inside a folder held open by descriptor, then renamed: a name another local user
prepared (a symlink, a FIFO, a hard link) is never opened for writing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import stat
from collections.abc import Iterable
from typing import Any, BinaryIO

from fleetmon.errors import InputError

#: Flags of every descriptor we open: never inherited, never a controlling terminal.
_BASE = os.O_CLOEXEC | os.O_NOCTTY
_TEMP_TRIES = 100
#: Linux's NAME_MAX: the longest name of a folder entry, in bytes.
_NAME_MAX = 255


def kind(mode: int) -> str:
    """What an st_mode is, in words: 'a FIFO', 'a character device', 'a folder'..."""
    for test, words in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "not a regular file"  # pragma: no cover - every Linux file type is listed


def untrusted_in_sticky(owner_uid: int, folder: os.stat_result) -> bool:
    """True when a link or FIFO owned by `owner_uid` in `folder` is one the kernel would not
    follow or open for us under fs.protected_symlinks / fs.protected_fifos: the folder is
    sticky and world-writable (/tmp) and the file belongs neither to us nor to the folder's
    owner. We resolve paths ourselves, so the rule is applied here whatever the sysctls say.
    """
    shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
    return bool(shared) and owner_uid not in (os.geteuid(), folder.st_uid)


def replace_in(
    folder_fd: int, name: str, chunks: Iterable[str], *, mode: int | None = None, sync: bool = True
) -> None:
    """Write `chunks` to `name` in the open folder through a new temporary file and a rename.

    The temporary file is created O_EXCL|O_NOFOLLOW (never through anything already there).
    Its mode: `mode` when given (e.g. 0o600 for a private key), else the replaced file's
    permission bits and owner when there was a regular file, else 0o666 less the umask.
    With `sync` the data and the folder entry are fsynced before returning.
    """
    try:
        old: os.stat_result | None = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        old = None  # a symlink the caller chose to replace keeps nothing of its target
    fd, tmp = _create_temp(folder_fd, name, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            if mode is not None:
                os.fchmod(fd, mode)
            elif old is not None:
                _keep_owner_and_mode(fd, old)
            if sync:
                os.fsync(fd)
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        raise
    if sync:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(folder_fd)


def hidden_name(name: str, suffix: str) -> str:
    """`.NAME{suffix}`, a file's hidden companion (its temporary file, its lock), NAME cut
    in bytes so that it stays within NAME_MAX: for a legal name of 242-255 bytes the
    temporary file failed with "File name too long" only once the whole run was done."""
    end = os.fsencode(suffix)
    return os.fsdecode(b"." + os.fsencode(name)[: _NAME_MAX - 1 - len(end)] + end)


def _create_temp(folder_fd: int, name: str, mode: int) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _BASE
    for _ in range(_TEMP_TRIES):
        tmp = hidden_name(name, f".{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, mode, dir_fd=folder_fd), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {name}")  # pragma: no cover


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != (old.st_uid, old.st_gid):
        # root replacing www-data's report keeps it www-data's; others may only keep a group.
        with contextlib.suppress(OSError):
            os.fchown(fd, old.st_uid, old.st_gid)
    # Permission bits only: a report is never setuid, setgid or sticky.
    os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)


def open_own_folder(path: str, *, parent_fd: int | None = None, label: str | None = None) -> int:
    """A descriptor on folder `path` (relative to `parent_fd` when given), created when
    missing (0o755 less the umask: never group- or world-writable).

    An existing folder must be a real folder (not a symlink), ours, and not group- or
    world-writable: no other local user can then put a name in it. InputError otherwise.
    """
    shown = label or path
    try:
        os.mkdir(path, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror}", file=shown) from None
    try:
        st = os.stat(path, dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise InputError(
                "is a symlink; not followed (give the folder it points to)", file=shown
            )
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"is {kind(st.st_mode)}, not a folder", file=shown)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _BASE, dir_fd=parent_fd)
    except OSError as exc:
        raise InputError(f"cannot open the folder: {exc.strerror}", file=shown) from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISDIR(st.st_mode):  # pragma: no cover - swapped between stat and open
        problem = "changed while being opened"
    elif st.st_uid != os.geteuid():
        problem = (
            f"owned by uid {st.st_uid}, not by you (uid {os.geteuid()}): "
            "choose a folder of your own"
        )
    elif st.st_mode & 0o022:
        problem = (
            f"group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}): "
            "another user could plant files there; chmod go-w it or choose another folder"
        )
    if problem is not None:
        os.close(fd)
        raise InputError(problem, file=shown)
    return fd


class TooLarge(InputError):
    """A file is larger than the limit its reader set."""


def read_regular(path: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, never through a symlink at its last component.

    Anything else is refused unopened (a device can act on open or close: a tape rewinds),
    then checked again with fstat on a descriptor opened O_NOFOLLOW|O_NONBLOCK (a FIFO
    swapped in meanwhile cannot hang us). More than `max_bytes` is TooLarge, a file of
    another kind an InputError; OSError for the rest (missing, unreadable).
    """
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | _BASE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a symlink after the lstat
            _must_be_regular(path, stat.S_IFLNK)
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        _must_be_regular(path, st.st_mode)
        if max_bytes is not None and st.st_size > max_bytes:
            raise TooLarge(_too_big(st.st_size, max_bytes), file=path)
        data = fh.read() if max_bytes is None else _read_upto(fh, st.st_size, max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:  # grew while being read
        raise TooLarge(_too_big(len(data), max_bytes), file=path)
    return data


def check_regular(path: str) -> os.stat_result:
    """Its lstat, or InputError unless `path` is a regular file (a symlink not followed);
    OSError when it cannot be looked at (missing): read_regular's first check, for a caller
    that checks several files before it reads any."""
    st = os.lstat(path)
    _must_be_regular(path, st.st_mode)
    return st


def _read_upto(fh: BinaryIO, size: int, most: int) -> bytes:
    """At most `most` bytes of a file of `size` bytes (as fstat saw it): one read of what it
    holds (a read of `most` would ask for that much memory at once: a cap of 1 TiB is a
    MemoryError), then, if it grew meanwhile, the rest a MiB at a time."""
    parts = [fh.read(min(most, size + 1))]
    got = len(parts[0])
    while size < got < most:
        part = fh.read(min(most - got, 1 << 20))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts) if len(parts) > 1 else parts[0]


def _must_be_regular(path: str, mode: int) -> None:
    if stat.S_ISLNK(mode):
        raise InputError("is a symlink; not followed", file=path)
    if not stat.S_ISREG(mode):
        raise InputError(f"is {kind(mode)}, not a regular file", file=path)


def _too_big(size: int, limit: int) -> str:
    return f"{size} bytes, over the limit of {limit} bytes"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is past the largest number")
    return value


def strict_json(text: str | bytes) -> Any:
    """A JSON document as the standard has it, as fleetmon writes its own: NaN, Infinity
    and numbers past a double (1e400) refused, as is one nested past Python's recursion
    limit (ValueError for each; json.JSONDecodeError, a ValueError, for bad syntax)."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply") from None
