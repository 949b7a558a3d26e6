"""Collect stage, shared transport parts (I/O): options, host failures, capped output reading.

Every transport (ssh, local, fake) ends in an Outcome or raises HostFailure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fleetmon.model import Status

MIB = 1024 * 1024
#: stderr is only read for its first line(s): keep this much, drain and drop the rest.
STDERR_KEEP_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024

#: The variables Ansible logs in with a password from (fleetmon does not).
PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")


@dataclass(frozen=True, slots=True)
class CollectOptions:
    """How to reach hosts: concurrency, time limits, host-key policy, output cap."""

    interval_s: float = 1.0
    forks: int = 200  # as `fleetmon run --forks` (see cli/options.py)
    connect_timeout_s: float = 10.0
    #: Per-host deadline for everything (connect, probe, reading); None: interval_s + 30,
    #: as `run`'s default (cli/options.py TIMEOUT_MARGIN_S): the streaming loop's tick with
    #: the once-per-run sections waits at most WORST_GUARDED_S in its guarded commands.
    timeout_s: float | None = None
    #: Like OpenSSH StrictHostKeyChecking=accept-new: unknown hosts are added, changed keys fail.
    accept_new_host_keys: bool = False
    #: known_hosts file; None: what ~/.ssh/config says (UserKnownHostsFile), else
    #: ~/.ssh/known_hosts.
    known_hosts: str | None = None
    #: ssh_config file; None: ~/.ssh/config when it exists.
    ssh_config: str | None = None
    output_cap_bytes: int = 16 * MIB

    @property
    def deadline_s(self) -> float:
        """The per-host deadline in seconds."""
        return self.timeout_s if self.timeout_s is not None else self.interval_s + 30.0


class HostFailure(Exception):
    """One host could not be collected; becomes a RawResult status and reason."""

    def __init__(self, status: Status, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status.value}: {reason}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transport got from the probe command."""

    stdout: bytes
    stderr: bytes
    exit_status: int | None
    #: Words for an abnormal end ("killed by signal TERM"), None for a normal exit.
    exit_note: str | None = None


class OutputCapExceeded(Exception):
    """The probe printed more than the cap; reading stopped."""

    def __init__(self, cap_bytes: int) -> None:
        self.cap_bytes = cap_bytes
        super().__init__(f"probe output exceeded the {format_bytes(cap_bytes)} cap")


def format_bytes(n: int) -> str:
    """`16 MiB`, `512 KiB` or `100 bytes`."""
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


async def read_capped(read: Callable[[int], Awaitable[bytes]], cap_bytes: int) -> bytes:
    """Read to EOF; raise OutputCapExceeded as soon as more than cap_bytes arrived.

    Memory stays bounded: at most cap_bytes plus one chunk is ever held.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await read(CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap_bytes:
            raise OutputCapExceeded(cap_bytes)
        chunks.append(chunk)


async def read_head(read: Callable[[int], Awaitable[bytes]]) -> bytes:
    """Read to EOF, keeping only the first STDERR_KEEP_BYTES (the rest is drained)."""
    kept = bytearray()
    while True:
        chunk = await read(CHUNK_BYTES)
        if not chunk:
            return bytes(kept)
        if len(kept) < STDERR_KEEP_BYTES:
            kept += chunk[: STDERR_KEEP_BYTES - len(kept)]


async def read_both(
    read_out: Callable[[int], Awaitable[bytes]],
    read_err: Callable[[int], Awaitable[bytes]],
    cap_bytes: int,
) -> tuple[bytes, bytes]:
    """stdout (capped) and the head of stderr, read concurrently so neither stream stalls."""
    err_task = asyncio.ensure_future(read_head(read_err))
    try:
        out = await read_capped(read_out, cap_bytes)
        err = await err_task
    finally:
        if not err_task.done():
            err_task.cancel()
            await asyncio.wait([err_task])
        if not err_task.cancelled():
            err_task.exception()  # retrieved: no "exception never retrieved" warning
    return out, err


def first_line(data: bytes, limit: int = 200) -> str:
    """The first non-empty line of stderr, decoded and shortened, for a reason."""
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""
