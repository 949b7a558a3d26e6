"""Why a metric is null when the reason is structural (pure): known from the parse stage.

A null metric is "not computable this run" (METRICS.md), but some nulls say something about
the subject itself: a host with no swap has no swap use to give, a container with no memory
limit no share of it. The parse stage leaves such a metric null (the contract: never a made
up 0) and a sibling metric of the same parse shows why: `mem.total_bytes` read means
/proc/meminfo was, so a null `mem.swap_used_pct` is SwapTotal 0. The rules' UNKNOWN message
gives that reason instead of pointing at notes (`when: "mem.swap_used_pct is not none"`
keeps such a rule to the subjects that have the thing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fleetmon.model.records import MetricValue

_Metrics = Mapping[str, MetricValue]


def _read(evidence: str) -> Callable[[_Metrics], bool]:
    """The sibling `evidence` was computed: its source was read."""
    return lambda m: m.get(evidence) is not None


def _zero(counter: str) -> Callable[[_Metrics], bool]:
    """The sibling `counter` was computed and is 0."""
    return lambda m: m.get(counter) == 0


#: metric -> (whether its null is structural, from the subject's other metrics; the reason).
STRUCTURAL: Mapping[str, tuple[Callable[[_Metrics], bool], str]] = {
    "mem.swap_used_pct": (_read("mem.total_bytes"), "no swap configured"),
    "mem.hugepages_free_pct": (_read("mem.total_bytes"), "no huge pages configured"),
    "ctr.mem_limit_bytes": (_read("ctr.mem_bytes"), "no memory limit"),
    "ctr.mem_limit_pct": (_read("ctr.mem_bytes"), "no memory limit"),
    "disk.r_await_ms": (_zero("disk.reads_per_s"), "no reads"),
    "disk.w_await_ms": (_zero("disk.writes_per_s"), "no writes"),
}


def null_reason(metric: str, metrics: _Metrics, under: _Metrics | None = None) -> str | None:
    """Why `metric` is null on a subject with `metrics` (a row's; `under`: its host's), when
    the reason is structural; None when it is not computable this run."""
    known = STRUCTURAL.get(metric)
    if known is None:
        return None
    holds, reason = known
    if metric in metrics:
        return reason if holds(metrics) else None
    return reason if under is not None and holds(under) else None
