"""`fleetmon serve`'s pages (edge): each tick's report rendered once, whoever asks, and
gzipped once for the clients that take it (Prometheus asks at every scrape)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable

from fleetmon.cli.live import LiveFleet
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


class Holder:
    """The fleet being watched (replaced on SIGHUP) and each tick's rendered pages."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.fleet: LiveFleet | None = None
        self.previous: Report | None = None  # the last report before a reload
        self._pages: dict[str, tuple[Report, bytes, str]] = {}
        self._lock = threading.Lock()

    def report(self) -> Report | None:
        """The latest report; None before the first (every page then answers 503)."""
        fleet = self.fleet
        if fleet is None:
            return self.previous
        if fleet.pairs == 0:
            if self.previous is not None:
                return self.previous  # just reloaded: the old figures until new ones come
            if any(link.state in ("connecting", "live") for link in fleet.links):
                # No tick yet: hosts still connecting are no fleet down to a scrape. Once
                # every host is down, that is the report.
                return None
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
