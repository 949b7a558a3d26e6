"""Collect stage, streaming (I/O): one connection per host kept open, the looping probe on it,
and each pair of consecutive samples handed on as the second one arrives.

A host that drops is retried with exponential backoff and jitter (starting again once a pair
has come), its state and since-when kept for the views; a changed host key stops that host
for good (never re-accepted). Memory per host is bounded: the last sample, the once-per-run
sections, at most one tick of text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from fleetmon.collect.base import CHUNK_BYTES, CollectOptions, HostFailure
from fleetmon.collect.probe import ProbeOptions, build_stream_script
from fleetmon.collect.runner import fd_room, forks_within, watchable
from fleetmon.collect.ssh import Progress, SshContext
from fleetmon.collect.streamopen import STREAM_OPENERS, Reader
from fleetmon.errors import ProbeParseError
from fleetmon.model import HostSpec, Status
from fleetmon.sources.sections import (
    ProbeOutput,
    Section,
    keep_for_next,
    marker,
    pair_output,
    split_output,
    split_tick,
    tick_end_re,
)
from fleetmon.sources.uptime import uptime_went_back

log = logging.getLogger(__name__)

#: The first retry after a failure waits about this long; each further one twice as long.
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
#: A host that refused our key is retried far more slowly: each retry is one more failed
#: login in its sshd log, and fail2ban's sshd jail bans an address after 5 failures within
#: 10 minutes (maxretry, findtime). From 60 s doubling to 15 min, jittered upwards only,
#: there are at most 4 tries in any 10 minutes; SIGHUP (serve) or a restart tries at once.
AUTH_BACKOFF_FIRST_S = 60.0
AUTH_BACKOFF_MAX_S = 900.0
#: Pairs the analyser takes in one step of the event loop before letting the I/O in.
ANALYSE_BATCH = 4


def backoff_s(failures: int, rng: random.Random) -> float:
    """The wait before retry number `failures` (1, 2...): BACKOFF_FIRST_S doubled each time up
    to BACKOFF_MAX_S, the second half of it random ("equal jitter"), so that a fleet
    dropped by one network blip does not reconnect all at once."""
    base = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** max(0, failures - 1))
    return base / 2 + rng.uniform(0.0, base / 2)


def auth_backoff_s(failures: int, rng: random.Random) -> float:
    """The wait before retry number `failures` of a host that refused authentication:
    AUTH_BACKOFF_FIRST_S doubled each time up to AUTH_BACKOFF_MAX_S, plus up to a quarter
    more at random (never less: the spacing is what keeps fail2ban's count down)."""
    base = min(AUTH_BACKOFF_MAX_S, AUTH_BACKOFF_FIRST_S * 2.0 ** max(0, failures - 1))
    return base + rng.uniform(0.0, base / 4)


#: The states between which an outage's retries go: live too, connected again with no pair
#: of samples yet (a host whose loop ends after one sample never gets further).
_OUTAGE = frozenset({"down", "connecting", "live"})


@dataclass(slots=True)
class Link:
    """One host's connection as the views show it: its state and since when (Unix time)."""

    spec: HostSpec
    #: "connecting", "live" (ticks arrive), "down" (waiting to retry), "stopped" (for good).
    state: str = "connecting"
    since: float = field(default_factory=time.time)
    #: The last failure: its status and reason (kept while live again, for the views).
    status: Status | None = None
    reason: str | None = None
    ticks: int = 0
    #: Ticks not analysed because a newer one had arrived first (_ticks, _queue).
    passed: int = 0
    #: Ticks whose uptime was not after the tick before (clock back): no pair with it.
    went_back: int = 0
    failures: int = 0
    retry_at: float | None = None
    last_tick_at: float | None = None
    #: Seconds between this connection's last two ticks (0 before its second): a host's own
    #: tick, longer than the interval where a probe command is slow.
    tick_s: float = 0.0

    def enter(self, state: str, status: Status | None = None, reason: str | None = None) -> None:
        """Move to `state`. The since-when changes with the state, but not between the
        retries of one outage (down, connecting, live without a pair, down...), which lasts
        from a failure to the next pair (`failures` counts its tries): it says since when the
        host has been down, not since its last retry nor its last short-lived connection."""
        if state != self.state:
            retrying = {state, self.state} <= _OUTAGE and self.failures > 0
            self.state = state
            if not retrying:
                self.since = time.time()
        if status is not None:
            self.status, self.reason = status, reason


def _went_back(first: Mapping[str, Section], second: Mapping[str, Section]) -> bool:
    """Whether `second`'s uptime is not after `first`'s (sources/uptime.py)."""
    a, b = first.get("uptime"), second.get("uptime")
    return a is not None and b is not None and uptime_went_back(a.text, b.text)


def _no_tick(buf: bytearray, nonce: str) -> None:
    """A stream that ended before its first tick, having sent bytes: where they are not the
    probe's (a login banner, a forced command's message, garbage), the host's reason is
    `fleetmon run`'s (no probe sections in the output), not a bare end of the loop."""
    if marker(nonce).encode() in buf:
        return  # the probe's own output, cut short: the end of the loop says it
    try:
        split_output(buf.decode("utf-8", "replace"), nonce)
    except ProbeParseError as exc:
        raise HostFailure(Status.PARSE_ERROR, f"parse error: {exc}") from None


async def _tick_end(
    read: Reader, buf: bytearray, end_re: re.Pattern[bytes], cap: int
) -> re.Match[bytes] | None:
    """Read into `buf` until it holds a tick's end marker (its match), or the stream ends
    (None); HostFailure when a sample outgrows the output cap."""
    m = end_re.search(buf)
    while m is None:
        chunk = await read(CHUNK_BYTES)
        if not chunk:
            return None
        # A marker line (and the newline before it) may straddle two chunks.
        start = max(0, len(buf) - 200)
        buf += chunk
        if len(buf) > cap:
            raise HostFailure(Status.COMMAND_FAILED, f"one sample exceeded the {cap} byte cap")
        m = end_re.search(buf, start)
    return m


def stalled_reason(buf: bytearray, nonce: str, deadline_s: float) -> str:
    """Why no sample came within the deadline, from what came since the last one (`buf`):
    nothing (a hung host or network), a sample of this run begun but not ended (a probe
    command stuck: the last section begun named), or bytes with no marker of this run at
    all (garbage, or another run's frames). All three read "no complete sample" before,
    which sent one looking for a hung host when the host was talking nonsense."""
    within = f"within {deadline_s:g} s"
    if not buf:
        return f"no output {within}"
    begun_re = re.compile(
        re.escape(marker(nonce).encode()) + rb" begin ([0-9]{1,9}) ([a-z_0-9]+)\n"
    )
    begun = begun_re.findall(buf)
    if begun:
        sample, section = begun[-1]
        return (
            f"sample {int(sample)} stopped in or after its section {section.decode()}:"
            f" {len(buf)} bytes without its end marker {within} (a probe command hung?)"
        )
    other = " or another run's frames" if b"@@fleetmon-" in buf else ""
    return f"{len(buf)} bytes without a sample's end marker {within} (garbled output{other}?)"


class StreamCollector:
    """Every host's looping probe, concurrently, until cancelled.

    `on_pair(index, output)` gets each pair of consecutive samples of host `hosts[index]` as
    a two-sample ProbeOutput (the analysis of `fleetmon run` applies to it unchanged);
    `on_change(index, link)` each change of a host's state. Both run on the event loop.
    `host_options(spec)` gives a host's own collection settings (its inventory's
    fleetmon_connect_timeout, fleetmon_timeout, fleetmon_output_cap); default: `opts`.
    """

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        opts: CollectOptions,
        probe_options: Callable[[HostSpec], ProbeOptions],
        on_pair: Callable[[int, ProbeOutput], None],
        on_change: Callable[[int, Link], None] | None = None,
        rng: random.Random | None = None,
        host_options: Callable[[HostSpec], CollectOptions] | None = None,
    ) -> None:
        self.hosts = tuple(hosts)
        self.opts = opts
        # Each host's own settings (fleetmon_connect_timeout...), as `fleetmon run` has them.
        self.host_opts = [host_options(h) if host_options else opts for h in self.hosts]
        self.probe_options = probe_options
        self.on_pair = on_pair
        self.on_change = on_change
        self.links = [Link(h) for h in self.hosts]
        self.rng = rng or random.Random()
        self.ctx = SshContext(opts)
        # Connections are made `forks` at a time; once streaming, a host holds no slot.
        room = fd_room(self.hosts)  # the open-file limit, read (and raised) once
        self._slots = asyncio.Semaphore(forks_within(opts.forks, room))
        # Those past the open-file limit are not watched (each would fail, EMFILE turning
        # up as whatever asyncssh was opening: the passwd file, "unknown local username").
        self.watched, self._unwatched_reason = watchable(len(self.hosts), room)
        #: Set by stop_soon(): no more pairs are analysed, each host's stream ends.
        self.stopping = False
        #: Each host's newest pair not analysed yet, oldest first (the analyser's queue): a
        #: newer pair replaces a waiting one, so it holds at most one per host.
        self._pending: dict[int, ProbeOutput] = {}
        self._queued = asyncio.Event()

    def stop_soon(self) -> None:
        """Stop analysing and end every stream at its next step: safe from a signal handler
        or another thread (one attribute written). A saturated client runs every host's
        backlog in one step of the event loop, which then takes seconds; this makes those
        steps short, so that the cancellation that follows is prompt."""
        self.stopping = True

    async def run(self) -> None:
        """Stream from every host until cancelled (or every host stopped for good)."""
        analyser = asyncio.ensure_future(self._analyser())
        self._unwatched()
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.watched):
                    tg.create_task(self._host(i))
        finally:
            analyser.cancel()
            await asyncio.gather(analyser, return_exceptions=True)

    def _unwatched(self) -> None:
        """The hosts past the open-file limit, stopped with the reason and the remedy."""
        reason = self._unwatched_reason
        if reason is None:
            return
        log.warning("%d hosts %s", len(self.hosts) - self.watched, reason)
        for i in range(self.watched, len(self.hosts)):
            self.links[i].enter("stopped", Status.SKIPPED, reason)
            self._changed(i)

    def _queue(self, i: int, out: ProbeOutput) -> None:
        if i in self._pending:
            # Superseded before its turn came; the newer pair keeps the older's place in the
            # queue (sent to the back, a host could be superseded for ever).
            self.links[i].passed += 1
        self._pending[i] = out
        self._queued.set()

    def analyse_pending(self, limit: int | None = None) -> int:
        """on_pair for the waiting pairs, oldest first (at most `limit`); how many."""
        done = 0
        while self._pending and not self.stopping and (limit is None or done < limit):
            i = next(iter(self._pending))
            out = self._pending.pop(i)
            try:
                self.on_pair(i, out)
            except Exception:  # one host's bug never stops the others' analysis
                log.warning("%s: analysis failed", self.hosts[i].name, exc_info=True)
            keep_for_next(out)
            done += 1
        return done

    async def _analyser(self) -> None:
        """The pairs analysed a few at a time, with the event loop's I/O (reads, the other
        hosts' handshakes) served in between: analysing every host's pair as it arrived
        made one step of a saturated loop last seconds, and handshakes then timed out."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._pending and not self.stopping:
                self.analyse_pending(ANALYSE_BATCH)
                await asyncio.sleep(0)

    def _changed(self, i: int) -> None:
        if self.on_change is not None:
            self.on_change(i, self.links[i])

    async def _host(self, i: int) -> None:
        link = self.links[i]
        while not self.stopping:
            try:
                await self._stream(i)
                status, reason = Status.COMMAND_FAILED, "probe loop ended"
            except HostFailure as exc:
                status, reason = exc.status, exc.reason
            except TimeoutError:  # _ticks says what came instead (stalled_reason): any other
                status = Status.TIMEOUT
                reason = f"no complete sample within {self.host_opts[i].deadline_s:g} s"
            except (asyncssh.Error, OSError) as exc:
                status, reason = Status.UNREACHABLE, f"connection lost: {exc}"
            except Exception as exc:  # one host's bug never stops the others
                log.debug("host %s: unexpected error", link.spec.name, exc_info=True)
                status = Status.COMMAND_FAILED
                reason = f"unexpected error: {type(exc).__name__}: {exc}"
            if self.stopping:
                return
            self._pending.pop(i, None)  # no figures from a stream that ended
            if status is Status.HOSTKEY_MISMATCH:
                # Never retried: the key must be checked by a person (ssh-keygen -R).
                link.enter("stopped", status, reason)
                self._changed(i)
                log.warning("%s: stopped: %s", link.spec.name, reason)
                return
            link.enter("down", status, reason)  # before it counts: a first one starts an outage
            link.failures += 1
            slow = status is Status.AUTH_FAILED
            wait_s = (auth_backoff_s if slow else backoff_s)(link.failures, self.rng)
            link.retry_at = time.time() + wait_s
            self._changed(i)
            log.info("%s: %s: %s (retry in %.1f s)", link.spec.name, status.value, reason, wait_s)
            await asyncio.sleep(wait_s)
            link.enter("connecting")
            self._changed(i)

    async def _stream(self, i: int) -> None:
        spec = self.hosts[i]
        opener = STREAM_OPENERS.get(spec.connection)
        if opener is None:
            raise HostFailure(Status.COMMAND_FAILED, f"no streaming for {spec.connection!r}")
        popts = self.probe_options(spec)
        script = build_stream_script(popts)
        target = f"{spec.address}:{spec.port}" if spec.connection == "ssh" else spec.connection
        progress = Progress(target)
        opts = self.host_opts[i]
        ctx = self.ctx.with_opts(opts)
        async with contextlib.AsyncExitStack() as stack:
            async with self._slots:
                try:
                    async with asyncio.timeout(opts.connect_timeout_s + 5.0):
                        read = await stack.enter_async_context(opener(ctx, spec, script, progress))
                except TimeoutError:
                    why = progress.stalled(opts.connect_timeout_s + 5.0, "connect timeout")
                    raise HostFailure(Status.TIMEOUT, why) from None
            await self._ticks(i, read, popts.nonce)

    async def _ticks(self, i: int, read: Reader, nonce: str) -> None:
        """Read ticks until the stream ends; each sample after the first makes a pair."""
        link = self.links[i]
        end_re = tick_end_re(nonce)
        buf = bytearray()
        once: dict[str, Section] = {}
        prev: Mapping[str, Section] | None = None
        memo: dict[tuple[str, str, str], Any] = {}
        cap, deadline_s = self.host_opts[i].output_cap_bytes, self.host_opts[i].deadline_s
        while not self.stopping:
            try:
                async with asyncio.timeout(deadline_s):
                    m = await _tick_end(read, buf, end_re, cap)
            except TimeoutError:
                raise HostFailure(Status.TIMEOUT, stalled_reason(buf, nonce, deadline_s)) from None
            if m is None:
                if prev is None and buf.strip():
                    _no_tick(buf, nonce)
                return
            text = buf[: m.end()].decode("utf-8", "replace")
            del buf[: m.end()]
            try:
                tick = split_tick(text, nonce)
            except ProbeParseError as exc:
                raise HostFailure(Status.PARSE_ERROR, f"parse error: {exc}") from None
            once.update(tick.once)
            if end_re.search(buf) is not None:
                # A newer tick has already arrived (the client fell behind, or the host sent
                # a burst): this pair is stale and the next supersedes it. Passing over it
                # costs a split, not an analysis, so a client behind catches up instead of
                # working through an ever longer backlog of old samples.
                link.passed += 1
            elif prev is not None and not self.stopping:
                if _went_back(prev, tick.sections):
                    # No interval (its rates would be negative): this tick starts a new pair.
                    link.went_back += 1
                else:
                    self._queue(i, pair_output(once, prev, tick.sections, memo))
            if prev is not None:
                # A pair came: the backoff starts again. Not at the first sample: a host whose
                # loop ends after one (a partial frame and the close) gives no figures, and
                # was logged into every few seconds for ever, its backoff never growing.
                link.failures = 0
            prev = tick.sections
            link.ticks += 1
            now = time.time()
            if prev is not None and link.last_tick_at is not None:
                link.tick_s = now - link.last_tick_at
            link.last_tick_at = now
            if link.state != "live":
                link.retry_at = None
                link.enter("live")
                self._changed(i)
