"""`fleetmon run --cluster` (I/O edge): the run's hosts collected and analysed by shards on a
Dask cluster; the client gets their analysed reports back, in inventory order.

The rules, the outputs and the history stay the client's, exactly as in a local run.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

from fleetmon.analyse.pipeline import declared_hypervisor, site_of, vm_of
from fleetmon.cli.clusteropts import SHARD_SIZE
from fleetmon.cli.progress import Progress
from fleetmon.cluster.engine import ShardRunner
from fleetmon.cluster.session import Session
from fleetmon.cluster.shards import Shard, failed_hosts, make_shards
from fleetmon.collect.base import CollectOptions
from fleetmon.collect.probe import ProbeOptions
from fleetmon.history import resolve
from fleetmon.model import HostReport, HostSpec, Status


def with_inventory(report: HostReport, spec: HostSpec) -> HostReport:
    """The report with the host's `fleetmon_vm_of` and `fleetmon_site`, and a host not
    collected its `fleetmon_hypervisor`, as a local run's analyse_host gives them: a shard
    carries no inventory variable, so the worker's report (or a failed shard's) has none
    (an unreachable KVM host's `host_up` lost its `hypervisor="kvm"` label)."""
    linked, site = vm_of(spec), site_of(spec)
    hypervisor = report.hypervisor if report.collected else declared_hypervisor(spec)
    if (report.vm_of, report.site, report.hypervisor) == (linked, site, hypervisor):
        return report
    return dataclasses.replace(report, vm_of=linked, site=site, hypervisor=hypervisor)


def collect_on_cluster(
    args: argparse.Namespace,
    session: Session,
    hosts: Sequence[HostSpec],
    opts: CollectOptions,
    probe_options: Callable[[HostSpec], ProbeOptions],
    host_options: Callable[[HostSpec], CollectOptions],
) -> tuple[list[HostReport], tuple[str, ...]]:
    """Every host's report, in the order of `hosts`, and the run's notes about the cluster
    (where each shard ran, what was retried or failed). The session is closed (in the
    background) once the last shard is in."""
    index = {h.name: i for i, h in enumerate(hosts)}
    out: list[HostReport | None] = [None] * len(hosts)
    progress = Progress([h.name for h in hosts], not args.quiet, slow_after_s=args.interval)

    def on_start(shard: Shard) -> None:
        for name in shard.names:
            progress.start(index[name])

    def on_done(shard: Shard, reports: Sequence[HostReport]) -> None:
        for r in reports:
            i = index[r.name]
            if out[i] is None:  # exactly once, whatever a retry brings back
                out[i] = with_inventory(r, hosts[i])
                progress.done(i, r.collected)

    size = args.shard_size or SHARD_SIZE

    def cut(spread: Callable[[str | None], int] = lambda site: 1) -> list[Shard]:
        shaping = (probe_options, host_options, site_of, size, spread, counters)
        return make_shards(hosts, opts, *shaping)

    # The second sample's counters come back only for a run that records them.
    counters = resolve(args.history) is not None
    notes: list[str] = []
    shards: list[Shard] = []
    runner = ShardRunner(
        None, on_start, on_done, args.shard_timeout, progress.draw, pin_sites=not session.local
    )
    runner.answer_s = session.answer_s()
    try:
        runner.client = session.client()
        # As many shards as workers at least: local:N's N, or those the scheduler has now.
        shards = cut((lambda site: session.workers) if session.local else runner.workers_for)
        runner.run(shards)
    except OSError as exc:
        notes.append(f"--cluster {args.cluster}: {exc}")
        shards = shards or cut()
        for shard in shards:
            on_done(shard, failed_hosts(shard, Status.SHARD_FAILED, str(exc)))
    finally:
        session.close_soon()
        progress.finish()
    for shard in shards:  # none is left out; this only guards that promise
        on_done(shard, failed_hosts(shard, Status.SHARD_FAILED, "the shard never reported"))
    notes = [*_placement(args.cluster, len(shards), runner), *runner.notes, *notes]
    return [r for r in out if r is not None], tuple(notes)


def _placement(cluster: str, count: int, runner: ShardRunner) -> list[str]:
    """One note for the cluster (the workers that ran shards, those that failed too), then
    one per worker that returned shards: which, and its CPU time."""
    by_worker: dict[str, list[str]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    for r in runner.results:
        by_worker[r.worker].append(r.key)
        cpu[r.worker] += r.cpu_s
    workers = len(runner.ran | by_worker.keys())
    notes = [f"cluster {cluster}: {count} shard(s) on {workers} worker(s)"]
    for worker, keys in sorted(by_worker.items()):
        notes.append(f"worker {worker}: shards {', '.join(sorted(keys))} ({cpu[worker]:.1f} s CPU)")
    return notes
