"""Analyse and render stages over forked processes: the same results, on every core.

Parsing and deltas are pure and per host, so big replays (`fleetmon report` of 10,000 hosts)
split them across worker processes; the renderers are independent of each other. An edge
module: it starts processes. Small inputs, one core, or no fork run serially here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.model import HostReport, RawResult, Report

#: Below this many hosts a pool costs more (start-up, pickling) than it saves.
MIN_HOSTS = 400
#: Hosts per task: big enough to amortise a round trip, small enough to balance the cores.
CHUNK = 250

#: The raw results of the current call, inherited by forked workers (never pickled: 10,000
#: hosts are 400 MB of probe output).
_RAWS: Sequence[RawResult] = ()
#: The report and renderers of the current render_many call, inherited the same way.
_RENDER: tuple[Report | None, Sequence[Callable[[Report], str]]] = (None, ())


def _analyse_slice(bounds: tuple[int, int]) -> list[HostReport]:
    start, stop = bounds
    return [analyse_host(r) for r in _RAWS[start:stop]]


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def analyse_many(
    raws: Sequence[RawResult],
    workers: int | None = None,
    min_hosts: int = MIN_HOSTS,
    chunk: int = CHUNK,
) -> list[HostReport]:
    """`analyse_host` of every raw result, in order, over `workers` processes when worth it."""
    global _RAWS
    n_workers = default_workers() if workers is None else workers
    fork = "fork" in multiprocessing.get_all_start_methods()
    if n_workers < 2 or len(raws) < min_hosts or not fork:
        return [analyse_host(r) for r in raws]
    bounds = [(i, min(i + chunk, len(raws))) for i in range(0, len(raws), chunk)]
    _RAWS = raws
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
            out: list[HostReport] = []
            for part in pool.map(_analyse_slice, bounds):
                out.extend(part)
            return out
    finally:
        _RAWS = ()


def _render_one(index: int) -> str:
    report, renderers = _RENDER
    assert report is not None
    return renderers[index](report)


def render_many(
    report: Report,
    renderers: Sequence[Callable[[Report], str]],
    workers: int | None = None,
    min_hosts: int = MIN_HOSTS,
) -> list[str]:
    """Each renderer's text for `report`, in order; big reports render in forked processes."""
    global _RENDER
    n_workers = min(default_workers() if workers is None else workers, len(renderers))
    fork = "fork" in multiprocessing.get_all_start_methods()
    if n_workers < 2 or len(report.hosts) < min_hosts or not fork:
        return [fn(report) for fn in renderers]
    _RENDER = (report, renderers)
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
            # Only the texts come back through the pipe; the report is inherited, not sent.
            return list(pool.map(_render_one, range(len(renderers))))
    finally:
        _RENDER = (None, ())
