"""The live modes' fleet (I/O edge): the streaming collector's pairs analysed as they arrive,
each host's connection state, and the report of the latest tick for `top` and `serve`.

The collector runs on an event loop (its own thread for `top`); the views read `snapshot()`,
an immutable Report built from the latest samples at most once per tick, when a view asks
for it (the rules cost CPU: a scrape every 15 s judges the fleet every 15 s, not every tick),
so a view never waits for SSH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import gc
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetmon import __version__
from fleetmon.analyse.pipeline import analyse_host, analyse_output, host_base, host_key_notes
from fleetmon.cli.common import build_report, rule_set
from fleetmon.cli.run import host_collect_options, probe_options
from fleetmon.cli.runtime import utc_now
from fleetmon.cli.sources import (
    Opened,
    in_selection_order,
    open_inventory,
    plan,
    skip_unreadable_keys,
    warn,
)
from fleetmon.collect.base import CollectOptions
from fleetmon.collect.stream import Link, StreamCollector
from fleetmon.errors import OptionError
from fleetmon.inventory import Inventory
from fleetmon.model import HostReport, HostSpec, RawResult, Report, RunInfo, Status
from fleetmon.rules import RuleSet
from fleetmon.rules.overrides import check_overrides
from fleetmon.sources.sections import ProbeOutput


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stale_after_s(delay_s: float) -> float:
    """Seconds without a sample after which a host's figures, or the whole fleet's
    (/healthz), are stale: three ticks and 5 s, room for a slow probe command's tick."""
    return 3 * delay_s + 5


def link_words(link: Link, now: float) -> str:
    """A host without a current sample, in words: what failed, since when, the next try."""
    since = f"since {_iso(link.since)}"
    if link.state == "stopped":
        return f"{link.reason} (stopped {since})"
    if link.state == "down":
        retry = "" if link.retry_at is None else f"; retry in {max(0.0, link.retry_at - now):.0f} s"
        return f"{link.reason} (down {since}{retry})"
    # A retry keeps its failure's status (LiveFleet.host_reports), counted as down in
    # render/top's title; a first try is SKIPPED, worded as its WAITING_WORDS count it.
    if link.status is not None:
        return f"reconnecting {since} (last failure: {link.reason})"
    return f"connecting {since}: the first rates come with the second sample"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a live mode watches: the hosts streamed, those skipped, the rules."""

    inventory: Inventory
    hosts: tuple[HostSpec, ...]
    skipped: tuple[RawResult, ...]
    selected: tuple[HostSpec, ...]
    rules: RuleSet | None
    rule_files: tuple[str, ...]


def load_plan(args: argparse.Namespace) -> Plan:
    """Inventory, --limit, the hosts' connection plans and the rules (at start and on SIGHUP)."""
    opened: Opened = open_inventory(args)
    inventory = opened.inventory
    selected = inventory.select(args.limit, warn=warn)
    if not selected:
        raise OptionError(f"{inventory.path}: the inventory has no hosts to watch")
    hosts, skipped = skip_unreadable_keys(inventory, *plan(opened, selected, args.delay))
    rules, files = rule_set(args)
    if rules is not None:
        check_overrides(rules, hosts, inventory.origin)
    return Plan(inventory, tuple(hosts), tuple(skipped), tuple(selected), rules, files)


def collect_options(args: argparse.Namespace) -> CollectOptions:
    """The collection settings of a live mode: its tick is the probe's interval."""
    return CollectOptions(
        interval_s=args.delay,
        forks=args.forks,
        connect_timeout_s=args.connect_timeout,
        timeout_s=args.timeout,
        accept_new_host_keys=args.accept_new_host_keys,
        known_hosts=args.known_hosts,
        output_cap_bytes=args.output_cap,
    )


