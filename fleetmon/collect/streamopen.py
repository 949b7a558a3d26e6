"""Collect stage, streaming (I/O): how the looping probe is opened on a host (over SSH, or a
local `sh`), and why its stream ended when it did, as `fleetmon run` says it of a probe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncssh

from fleetmon.collect.base import HostFailure, first_line, read_head
from fleetmon.collect.local import start_probe_sh, stop_group
from fleetmon.collect.ssh import Progress, SshContext, open_probe, ssh_connection
from fleetmon.model import HostSpec, Status

#: Reads stdout: a chunk at a time (b"" at the end).
Reader = Callable[[int], Awaitable[bytes]]
#: Opens the looping probe on one host: (context, host, script, progress) -> its stdout.
StreamOpener = Callable[
    [SshContext, HostSpec, str, Progress], contextlib.AbstractAsyncContextManager[Reader]
]


class _Stderr:
    """stderr read to its end in the background (a full stderr window would stall stdout on
    the same channel): its first line, once read."""

    def __init__(self, read: Reader) -> None:
        self.head: list[bytes] = []
        self.task = asyncio.ensure_future(self._drain(read))

    async def _drain(self, read: Reader) -> None:
        self.head.append(await read_head(read))

    def first(self) -> str:
        return first_line(self.head[0]) if self.head else ""

    async def settled(self, timeout_s: float) -> str:
        """The first line once stderr has ended (or `timeout_s` has passed)."""
        await asyncio.wait({self.task}, timeout=timeout_s)
        return self.first()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncssh.Error, OSError):
            await self.task


#: How long a stream that ended waits for its stderr and exit status, to say why it ended.
_ENDED_WAIT_S = 2.0


async def _why_ended(proc: asyncssh.SSHClientProcess[bytes], stderr: _Stderr) -> str | None:
    """Why the looping probe's stdout ended, as `fleetmon run` says it of a probe (its exit
    status or signal, stderr's first line); None for an end without either."""
    err = await stderr.settled(_ENDED_WAIT_S)
    with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
        await asyncio.wait_for(proc.wait_closed(), _ENDED_WAIT_S)
    if proc.exit_signal is not None:
        how = f"killed by signal {proc.exit_signal[0]}"
    elif proc.exit_status not in (None, 0):
        how = f"exited {proc.exit_status}"
    elif err:
        how = "ended"
    else:
        return None
    return f"probe loop {how}: {err}" if err else f"probe loop {how} with no error output"


@contextlib.asynccontextmanager
async def ssh_stream(
    ctx: SshContext, host: HostSpec, script: str, progress: Progress
) -> AsyncIterator[Reader]:
    """The looping probe over one SSH connection (ssh.ssh_connection: the same options,
    keys and host-key policy as `fleetmon run`)."""
    async with ssh_connection(ctx, host, progress) as conn:
        proc = await open_probe(conn, progress)
        stderr = _Stderr(proc.stderr.read)
        try:
            proc.stdin.write(script.encode())
            proc.stdin.write_eof()

            async def read(n: int) -> bytes:
                data: bytes = await proc.stdout.read(n)
                if not data and (why := await _why_ended(proc, stderr)) is not None:
                    raise HostFailure(Status.COMMAND_FAILED, why)
                return data

            yield read
        finally:
            await stderr.close()
            proc.close()


@contextlib.asynccontextmanager
async def local_stream(
    ctx: SshContext, host: HostSpec, script: str, progress: Progress
) -> AsyncIterator[Reader]:
    """The looping probe through a local `sh` (`ansible_connection: local`), in its own
    session so that closing kills its `sleep` too."""
    proc = await start_probe_sh(script, asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        yield proc.stdout.read
    finally:
        await stop_group(proc)


#: `ansible_connection` -> how the looping probe is opened there.
STREAM_OPENERS: dict[str, StreamOpener] = {"ssh": ssh_stream, "local": local_stream}
