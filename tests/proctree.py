"""Test helper: find processes by their exact command line among the descendants of one process.

Other test sessions may run on the same machine at the same time (several worktrees), with the
same commands: a test looks only at its own process tree, never at "any process" or "any
child" (a child can also be a helper such as ldconfig, run while Python imports a module).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def cmdline(pid: int) -> tuple[str, ...] | None:
    """The argv of process `pid`; None when it is gone (or a zombie: its argv is empty)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1]) or None


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces or parentheses: split after the last ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants_running(root: int, argv: tuple[str, ...]) -> list[int]:
    """Pids of the processes under `root` (at any depth) whose argv is exactly `argv`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or cmdline(int(entry.name)) != argv:
            continue
        pid: int | None = int(entry.name)
        seen = 0
        while pid not in (None, 0, 1) and seen < 64:
            pid = _parent(pid)  # type: ignore[arg-type]
            seen += 1
            if pid == root:
                found.append(int(entry.name))
                break
    return found


def wait_for_descendant(root: int, argv: tuple[str, ...], timeout_s: float = 60.0) -> int:
    """Wait until a process with exactly `argv` runs under `root`; its pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = descendants_running(root, argv)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {' '.join(argv)!r} under pid {root} within {timeout_s} s")


def still_running(pids: list[int], argv: tuple[str, ...]) -> list[int]:
    """Those of `pids` that still run `argv` (a pid reused by another command is not one)."""
    return [p for p in pids if cmdline(p) == argv]
