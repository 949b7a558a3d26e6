"""Run the fleetmon CLI as a real subprocess, as cron or CI would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fleetmon(
    *args: str | os.PathLike[str], timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m fleetmon ARGS...` from the project root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "fleetmon", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def popen(*args: str | os.PathLike[str]) -> subprocess.Popen[str]:
    """Start `python -m fleetmon ARGS...` without waiting."""
    return subprocess.Popen(
        [sys.executable, "-m", "fleetmon", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Measured:
    """A finished `fleetmon` process: exit code, stderr, wall time and its own peak RSS."""

    returncode: int
    stderr: str
    wall_s: float
    maxrss_mb: float


def measured(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Measured:
    """`python -m fleetmon ARGS...` (stdout discarded), timed, with its peak RSS (wait4)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetmon", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None
    with proc.stderr:
        stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, stderr, time.monotonic() - started, usage.ru_maxrss / 1024)
