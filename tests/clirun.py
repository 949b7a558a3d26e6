"""Run the fleetmon CLI as a real subprocess, as cron or CI would."""

from __future__ import annotations

import os
import subprocess
import sys
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
