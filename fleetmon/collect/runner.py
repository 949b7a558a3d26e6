"""Collect stage (I/O): run the probe on every host concurrently and return one RawResult each.

A failed host is a RawResult with a status and a reason, never an exception; cancelling
collect() (Ctrl-C) closes every connection and kills every local probe before returning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from fleetmon.collect.base import (
    CollectOptions,
    HostFailure,
    Outcome,
    OutputCapExceeded,
    first_line,
)
from fleetmon.collect.local import run_local
from fleetmon.collect.probe import ProbeOptions, build_script
from fleetmon.collect.ssh import Progress, run_ssh
from fleetmon.collect.sshcontext import SshContext
from fleetmon.model import HostSpec, RawResult, Status

__all__ = [
    "TRANSPORTS",
    "CollectOptions",
    "Transport",
    "collect",
    "collect_each",
    "fd_budget",
    "fd_room",
    "forks_within",
    "usable_forks",
    "watchable",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: File descriptors kept free for the rest of the process (logs, output file, raw files,
#: the resolver's threads, a ssh_config or known_hosts file being read).
FD_RESERVE = 64
#: A local probe holds its stdin, stdout and stderr pipes and a child watcher's descriptor.
FDS_PER_LOCAL_HOST = 4


def fds_per_host(host: HostSpec, agent: bool) -> int:
    """Descriptors one host holds at once: one TCP socket (a ProxyJump chain has one too:
    each further hop and the target ride in SSH channels of the one before), plus, with an
    ssh-agent configured, the agent socket asyncssh opens for each of those connections."""
    if host.connection == "local":
        return FDS_PER_LOCAL_HOST
    hops = len(host.proxy_jump.split(",")) if host.proxy_jump else 0
    return 1 + ((1 + hops) if agent else 0)


def usable_forks(forks: int, hosts: Sequence[HostSpec] | None = None) -> int:
    """`forks`, lowered so that the open-file limit is never hit (raising the soft limit first).

    The budget is per connection kind, for the hungriest host of `hosts` (None: assume
    local hosts, the hungriest kind). Hosts beyond this wait for a free slot instead of
    failing with EMFILE.
    """
    return forks_within(forks, fd_room(hosts))


def fd_room(hosts: Sequence[HostSpec] | None = None) -> tuple[int, int]:
    """How many of `hosts` can hold their descriptors at once, and the open-file limit."""
    soft, per_host = fd_budget(hosts)
    return max(0, (soft - FD_RESERVE) // per_host), soft


def forks_within(forks: int, room: tuple[int, int]) -> int:
    """`forks` lowered to the fd_room (at least one)."""
    allowed, soft = max(1, room[0]), room[1]
    if forks > allowed:
        log.info("forks lowered from %d to %d by the open-file limit %d", forks, allowed, soft)
    return max(1, min(forks, allowed))


def watchable(hosts: int, room: tuple[int, int]) -> tuple[int, str | None]:
    """How many of `hosts` fit the fd_room (a live mode's hosts hold their connections for
    good), and what the others say (None: all fit)."""
    fit, soft = min(hosts, room[0]), room[1]
    if fit == hosts:
        return fit, None
    return fit, (
        f"not watched: the open-file limit ({soft}, ulimit -n) holds {fit} of"
        f" {hosts} hosts' connections; raise it, or watch fewer (--limit)"
    )


def fd_budget(hosts: Sequence[HostSpec] | None = None) -> tuple[int, int]:
    """The open-file limit (its soft limit raised to the hard one first) and what the
    hungriest host of `hosts` holds (None: assume local hosts, the hungriest kind)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            log.debug("cannot raise the open-file limit above %d", soft)
    if hosts is None:
        return soft, FDS_PER_LOCAL_HOST
    agent = bool(os.environ.get("SSH_AUTH_SOCK"))
    return soft, max((fds_per_host(h, agent) for h in hosts), default=1)


#: An output this size (a usual host prints 20-200 KB) is analysed off the event loop: up to
#: ~0.6 s of CPU at the output cap (issue 16) that would otherwise stall every other host.
OFFLOAD_BYTES = 1 << 20


def big_output(raw: RawResult) -> bool:
    """Whether a result is big enough to be handled off the event loop (collect_each)."""
    return len(raw.stdout) >= OFFLOAD_BYTES


#: A transport runs the script on one host: (host, script, options, run context, progress).
Transport = Callable[[HostSpec, str, CollectOptions, SshContext, Progress], Awaitable[Outcome]]


async def _ssh(
    host: HostSpec, script: str, opts: CollectOptions, ctx: SshContext, progress: Progress
) -> Outcome:
    return await run_ssh(ctx, host, script, progress)


async def _local(
    host: HostSpec, script: str, opts: CollectOptions, ctx: SshContext, progress: Progress
) -> Outcome:
    progress.stage = "running"
    return await run_local(script, opts.output_cap_bytes)


#: `ansible_connection` -> its transport. Tests register a fake one (collect.fake).
TRANSPORTS: dict[str, Transport] = {"ssh": _ssh, "local": _local}


#: What an account that may not run commands prints on stdout, and exits 1: nologin(8)
#: (shadow's, util-linux's and the BSDs'), and sshd's refusal of a session other than sftp
#: under `ForceCommand internal-sftp` (session.c). The reason quotes it as the error itself.
REFUSALS = frozenset(
    ("This account is currently not available.", "This service allows sftp connections only.")
)


