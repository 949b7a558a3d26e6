"""Cluster runs: the hosts of a run cut into shards, each one Dask task (pure).

A shard holds about SHARD_HOSTS hosts, all of one site (`fleetmon_site`) or all without one;
a site's shards carry the Dask resource `site-NAME`, so only the workers started with
`--resources site-NAME=1` run them. What a shard carries is what its worker needs to probe
its hosts and nothing more: the hosts' settings with their inventory variables left out
(vault-decrypted values stay on the client), their probe and time-limit options. Key files,
known_hosts files and the ssh-agent are named by path and read where the shard runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetmon.collect.base import PASSWORD_VARS, CollectOptions
from fleetmon.collect.probe import ProbeOptions
from fleetmon.inventory.vars import as_written
from fleetmon.model import HostReport, HostSpec, Status

#: Hosts per shard: ~20 s of one worker's CPU (issue 15), few enough tasks for the scheduler.
SHARD_HOSTS = 500
#: Added to a shard's deadline: the worker's start of the task, the analysis of its hosts.
SHARD_MARGIN_S = 30.0


def site_resource(site: str) -> str:
    """The Dask resource a site's workers offer (`dask worker --resources site-NAME=1`)."""
    return f"site-{site}"


@dataclass(frozen=True, slots=True)
class ShardHost:
    """One host as a worker collects it: its connection settings, probe and limits."""

    spec: HostSpec
    probe: ProbeOptions
    opts: CollectOptions


@dataclass(frozen=True, slots=True)
class Shard:
    """One task of a cluster run: hosts of one site (or of none), in the run's order."""

    key: str
    site: str | None
    hosts: tuple[ShardHost, ...]
    #: Concurrency and the host-key policy of the run (CollectOptions.forks...).
    opts: CollectOptions
    #: Whether the hosts come back with their counters (a run recording a history).
    counters: bool = True

    @property
    def resources(self) -> dict[str, float]:
        """What a worker must offer to run this shard."""
        return {} if self.site is None else {site_resource(self.site): 1}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.spec.name for h in self.hosts)

    def deadline_s(self, forks: int | None = None) -> float:
        """How long one attempt may run: every wave of `forks` hosts (the run's, or those its
        worker runs at once) at its slowest host's deadline, plus a margin for starting and
        analysing."""
        waves = math.ceil(len(self.hosts) / max(1, forks or self.opts.forks))
        slowest = max((h.opts.deadline_s for h in self.hosts), default=0.0)
        return waves * slowest + SHARD_MARGIN_S


def shipped_spec(spec: HostSpec) -> HostSpec:
    """The host as a worker needs it: no inventory variable's value (they may hold vault
    secrets: what the worker needs of them is already in the probe and time-limit options);
    its files with `~` as written, the worker's user's home (inventory.vars.as_written).
    A password variable's name alone stays, valued None: a login refused says it is not
    used (sshlogin.denied_reason), as a local run does."""
    named = {v: None for v in PASSWORD_VARS if v in spec.vars}
    return dataclasses.replace(as_written(spec), vars=named)


def make_shards(
    hosts: Sequence[HostSpec],
    opts: CollectOptions,
    probe_options: Callable[[HostSpec], ProbeOptions],
    host_options: Callable[[HostSpec], CollectOptions],
    site_of: Callable[[HostSpec], str | None],
    size: int = SHARD_HOSTS,
    spread: Callable[[str | None], int] = lambda site: 1,
    counters: bool = True,
) -> list[Shard]:
    """The shards of a run: hosts grouped by site (those without one together), each group
    cut into pieces of at most `size` hosts of equal-ish size, in inventory order; into more
    and smaller pieces when `spread(site)` workers can run them (200 hosts on 2 workers are
    2 shards of 100, not 1 of 200 and an idle worker)."""
    if size < 1:
        raise ValueError(f"shard size must be at least 1, got {size}")
    groups: dict[str | None, list[ShardHost]] = {}
    for h in hosts:
        entry = ShardHost(shipped_spec(h), probe_options(h), host_options(h))
        groups.setdefault(site_of(h), []).append(entry)
    shards = []
    for site, members in groups.items():
        per = math.ceil(len(members) / max(math.ceil(len(members) / size), spread(site), 1))
        parts = math.ceil(len(members) / per)
        for n in range(parts):
            chunk = tuple(members[n * per : (n + 1) * per])
            label = f"site-{site}" if site is not None else "any"
            shards.append(Shard(f"{label}/{n + 1}of{parts}", site, chunk, opts, counters))
    return shards


def failed_hosts(shard: Shard, status: Status, reason: str) -> list[HostReport]:
    """The shard's hosts, none collected: `status` with the reason (shard_failed/_timeout)."""
    return [
        HostReport(
            name=h.spec.name,
            address=h.spec.address if h.spec.connection != "local" else "local",
            groups=h.spec.groups,
            status=status,
            error=reason,
        )
        for h in shard.hosts
    ]