class LiveFleet:
    """Each host's latest analysed pair (or its connection state) and the latest report."""

    def __init__(self, args: argparse.Namespace, p: Plan, seed: LiveFleet | None = None) -> None:
        self.args = args
        self.plan = p
        self.links: list[Link] = [Link(h) for h in p.hosts]
        self.latest: list[HostReport | None] = [None] * len(p.hosts)
        # The hypervisor each host's probe last found: a host that drops keeps it on its
        # host_up, as it keeps its name (host_base gives only what the inventory declares).
        self.seen_hv: list[str | None] = [None] * len(p.hosts)
        # When each host's latest pair was analysed (Unix time), and its tick as its
        # connection before a reload had it (Link.tick_s).
        self.pair_at: list[float] = [0.0] * len(p.hosts)
        self.tick_s: list[float] = [0.0] * len(p.hosts)
        if seed is not None:
            # A reload: a host whose connection settings did not change shows its last
            # figures while it reconnects, so a scrape in between loses no series.
            old = {h.name: i for i, h in enumerate(seed.plan.hosts)}
            for i, h in enumerate(p.hosts):
                j = old.get(h.name)
                if j is not None and seed.plan.hosts[j] == h:
                    self.latest[i], self.seen_hv[i] = seed.latest[j], seed.seen_hv[j]
                    self.pair_at[i], self.tick_s[i] = seed.pair_at[j], seed.links[j].tick_s
        self._skipped = [analyse_host(r) for r in p.skipped]
        self._specs = {h.name: h for h in [*p.hosts, *(r.host for r in p.skipped)]}
        self._report: Report | None = None
        self.ticks = 0  # reports built
        self._built_mono = 0.0
        self.pairs = 0  # pairs of samples analysed, all hosts together
        # When the last pair was analysed. A reload keeps the fleet's: /healthz stays ok
        # while the hosts reconnect, as the pages keep the figures before it.
        self.last_pair_mono: float | None = seed.last_pair_mono if seed is not None else None
        self.lock = threading.Lock()
        self.collector: StreamCollector | None = None  # while run_live streams

    def stop_soon(self) -> None:
        """Stop analysing at once, ahead of the event loop's stop (StreamCollector.stop_soon):
        from a signal handler or the screen's thread."""
        if self.collector is not None:
            self.collector.stop_soon()

    def on_pair(self, i: int, out: ProbeOutput) -> None:
        """A host's newest pair of samples, analysed as `fleetmon run` would."""
        spec = self.plan.hosts[i]
        base = host_base(spec, Status.OK, None, spec.address)
        rep = self.latest[i] = analyse_output(base, out, counters=False)  # no history
        self.seen_hv[i] = rep.hypervisor
        self.pair_at[i] = time.time()
        self.pairs += 1
        self.last_pair_mono = time.monotonic()

    def on_change(self, i: int, link: Link) -> None:
        """A host's connection changed state: a dropped host loses its figures."""
        self.links[i] = link
        if link.state in ("down", "stopped"):
            self.latest[i] = None

    def host_reports(self) -> list[HostReport]:
        """Every host as of now: its latest analysed pair, or its state in words."""
        now = time.time()
        out: list[HostReport] = []
        hosts = zip(self.plan.hosts, self.links, self.latest, self.seen_hv, self.pair_at,
                    self.tick_s, strict=True)  # fmt: skip
        for spec, link, rep, hv, pair_at, seeded_tick_s in hosts:
            if rep is not None and link.state in ("live", "connecting"):
                # A host sending no sample (hung, its network gone) is no longer shown with
                # its last figures: until its deadline (--timeout, 30 s past the interval)
                # they were exported as current, a frozen value on every scrape, host_up 1.
                # Counted in its own ticks when they are longer (a slow virsh): no flapping.
                since = max(pair_at, link.last_tick_at or 0.0)
                tick_s = max(self.args.delay, link.tick_s, seeded_tick_s)
                if now - since <= stale_after_s(tick_s):
                    out.append(rep)
                    continue
                words = f"no sample for {now - since:.0f} s (stalled since {_iso(since)})"
                base = host_base(spec, Status.TIMEOUT, words, spec.address)
                out.append(base if hv is None else dataclasses.replace(base, hypervisor=hv))
                continue
            # A host retrying after a failure keeps that failure's status between its tries
            # (link.status, kept until a pair comes): as `skipped` during each try, its
            # host_up series and fleetmon_hosts{status} flapped at every retry. SKIPPED is
            # for a host on its first try (waiting) and those the inventory skips.
            status = link.status or Status.SKIPPED
            base = host_base(spec, status, link_words(link, now), spec.address)
            out.append(base if hv is None else dataclasses.replace(base, hypervisor=hv))
        return in_selection_order(list(self.plan.selected), [*out, *self._skipped])

    def refresh(self) -> Report:
        """The report of the latest samples (rules judged, exit code), kept for snapshot()."""
        run = RunInfo(
            fleetmon_version=__version__,
            started_at=utc_now(),
            interval_s=self.args.delay,
            inventory=self.plan.inventory.path,
            rule_files=self.plan.rule_files,
            limit=self.args.limit,
            host_key_notes=host_key_notes(self.plan.hosts, self.args.accept_new_host_keys),
        )
        report = build_report(
            self.args, self.host_reports(), self._specs, run, self.plan.rules, self.plan.inventory
        )
        self._report = report
        self.ticks += 1
        self._built_mono = time.monotonic()
        return report

    def snapshot(self) -> Report:
        """The report of the latest samples: the one built this tick, else a new one."""
        with self.lock:
            fresh = time.monotonic() - self._built_mono < self.args.delay
            if self._report is None or not fresh:
                return self.refresh()
            return self._report

    def kept(self) -> Report | None:
        """The last report built, without building one (None before the first)."""
        return self._report

    def links_snapshot(self) -> list[Link]:
        """Copies of the hosts' connection states."""
        return [dataclasses.replace(link) for link in self.links]


#: The live modes' first garbage-collection threshold (net new container objects). Each
#: pair's analysis holds tens of thousands at once, nearly all freed by their reference
#: counts when it ends; at Python's 700, collections ran in the middle of analyses and
#: walked them all (a fifth of serve's CPU at 300 hosts). Cycles are rare here: a few a tick.
LIVE_GC_THRESHOLD = (100_000, 20, 100)


@contextlib.contextmanager
def _live_gc() -> Iterator[None]:
    """Fewer garbage collections while streaming, restored after: what the start made
    (modules, inventory, plan) frozen, collections every LIVE_GC_THRESHOLD objects.

    Collected first: garbage frozen is never freed, and at serve's SIGHUP the plan before
    (its rules' compiled templates, in cycles) was garbage not yet collected: frozen at
    every reload, 440 KB each."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*LIVE_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def run_live(
    fleet: LiveFleet,
    stop: asyncio.Event,
    on_tick: Callable[[Report], None] | None = None,
) -> None:
    """Stream every host of the fleet's plan until `stop` is set; with `on_tick`, a report
    is built and handed to it once per tick."""
    with _live_gc():
        await _stream_fleet(fleet, stop, on_tick)


async def _stream_fleet(
    fleet: LiveFleet, stop: asyncio.Event, on_tick: Callable[[Report], None] | None
) -> None:
    args, p = fleet.args, fleet.plan
    opts = collect_options(args)
    collector = StreamCollector(
        p.hosts,
        opts,
        lambda spec: probe_options(args.delay, spec),
        fleet.on_pair,
        fleet.on_change,
        host_options=functools.partial(host_collect_options, opts),
    )
    fleet.links = collector.links
    fleet.collector = collector
    task = asyncio.ensure_future(collector.run())
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.delay)
            if on_tick is not None:
                on_tick(fleet.snapshot())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
