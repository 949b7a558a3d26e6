"""Collect stage (I/O): run the probe on every host concurrently and return one RawResult each.

A failed host is a RawResult with a status and a reason, never an exception; cancelling
collect() (Ctrl-C) closes every connection and kills every local probe before returning.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable, Sequence

from fleetmon.model import HostSpec, RawResult, Status
from fleetmon.probe import ProbeOptions, build_script
from fleetmon.transport_base import (
    CollectOptions,
    HostFailure,
    Outcome,
    OutputCapExceeded,
    first_line,
)
from fleetmon.transport_local import run_local
from fleetmon.transport_ssh import Progress, SshContext, run_ssh

__all__ = ["CollectOptions", "collect", "usable_forks"]

log = logging.getLogger(__name__)

#: File descriptors kept free for the rest of the process (logs, output file, sshd pipes).
FD_RESERVE = 64
#: Descriptors one host may hold at once: a socket, or a local probe's three pipes + pidfd.
FDS_PER_HOST = 4


def usable_forks(forks: int) -> int:
    """`forks`, lowered so that the open-file limit is never hit (raising the soft limit first).

    Hosts beyond this wait for a free slot instead of failing with EMFILE.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            log.debug("cannot raise the open-file limit above %d", soft)
    allowed = max(1, (soft - FD_RESERVE) // FDS_PER_HOST)
    if forks > allowed:
        log.info("forks lowered from %d to %d by the open-file limit %d", forks, allowed, soft)
    return max(1, min(forks, allowed))


def _result(host: HostSpec, outcome: Outcome, nonce: str, elapsed_s: float) -> RawResult:
    stdout = outcome.stdout.decode("utf-8", "replace")
    stderr = outcome.stderr.decode("utf-8", "replace")
    if outcome.exit_status == 0:
        return RawResult(host, Status.OK, None, stdout, 0, stderr, elapsed_s, nonce)
    how = outcome.exit_note or f"exited {outcome.exit_status}"
    err = first_line(outcome.stderr)
    reason = f"probe {how}: {err}" if err else f"probe {how} with no error output"
    return RawResult(
        host, Status.COMMAND_FAILED, reason, stdout, outcome.exit_status, stderr, elapsed_s, nonce
    )


async def _collect_one(
    host: HostSpec, script: str, nonce: str, opts: CollectOptions, ctx: SshContext
) -> RawResult:
    started = time.monotonic()
    target = f"{host.address}:{host.port}" if host.connection != "local" else "local sh"
    progress = Progress(target)
    deadline_s = opts.deadline_s
    try:
        async with asyncio.timeout(deadline_s):
            if host.connection == "local":
                progress.stage = "running"
                outcome = await run_local(script, opts.output_cap_bytes)
            else:
                outcome = await run_ssh(ctx, host, script, progress)
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


async def collect(
    hosts: Sequence[HostSpec],
    opts: CollectOptions,
    probe_options: Callable[[HostSpec], ProbeOptions],
    on_done: Callable[[RawResult], None] | None = None,
    host_options: Callable[[HostSpec], CollectOptions] | None = None,
) -> list[RawResult]:
    """Probe every host, at most `opts.forks` at a time; results in the order of `hosts`.

    `host_options` gives a host its own time limits and output cap (inventory variables);
    concurrency and the host-key policy stay the run's.
    """
    jobs: list[tuple[str, str]] = []
    for host in hosts:
        popts = probe_options(host)
        jobs.append((build_script(popts), popts.nonce))
    ctx = SshContext(opts)
    slots = asyncio.Semaphore(usable_forks(opts.forks))

    async def one(host: HostSpec, script: str, nonce: str) -> RawResult:
        hopts = host_options(host) if host_options is not None else opts
        async with slots:
            result = await _collect_one(host, script, nonce, hopts, ctx.with_opts(hopts))
        if on_done is not None:
            on_done(result)
        return result

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(h, s, n)) for h, (s, n) in zip(hosts, jobs, strict=True)]
    return [t.result() for t in tasks]