def _failed_reason(outcome: Outcome, stdout: str, nonce: str) -> str:
    """Why the probe failed: stderr's first line, an account's refusal, or (the probe never
    started: no marker came back) what the host printed, labelled as such."""
    how = outcome.exit_note or f"exited {outcome.exit_status}"
    err = first_line(outcome.stderr)
    if err:
        return f"probe {how}: {err}"
    printed = first_line(outcome.stdout) if nonce not in stdout else ""
    if not printed:
        return f"probe {how} with no error output"
    if printed in REFUSALS:
        return f"probe {how}: {printed}"
    # Not the probe speaking: a login shell whose start-up file failed (`set -e` in
    # ~/.bashrc) before it ran the command, or a forced command; what it printed on the
    # way (a greeting) is no error message.
    quoted = f"(no probe output; it printed: {printed!r})"
    if outcome.exit_note is not None:
        return f"probe {how} before it started {quoted}"
    return f"the login shell (or a forced command) {how} before the probe started {quoted}"


def _result(host: HostSpec, outcome: Outcome, nonce: str, elapsed_s: float) -> RawResult:
    stdout = outcome.stdout.decode("utf-8", "replace")
    stderr = outcome.stderr.decode("utf-8", "replace")
    if outcome.exit_status == 0:
        return RawResult(host, Status.OK, None, stdout, 0, stderr, elapsed_s, nonce)
    reason = _failed_reason(outcome, stdout, nonce)
    return RawResult(
        host, Status.COMMAND_FAILED, reason, stdout, outcome.exit_status, stderr, elapsed_s, nonce
    )


async def _collect_one(
    host: HostSpec, script: str, nonce: str, opts: CollectOptions, ctx: SshContext
) -> RawResult:
    started = time.monotonic()
    target = f"{host.address}:{host.port}" if host.connection == "ssh" else host.connection
    progress = Progress(target)
    deadline_s = opts.deadline_s
    try:
        transport = TRANSPORTS.get(host.connection)
        if transport is None:
            raise HostFailure(Status.COMMAND_FAILED, f"no transport for {host.connection!r}")
        async with asyncio.timeout(deadline_s):
            outcome = await transport(host, script, opts, ctx, progress)
    except HostFailure as exc:
        status, reason = exc.status, exc.reason
    except TimeoutError:
        status, reason = Status.TIMEOUT, progress.stalled(deadline_s, "deadline")
    except OutputCapExceeded as exc:
        status, reason = Status.COMMAND_FAILED, f"{exc}; stopped reading and closed the channel"
    except Exception as exc:  # one bad host never stops the run
        log.debug("host %s: unexpected error", host.name, exc_info=True)
        status, reason = Status.COMMAND_FAILED, f"unexpected error: {type(exc).__name__}: {exc}"
    else:
        return _result(host, outcome, nonce, time.monotonic() - started)
    elapsed_s = time.monotonic() - started
    log.debug("host %s: %s: %s (%.2f s)", host.name, status.value, reason, elapsed_s)
    return RawResult(host, status, reason, elapsed_s=elapsed_s, nonce=nonce)


async def collect_each(
    hosts: Sequence[HostSpec],
    opts: CollectOptions,
    probe_options: Callable[[HostSpec], ProbeOptions],
    handle: Callable[[int, RawResult], T],
    host_options: Callable[[HostSpec], CollectOptions] | None = None,
    on_start: Callable[[int], None] | None = None,
    offload: Callable[[RawResult], bool] | None = None,
) -> list[T]:
    """Probe every host, at most `opts.forks` at a time, and hand each result to `handle`.

    `handle(index, raw)` runs on the event loop as soon as host `hosts[index]` is done, so
    the caller can analyse it and drop its output while other hosts are still waiting;
    what it returns is kept, in the order of `hosts`. An exception from `handle` stops the
    run (every other host is cancelled) and is raised as itself. `host_options` gives a
    host its own time limits and output cap; concurrency and the host-key policy stay the
    run's. `on_start(index)` runs when a host gets its slot (the progress line's clock).
    When `offload(result)` is true (a big output), `handle` runs in a worker thread so the
    loop keeps serving the other hosts' connections meanwhile (the interpreter switches
    threads every few milliseconds): `handle` must then be safe to call from a thread.
    """
    jobs: list[tuple[str, str]] = []
    for host in hosts:
        popts = probe_options(host)
        jobs.append((build_script(popts), popts.nonce))
    ctx = SshContext(opts)
    slots = asyncio.Semaphore(usable_forks(opts.forks, hosts))

    async def one(i: int, host: HostSpec, script: str, nonce: str) -> T:
        hopts = host_options(host) if host_options is not None else opts
        async with slots:
            if on_start is not None:
                on_start(i)
            result = await _collect_one(host, script, nonce, hopts, ctx.with_opts(hopts))
        if offload is not None and offload(result):
            return await asyncio.to_thread(handle, i, result)
        return handle(i, result)

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(one(i, h, s, n))
                for i, (h, (s, n)) in enumerate(zip(hosts, jobs, strict=True))
            ]
    except BaseExceptionGroup as group:
        # Only `handle` can fail (a host's own failure is a value): raise its exception
        # itself, so the caller's `except OSError` or InputError still applies.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    return [t.result() for t in tasks]


async def collect(
    hosts: Sequence[HostSpec],
    opts: CollectOptions,
    probe_options: Callable[[HostSpec], ProbeOptions],
    on_done: Callable[[RawResult], None] | None = None,
    host_options: Callable[[HostSpec], CollectOptions] | None = None,
) -> list[RawResult]:
    """Probe every host, at most `opts.forks` at a time; results in the order of `hosts`.

    Every raw output is kept until the end: `collect_each` analyses and drops them as
    they arrive instead.
    """

    def keep(_: int, result: RawResult) -> RawResult:
        if on_done is not None:
            on_done(result)
        return result

    return await collect_each(hosts, opts, probe_options, keep, host_options)
