"""Collect stage, local transport (I/O): runs the probe command through a local `sh`.

Used for `ansible_connection: local`. The probe runs in its own session so that a deadline or
Ctrl-C kills the whole process group (the probe's `sleep` included), not only `sh`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from fleetmon.collect.base import HostFailure, Outcome, read_both
from fleetmon.collect.probe import REMOTE_COMMAND
from fleetmon.model import Status


async def stop_group(proc: asyncio.subprocess.Process) -> None:
    """Kill the probe's whole session if it still runs, and reap it even when cancelled (no
    zombie, no ResourceWarning)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.shield(proc.wait())


async def start_probe_sh(script: str, stderr: int) -> asyncio.subprocess.Process:
    """`sh -c REMOTE_COMMAND` in its own session, `script` written to its stdin and closed;
    HostFailure when sh cannot start. stdout is a pipe; `stderr` a pipe or DEVNULL."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            REMOTE_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    except OSError as exc:
        raise HostFailure(Status.COMMAND_FAILED, f"cannot start sh: {exc.strerror}") from exc
    assert proc.stdin is not None
    try:
        # sh may have gone before reading the script (a probe that exits at once): its
        # stderr and exit status are still read by the caller and say why.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(script.encode())
            await proc.stdin.drain()
        proc.stdin.close()
    except BaseException:
        await stop_group(proc)
        raise
    return proc


async def run_local(script: str, cap_bytes: int) -> Outcome:
    """Run REMOTE_COMMAND locally with `script` on its stdin; raise HostFailure on failure."""
    proc = await start_probe_sh(script, asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        out, err = await read_both(proc.stdout.read, proc.stderr.read, cap_bytes)
        rc = await proc.wait()
    finally:
        await stop_group(proc)
    if rc < 0:
        name = signal.Signals(-rc).name.removeprefix("SIG")
        return Outcome(out, err, None, f"killed by signal {name}")
    return Outcome(out, err, rc)
