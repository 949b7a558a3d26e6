"""Cluster runs, the worker's side (I/O): one shard collected and analysed where it runs.

`run_shard` is the Dask task: the same collect stage and `analyse_host` as a local run, on
an event loop of its own in the worker's thread; it returns the analysed host reports (a
few KB a host), never the raw probe output. Key files, known_hosts files and the ssh-agent
are those of the worker's machine: the paths the inventory names are opened there.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.cluster.shards import Shard, ShardHost
from fleetmon.cluster.wire import Packed, pack, unpack
from fleetmon.collect.base import CollectOptions
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import big_output, collect_each, usable_forks
from fleetmon.model import HostReport, HostSpec, RawResult

log = logging.getLogger(__name__)

#: The Dask event topic on which each attempt says where and when it started.
TOPIC = "fleetmon-shard"


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
    started, cpu = time.monotonic(), time.thread_time()
    with lean_gc():
        hosts = asyncio.run(collect_shard(shard))
    elapsed = time.monotonic() - started
    log.debug("shard %s: %d hosts in %.1f s on %s", shard.key, len(hosts), elapsed, address)
    packed = pack(hosts)
    return ShardResult(shard.key, address, packed, elapsed, time.thread_time() - cpu)
