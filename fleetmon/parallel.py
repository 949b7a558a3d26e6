"""Analyse and render stages over forked processes: the same results, on every core.

Parsing and deltas are pure and per host, so big replays (`fleetmon report` of 10,000 hosts)
split them across worker processes; the renderers are independent of each other. An edge
module: it starts processes. Small inputs, one core, or no fork run serially here.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from fleetmon.model import Finding, FleetStat, HostReport, HostSpec, RawResult, Report
from fleetmon.pipeline import analyse_host
from fleetmon.rules import RuleSet, evaluate
from fleetmon.rules.evaluate import groups_of
from fleetmon.rules.hostmatch import Matcher, matcher

#: Below this many hosts a pool costs more (start-up, pickling) than it saves.
MIN_HOSTS = 400
#: Hosts per task: big enough to amortise a round trip, small enough to balance the cores.
CHUNK = 250

#: The raw results of the current call, inherited by forked workers (never pickled: 10,000
#: hosts are 400 MB of probe output).
_RAWS: Sequence[RawResult] = ()
#: The arguments of the current evaluate_many call, inherited the same way.
_EVAL: tuple[Any, ...] = ()
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


#: A finding as plain values: a tuple pickles several times faster than the dataclass.
_FindingTuple = tuple[Any, ...]


def _evaluate_slice(bounds: tuple[int, int]) -> list[tuple[list[_FindingTuple], tuple[str, ...]]]:
    rs, hosts, specs, fleet, resolve, groups = _EVAL
    start, stop = bounds
    done, _ = evaluate(rs, hosts[start:stop], specs, fleet, resolve, all_groups=groups)
    out = []
    for before, after in zip(hosts[start:stop], done, strict=True):
        new = after.findings[len(before.findings) :]
        rows = [
            (f.rule, f.severity, f.scope, f.subject, f.metric, f.value, f.threshold, f.message)
            for f in new
        ]
        out.append((rows, after.notes[len(before.notes) :]))
    return out


def evaluate_many(
    rs: RuleSet,
    hosts: Sequence[HostReport],
    specs: Mapping[str, HostSpec],
    fleet: Mapping[str, FleetStat],
    match: Matcher | None = None,
    workers: int | None = None,
    min_hosts: int = MIN_HOSTS,
    chunk: int = CHUNK,
) -> tuple[tuple[HostReport, ...], tuple[Finding, ...]]:
    """`rules.evaluate` of the whole fleet, its hosts judged in forked processes when worth it.

    Groups and host patterns are resolved over the whole fleet first, as evaluate does, so
    each slice is judged exactly as in one call. An error in a worker (a malformed
    fleetmon_thresholds) is raised by evaluating here, with its own message.
    """
    global _EVAL
    n_workers = default_workers() if workers is None else workers
    fork = "fork" in multiprocessing.get_all_start_methods()
    if n_workers < 2 or len(hosts) < min_hosts or not fork:
        return evaluate(rs, hosts, specs, fleet, match)
    groups = groups_of(hosts, specs)
    resolve = match or matcher([h.name for h in hosts], {g: list(m) for g, m in groups.items()})
    bounds = [(i, min(i + chunk, len(hosts))) for i in range(0, len(hosts), chunk)]
    _EVAL = (rs, hosts, specs, fleet, resolve, groups)
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
            parts = [r for part in pool.map(_evaluate_slice, bounds) for r in part]
    except Exception:  # the worker's exception may not survive pickling: say it from here
        return evaluate(rs, hosts, specs, fleet, match)
    finally:
        _EVAL = ()
    out = [
        dataclasses.replace(
            h,
            findings=(*h.findings, *(Finding(*t) for t in found)),
            notes=(*h.notes, *notes),
        )
        if found or notes
        else h
        for h, (found, notes) in zip(hosts, parts, strict=True)
    ]
    _, fleet_findings = evaluate(rs, (), specs, fleet, resolve, all_groups=groups)
    return tuple(out), fleet_findings
