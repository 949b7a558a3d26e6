"""Analysis of many hosts as picklable tasks on an executor given by the caller (pure).

The executor comes from outside: a ProcessPoolExecutor from the command line, a thread pool
in tests, a Dask cluster's `client.get_executor()`. This module only submits
`analyse_chunk(raws)` tasks and hands their results back in input order; with no executor,
the hosts are analysed here, one after the other.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import ParamSpec, Protocol, TypeVar

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.model import HostReport, RawResult

#: Hosts per task: big enough to amortise a round trip, small enough to balance the cores.
CHUNK = 250
#: Tasks in flight at once (analyse_iter): the raw text held is bounded by AHEAD * CHUNK hosts.
AHEAD = 8

_P = ParamSpec("_P")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)


class Future(Protocol[_R_co]):
    """What is used of a submitted task: concurrent.futures.Future's result and cancel."""

    def result(self, timeout: float | None = None) -> _R_co: ...

    def cancel(self) -> bool: ...


class Executor(Protocol):
    """What is used of an executor: concurrent.futures.Executor.submit.

    Any `concurrent.futures.Executor` fits (process or thread pools, Dask's
    `Client.get_executor()`); the task and its argument must pickle for a process or cluster.
    """

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_R]: ...


def analyse_chunk(raws: Sequence[RawResult]) -> list[HostReport]:
    """`analyse_host` of each raw result, in order: one task (picklable in and out)."""
    return [analyse_host(r) for r in raws]


def analyse_many(
    raws: Sequence[RawResult], executor: Executor | None = None, chunk: int = CHUNK
) -> list[HostReport]:
    """`analyse_host` of every raw result, in order: on `executor` in tasks of `chunk` hosts
    (all submitted at once), or here when it is None."""
    return list(analyse_iter(raws, executor, chunk, ahead=max(1, -(-len(raws) // chunk))))


def analyse_iter(
    raws: Iterable[RawResult],
    executor: Executor | None = None,
    chunk: int = CHUNK,
    ahead: int = AHEAD,
) -> Iterator[HostReport]:
    """`analyse_host` of each raw result as `raws` is read, in order: on `executor` in tasks of
    `chunk` hosts, at most `ahead` of them in flight, or here when it is None.

    A task's error is raised here, in its turn; the tasks not yet done are then cancelled.
    """
    if chunk < 1 or ahead < 1:
        raise ValueError(f"chunk and ahead must be at least 1 (got {chunk}, {ahead})")
    if executor is None:
        yield from map(analyse_host, raws)
        return
    it = iter(raws)
    pending: deque[Future[list[HostReport]]] = deque()
    try:
        while True:
            while len(pending) < ahead and (part := list(itertools.islice(it, chunk))):
                pending.append(executor.submit(analyse_chunk, part))
            if not pending:
                return
            # The oldest first: results leave in input order while later tasks run.
            yield from pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
