"""The progress line of `fleetmon run` (I/O edge: draws on a terminal): hosts done and failed,
and the hosts still outstanding, slowest first, so one hung host is named while it holds the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO, TypeVar

from fleetmon.render.text import clean

T = TypeVar("T")

#: The line is drawn at most this often (4 times a second), whatever the number of hosts.
REDRAW_S = 0.25
#: How many outstanding hosts are named.
NAMED = 3


def _columns(stream: TextIO) -> int:
    """COLUMNS when set (as shutil.get_terminal_size), else the stream's terminal, else 80
    (also for a terminal that reports 0 columns, as a new pty does)."""
    columns = 0
    with contextlib.suppress(KeyError, ValueError):
        columns = int(os.environ["COLUMNS"])
    if columns <= 0:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            columns = os.get_terminal_size(stream.fileno()).columns
    return columns if columns > 1 else 80


class Progress:
    """One line on stderr, only when it is a terminal: `fleetmon: 180/200 hosts done, 3 failed,
    12.3 s; waiting on kvm07 (12 s), kvm11 (9 s)`.

    `start(i)` and `done(i, ok)` cost a dict operation each; the line is drawn at most every
    REDRAW_S, and `track()` redraws it meanwhile so the seconds of a hung host keep counting.
    A host is named once it has run `slow_after_s` (the probe's interval: no host is faster).
    """

    def __init__(
        self,
        names: Sequence[str],
        enabled: bool,
        *,
        slow_after_s: float = 0.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.names = names
        self.total = len(names)
        self.done_count = 0
        self.failed = 0
        self.slow_after_s = slow_after_s
        self.clock = clock
        self.started = clock()
        #: Outstanding hosts (index -> start time), oldest first: dicts keep insertion order.
        self._running: dict[int, float] = {}
        self._drawn_at = float("-inf")

    def start(self, index: int) -> None:
        """Host `index` got a connection slot and is being collected."""
        if self.enabled:
            self._running[index] = self.clock()

    def done(self, index: int, ok: bool) -> None:
        """Host `index` is done (collected or failed)."""
        self.done_count += 1
        self.failed += 0 if ok else 1
        if self.enabled:
            self._running.pop(index, None)
            self.draw()

    def line(self, now: float, width: int = 1 << 16) -> str:
        """The text of the line at time `now`, naming fewer hosts to fit in `width`."""
        text = (
            f"fleetmon: {self.done_count}/{self.total} hosts done, {self.failed} failed, "
            f"{now - self.started:.1f} s"
        )
        # The oldest outstanding hosts come first in the dict: no sort, no scan of the rest.
        slow = list(
            itertools.islice(
                itertools.takewhile(
                    lambda item: now - item[1] >= self.slow_after_s, self._running.items()
                ),
                NAMED + 1,
            )
        )
        if not slow:
            return text[:width]
        # Host names come from the inventory: escaped as every text printed (render.text).
        names = [f"{clean(self.names[i])} ({now - t:.0f} s)" for i, t in slow[:NAMED]]
        count = len(slow)
        if count > NAMED:
            count = sum(1 for t in self._running.values() if now - t >= self.slow_after_s)
        for shown in range(len(names), 0, -1):
            more = f" and {count - shown} more" if count > shown else ""
            full = f"{text}; waiting on {', '.join(names[:shown])}{more}"
            if len(full) <= width:
                return full
        return f"{text}; waiting on {count} host{'s' if count > 1 else ''}"[:width]

    def draw(self, force: bool = False) -> None:
        """Redraw the line, unless it was drawn less than REDRAW_S ago."""
        now = self.clock()
        if not self.enabled or (not force and now - self._drawn_at < REDRAW_S):
            return
        self._drawn_at = now
        # Never wider than the terminal: a wrapped line would not be erased by the next one.
        self.stream.write("\r\x1b[K" + self.line(now, _columns(self.stream) - 1))
        self.stream.flush()

    async def track(self, work: Awaitable[T]) -> T:
        """Await `work`, redrawing the line every REDRAW_S meanwhile."""
        if not self.enabled:
            return await work

        async def tick() -> None:
            while True:
                await asyncio.sleep(REDRAW_S)
                self.draw()

        ticker = asyncio.ensure_future(tick())
        try:
            return await work
        finally:
            ticker.cancel()
            await asyncio.wait([ticker])

    def finish(self) -> None:
        """Erase the line."""
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
