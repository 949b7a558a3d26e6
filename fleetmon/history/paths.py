"""Where the history lives (I/O edge): the default path, and the filesystem under it.

`default_path` and `parse_mountinfo` are pure; `filesystem_of` reads /proc/self/mountinfo.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from dataclasses import dataclass

#: `--history none` (or FLEETMON_HISTORY=none): no history read or written.
OFF = "none"
ROOT_PATH = "/var/lib/fleetmon/history.sqlite"
#: Filesystems where SQLite's WAL cannot work: its index is shared memory, which a network
#: filesystem does not share between machines (https://sqlite.org/wal.html, "WAL does not
#: work over a network filesystem"). FUSE may be anything (sshfs, s3fs): treated alike.
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "ceph", "glusterfs"}
    | {"lustre", "gpfs", "ocfs2", "gfs2", "beegfs", "davfs", "fuse", "fuseblk"}
)


def default_path(env: Mapping[str, str], euid: int, home: str) -> str:
    """The history file when `--history` is not given (pure).

    $FLEETMON_HISTORY when set (a path, or `none`); for root /var/lib/fleetmon (where
    daemons keep state); else $XDG_STATE_HOME/fleetmon (XDG base directories: state that
    should persist between restarts but is not worth a backup), ~/.local/state by default.
    """
    chosen = env.get("FLEETMON_HISTORY", "").strip()
    if chosen:
        return chosen
    if euid == 0:
        return ROOT_PATH
    state = env.get("XDG_STATE_HOME", "").strip()
    if not os.path.isabs(state):  # the spec: a relative value is invalid and ignored
        state = os.path.join(home, ".local", "state")
    return os.path.join(state, "fleetmon", "history.sqlite")


def resolve(option: str | None) -> str | None:
    """The history path of this run from `--history` and the environment; None when off."""
    path = option if option else default_path(os.environ, os.geteuid(), os.path.expanduser("~"))
    return None if path == OFF else path


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mountinfo: where, and which filesystem type."""

    point: str
    fstype: str


def _unescape(field: str) -> str:
    # proc(5): space, tab, newline and backslash are written as octal escapes (\040).
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """Mount points and filesystem types from /proc/<pid>/mountinfo text (proc(5)).

    `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the fifth field is the
    mount point; the type follows the ` - ` separator (the optional fields vary in number).
    """
    out = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split():
            continue
        out.append(Mount(_unescape(fields[4]), tail.split()[0]))
    return out


def fstype_at(path: str, mounts: list[Mount]) -> str | None:
    """The filesystem type of the mount holding the absolute `path` (the last mounted wins)."""
    best: Mount | None = None
    for m in mounts:
        prefix = m.point.rstrip("/") + "/"
        inside = path == m.point or path.startswith(prefix) or m.point == "/"
        if inside and (best is None or len(m.point) >= len(best.point)):
            best = m
    return best.fstype if best else None


def is_network_fs(fstype: str | None) -> bool:
    """True for a filesystem type where WAL must not be used."""
    return fstype is not None and (fstype in NETWORK_FS or fstype.startswith("fuse."))


def filesystem_of(path: str) -> str | None:
    """The filesystem type of the folder holding `path`, from /proc/self/mountinfo, or from
    statfs(2)'s magic number when no mount there covers it (a chroot sees only the mounts
    inside it, not the filesystem its root lives on)."""
    folder = os.path.dirname(os.path.realpath(path))
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            found = fstype_at(folder, parse_mountinfo(fh.read()))
    except OSError:
        found = None  # not Linux, or no /proc
    return found if found is not None else statfs_type(folder)


#: statfs(2) f_type magic numbers (linux/magic.h) of the common local filesystems and of
#: the network ones NETWORK_FS names; another magic is shown as hex (a local disk: WAL).
_MAGIC = {
    0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
    0x794C7630: "overlay", 0x2FC12FC1: "zfs", 0x6969: "nfs", 0x517B: "smbfs",
    0xFF534D42: "cifs", 0xFE534D42: "smb3", 0x65735546: "fuse", 0x01021997: "9p",
    0x00C36400: "ceph", 0x5346414F: "afs", 0x0BD00BD0: "lustre", 0x47504653: "gpfs",
}  # fmt: skip


def statfs_type(folder: str) -> str | None:
    """The filesystem type of `folder` by statfs(2) (f_type, the struct's first field), or
    None when the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on x86_64
        if libc.statfs(os.fsencode(folder), buf) != 0:
            return None
    except (OSError, AttributeError):
        return None
    magic = ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    return _MAGIC.get(magic, f"0x{magic:x}")
