"""Cluster runs, the worker's side (I/O): one shard collected and analysed where it runs.

`run_shard` is what the Dask task runs (entry.py): the same collect stage and
`analyse_host` as a local run, on an event loop of its own in the worker's thread; it
returns the analysed host reports (a few KB a host), never the raw probe output, each
naming the worker that collected it (`collected_by`; a failure's reason too). Key
files, known_hosts files and the ssh-agent are those of the worker's machine: the paths
the inventory names are opened there.

A running shard stops (its probes cancelled, their connections closed) once its task is no
longer wanted: Dask cannot stop a task's thread, and a client interrupted (Ctrl-C) or gone,
or an attempt the client gave up on (past its deadline, its retry elsewhere), left the
worker probing for the rest of the interval, holding its thread from the next run's shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.cluster.shards import Shard, ShardHost
from fleetmon.cluster.wire import MISMATCH, Packed, WireError, pack, unpack
from fleetmon.collect.base import CollectOptions
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import big_output, collect_each, usable_forks
from fleetmon.model import HostReport, HostSpec, RawResult

log = logging.getLogger(__name__)

#: The Dask event topic on which each attempt says where and when it started.
TOPIC = "fleetmon-shard"
#: How often a running shard looks whether its task is still wanted (a dict lookup).
WATCH_S = 0.5

T = TypeVar("T")


class Unwanted(Exception):
    """The shard's task was released (its client gone, or the attempt given up) mid-run."""


@dataclass(frozen=True, slots=True)
class ShardResult:
    """What a shard's task returns: its hosts analysed (packed: wire.py), where it ran, what
    it cost there."""

    key: str
    worker: str
    packed: Packed
    elapsed_s: float
    cpu_s: float

    @property
    def hosts(self) -> list[HostReport]:
        """The analysed hosts, in the shard's order (WireError from another fleetmon)."""
        return unpack(self.packed)


_RESULT_TYPES = {"key": str, "worker": str, "packed": tuple, "elapsed_s": float, "cpu_s": float}


def checked(result: object) -> ShardResult:
    """`result` when it is this fleetmon's ShardResult; WireError when a worker's fleetmon
    has other fields (its result loads here with fields missing or shifted, and the run
    ended on an internal error: "'ShardResult' object has no attribute 'cpu_s'")."""
    fields = {f: getattr(result, f, None) for f in _RESULT_TYPES}
    if not isinstance(result, ShardResult) or not all(
        isinstance(v, _RESULT_TYPES[f]) for f, v in fields.items()
    ):
        raise WireError(MISMATCH)
    return result


def _worker() -> str:
    """This worker's address, after telling the client the attempt started (or "in-process"
    outside a Dask worker)."""
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - the task only runs where Dask is
        return "in-process"
    try:
        worker = get_worker()
    except ValueError:  # called directly, not as a task
        return "in-process"
    return str(worker.address)


def worker_label(address: str) -> str:
    """Who collects the shard's hosts, as an operator finds it: the worker's address, its
    `--name` (kept when its nanny restarts it at another address) and its machine's host
    name: `tcp://10.1.0.7:40213 (paris-1 on node7)`; `(node7)` without a name of its own."""
    name = None
    if address != "in-process":
        from distributed import get_worker

        name = str(get_worker().name)
    machine = socket.gethostname()
    return (
        f"{address} ({name} on {machine})" if name and name != address else f"{address} ({machine})"
    )


def announce(key: str, attempt: int, forks: int) -> str:
    """Log the attempt's start on the scheduler's event log (the client's deadline starts
    then, not while the task waits for a free worker, and counts the `forks` this worker
    runs at once); the worker's address."""
    address = _worker()
    if address != "in-process":
        from distributed import get_worker

        worker = get_worker()
        # Every run on the scheduler hears every start: the task's own key (which names
        # the run) tells a run its own shards' from another's of the same shard key.
        task = str(worker.get_current_task())
        msg = {"key": key, "attempt": attempt, "worker": address, "task": task, "forks": forks}
        worker.log_event(TOPIC, msg)
    return address


def still_wanted() -> Callable[[], bool]:
    """Whether the running task is still wanted: false once the scheduler has released it
    (the worker then keeps its state as "cancelled" until the task returns:
    distributed.worker_state_machine, _transition_executing_released). Always true
    outside a Dask worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # called directly, not as a task
        return lambda: True
    key = worker.get_current_task()
    tasks = worker.state.tasks  # the worker's event loop changes it: one lookup is atomic

    def wanted() -> bool:
        ts = tasks.get(key)
        return ts is not None and ts.state != "cancelled"

    return wanted


async def while_wanted(
    work: Coroutine[Any, Any, T], wanted: Callable[[], bool], every_s: float = WATCH_S
) -> T:
    """What `work` returns; cancelled (its probes' connections closed) and Unwanted raised
    as soon as `wanted()`, asked every `every_s`, is false."""
    job = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({job}, timeout=every_s)
        if done:
            return job.result()
        if not wanted():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            raise Unwanted("the shard's task was released mid-run: its probes were stopped")


async def collect_shard(shard: Shard) -> list[HostReport]:
    """Probe the shard's hosts at most `forks` at a time, each analysed as it answers."""
    by_name: dict[str, ShardHost] = {h.spec.name: h for h in shard.hosts}

    def probe(spec: HostSpec) -> ProbeOptions:
        return by_name[spec.name].probe

    def limits(spec: HostSpec) -> CollectOptions:
        return by_name[spec.name].opts

    def done(_: int, raw: RawResult) -> HostReport:
        return analyse_host(raw, shard.counters)

    specs = [h.spec for h in shard.hosts]
    return await collect_each(
        specs, shard.opts, probe, done, host_options=limits, offload=big_output
    )


_gc_lock = threading.Lock()
_gc_users = 0
_gc_threshold = gc.get_threshold()


@contextlib.contextmanager
def lean_gc() -> Iterator[None]:
    """Fewer, cheaper garbage collections while shards run, as a local run has them
    (cli.common.lean_gc): what the worker holds is frozen, and a host's many short-lived
    objects are collected in fewer passes. Restored when the worker's last shard ends (a
    worker started with --nthreads 2 runs two at once)."""
    global _gc_users, _gc_threshold
    with _gc_lock:
        if _gc_users == 0:
            _gc_threshold = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(10_000, 10, 10)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_threshold)
                gc.unfreeze()


def run_shard(shard: Shard, attempt: int = 1) -> ShardResult:
    """The Dask task of one shard: collect and analyse its hosts; their reports in order."""
    # What this worker's open-file limit allows: fewer than the client's --forks, more waves.
    forks = usable_forks(shard.opts.forks, [h.spec for h in shard.hosts])
    address = announce(shard.key, attempt, forks)
    wanted = still_wanted()
    started, cpu = time.monotonic(), time.thread_time()
    with lean_gc():
        hosts = asyncio.run(while_wanted(collect_shard(shard), wanted))
    elapsed = time.monotonic() - started
    log.debug("shard %s: %d hosts in %.1f s on %s", shard.key, len(hosts), elapsed, address)
    packed = pack(hosts, worker_label(address))
    return ShardResult(shard.key, address, packed, elapsed, time.thread_time() - cpu)
