"""`fleetmon serve`'s pages (edge): each tick's report rendered once, whoever asks, and
gzipped once for the clients that take it (Prometheus asks at every scrape)."""

from __future__ import annotations

import gzip
import threading
import time
from collections import Counter
from collections.abc import Callable

from fleetmon.cli.live import LiveFleet, stale_after_s
from fleetmon.model import Report

#: gzip level of the pages (Prometheus asks for gzip at every scrape): level 1 makes a
#: simulated fleet's /metrics 8x smaller for ~3 ms of CPU a MB; level 6, 11.6x for ~7 ms.
GZIP_LEVEL = 1


def _qvalue(params: list[str]) -> float:
    """An Accept-Encoding item's q among its parameters (1 without one; 0 when unreadable:
    not sending gzip is always safe)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0 <= q <= 1 else 0.0
    return 1.0


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (RFC 9110 12.5.3: `gzip` or `x-gzip`,
    else `*`, with a q above 0; q may follow other parameters; a coding named beats `*`)."""
    named: float | None = None
    star: float | None = None
    for item in header.lower().split(","):
        coding, *params = item.split(";")
        coding = coding.strip()
        if coding in ("gzip", "x-gzip"):
            named = max(named or 0.0, _qvalue(params))
        elif coding == "*":
            star = _qvalue(params)
    q = named if named is not None else star
    return q is not None and q > 0


def waiting(fleet: LiveFleet) -> bool:
    """No pair of samples analysed yet, and some host still on its first try (connecting,
    or connected and waiting for its first two samples): the first tick is on its way. A
    host retrying after a failure is not waited for (its retries would make every page
    flap between its report and 503 while every host is down)."""
    return fleet.pairs == 0 and any(
        link.state in ("connecting", "live") and link.status is None for link in fleet.links
    )


def health(fleet: LiveFleet, delay_s: float) -> tuple[bool, str]:
    """/healthz: whether samples come (a host live, the last pair recent) and its line: how
    long ago, the hosts live and the others by status, the samples analysed and passed
    over. From the hosts' latest pairs, not the report: its rules judge every host, which a
    probe every few seconds would pay for each time."""
    hosts = fleet.host_reports()
    live = sum(1 for h in hosts if h.collected)
    others = Counter(h.status.value for h in hosts if not h.collected)
    counts = f"{live}/{len(hosts)} hosts live"
    if others:
        why = ", ".join(f"{status} {n}" for status, n in sorted(others.items()))
        counts += f"; not live: {why}"
    last = fleet.last_pair_mono
    age = None if last is None else time.monotonic() - last
    when = "no sample yet" if age is None else f"last sample {age:.1f} s ago"
    passed = sum(link.passed for link in fleet.links)  # the client fell behind
    text = f"{when}; {counts}; {fleet.pairs} samples analysed; {passed} passed over\n"
    if live == 0:
        return False, f"down: no host live: {text}"
    if age is None or age > stale_after_s(delay_s):
        return False, f"stale: {text}"
    return True, f"ok: {text}"


class Holder:
    """The fleet being watched (replaced on SIGHUP) and each tick's rendered pages."""

    def __init__(self, delay_s: float, *, groups: bool = False) -> None:
        self.delay_s = delay_s
        self.groups = groups  # --export-groups: /metrics labelled with the hosts' groups
        self.fleet: LiveFleet | None = None
        self.previous: Report | None = None  # the last report before a reload
        self._pages: dict[str, tuple[Report, bytes, str]] = {}
        self._lock = threading.Lock()
        # One lock a page: the clients asking for it while it is rendered wait for that
        # rendering instead of each rendering it too (a tick's first requests arrive together).
        self._making: dict[str, threading.Lock] = {}

    def report(self) -> Report | None:
        """The latest report; None before the first (every page then answers 503)."""
        fleet = self.fleet
        if fleet is None:
            return self.previous
        if waiting(fleet):
            # Just reloaded: the old figures until new ones come. No tick yet: hosts still
            # on their first try are no fleet down to a scrape. Once every host has failed
            # (retrying or not), that is the report: the one before a reload was served for
            # ever when no host of the new fleet gave a pair (host_up 1, frozen figures).
            return self.previous
        return fleet.snapshot()

    def page(
        self,
        name: str,
        report: Report,
        make: Callable[[Report], tuple[str, str]],
        gzipped: bool = False,
    ) -> bytes:
        """The page rendered from this tick's report (once per tick, whoever asks);
        `gzipped`: compressed, also once per tick."""
        key = name + ".gz" if gzipped else name
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                kept = self._pages.get(key)
                if kept is not None and kept[0] is report:
                    return kept[1]
            if gzipped:
                data = gzip.compress(self.page(name, report, make), GZIP_LEVEL, mtime=0)
            else:
                data = make(report)[0].encode()
            with self._lock:
                self._pages[key] = (report, data, "")
            return data
