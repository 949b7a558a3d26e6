"""Run the fleetmon CLI as a real subprocess, as cron or CI would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


def on_a_terminal(
    *args: str | os.PathLike[str], columns: int | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`python -m fleetmon ARGS...` with its standard output on a pty (`columns` wide when
    given; $COLUMNS unset unless `env` sets it): (exit status, output, standard error)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    if columns is not None:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | (env or {})
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "fleetmon", *map(str, args)], cwd=ROOT,
                                stdout=slave, stderr=err, env=environ)  # fmt: skip
        os.close(slave)
        chunks = read_terminal(master, 60)
        os.close(master)
        code = proc.wait(timeout=120)
        err.seek(0)
        said = err.read().decode(errors="replace")
    return code, b"".join(chunks).decode(), said


def read_terminal(master: int, quiet_s: float) -> list[bytes]:
    """What a pty's other side wrote until it closed it (or said nothing for quiet_s)."""
    import select

    chunks = []
    while select.select([master], [], [], quiet_s)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return chunks


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
    """A finished `fleetmon` process: exit code, stderr, wall and CPU time, own peak RSS.

    CPU time (user + system) is the work done, whatever else the machine is running.
    """

    returncode: int
    stderr: str
    wall_s: float
    cpu_s: float
    maxrss_mb: float


def measured(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Measured:
    """`python -m fleetmon ARGS...` (stdout discarded), timed, with its own figures.

    Started through benchmarks/spawn.py, a small process: Linux carries a parent's memory
    high-water mark into a child at exec, so a child of pytest would report pytest's.
    """
    with tempfile.TemporaryDirectory() as tmp:
        usage = Path(tmp) / "usage.json"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-S", str(ROOT / "benchmarks" / "spawn.py"), str(usage), "-",
             sys.executable, "-m", "fleetmon", *map(str, args)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=300,
            check=False,
        )  # fmt: skip
        wall_s = time.monotonic() - started
        figures = json.loads(usage.read_text())
    return Measured(
        figures["rc"], proc.stderr, wall_s, figures["cpu_s"], figures["maxrss_kb"] / 1024
    )
