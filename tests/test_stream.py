"""The streaming collector: the looping probe, pairs analysed as `fleetmon run` analyses its
two samples, reconnects with backoff, a changed host key stopping a host; against the
simulator (in process), a local sh and the real sshd."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import itertools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from fleetmon.analyse.pipeline import analyse_host, analyse_output
from fleetmon.cli.live import LIVE_GC_THRESHOLD, _live_gc
from fleetmon.cli.run import host_collect_options
from fleetmon.collect.base import CollectOptions, HostFailure
from fleetmon.collect.probe import (
    ONCE_EVERY_TICKS,
    REMOTE_COMMAND,
    ProbeOptions,
    build_stream_script,
)
from fleetmon.collect.stream import (
    AUTH_BACKOFF_FIRST_S,
    AUTH_BACKOFF_MAX_S,
    BACKOFF_MAX_S,
    Link,
    StreamCollector,
    auth_backoff_s,
    backoff_s,
    stalled_reason,
)
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.sim.answer import Answer, parse_script
from fleetmon.sim.captures import load_captures
from fleetmon.sim.containers import with_containers
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sim.render import Moment
from fleetmon.sim.server import SimConfig, Simulator, serve
from fleetmon.sources.sections import ProbeOutput, Section, pair_output, split_tick, tick_end_re
from tests import sshd_util
from tests.probetext import env_without_awk


def _block() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"


def _base(name: str) -> HostReport:
    return HostReport(name=name, address="x", groups=(), status=Status.OK, error=None)


# --- same sample pair, same metrics --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "xentop"), [("kvm", False), ("xen", True), ("xen", False), ("linux", False)]
)
def test_a_streamed_pair_gives_what_fleetmon_run_computes(kind: str, xentop: bool) -> None:
    """The simulator answers the two-sample probe and the loop from the same host state:
    the loop's ticks 7 and 8 at the moments of the probe's samples 1 and 2 must analyse to
    the very same report (every metric, row and note). On Xen, tick 8 opens with xentop's
    iterations over the wait since tick 7, as the probe has them between its samples."""
    host = next(
        h
        for h in make_fleet(12, "mixed", 3, {}, endpoints("127.0.1.1", 12, 2222, 1))
        if h.kind == kind and h.has_xentop == xentop
    )
    cap = load_captures()
    opts = ProbeOptions(interval_s=2.0, hypervisor="auto")
    info = parse_script(build_stream_script(opts))
    assert info is not None
    assert info.stream
    assert info.interval_s == 2.0
    answer = Answer(cap, host, info, "", "")
    at1, at2 = Moment(300.0, 1_800_000_000.0), Moment(302.0, 1_800_000_002.0)

    two_sample = answer.first(at1) + answer.second(at2)
    raw = RawResult(
        HostSpec(host.name, host.address), Status.OK, stdout=two_sample, nonce=opts.nonce
    )
    by_run = analyse_host(raw)

    stream = answer.tick(1, Moment(298.0, 0.0), once=True)
    stream += answer.tick(7, at1, once=False) + answer.tick(8, at2, once=False)
    texts = _ticks(stream.encode(), opts.nonce)
    assert [t[0] for t in texts] == [1, 7, 8]
    # As the collector keeps them: each tick's sample-0 sections update the once-per-run ones.
    once = {**texts[0][1].once, **texts[1][1].once, **texts[2][1].once}
    by_stream = analyse_output(
        _base(host.name), pair_output(once, texts[1][1].sections, texts[2][1].sections)
    )

    assert by_run.status is Status.OK
    assert by_stream.interval_s == by_run.interval_s == 2.0
    assert by_stream.metrics == by_run.metrics
    assert by_stream.rows == by_run.rows
    assert by_stream.counters == by_run.counters
    assert by_stream.hypervisor == by_run.hypervisor == (kind if kind != "linux" else "none")
    assert by_stream.notes == by_run.notes
    missing = "xentop was unavailable (xentop failed: sh: 1: xentop: not found)"
    assert (kind == "xen" and not xentop) == any(missing in n for n in by_stream.notes)
    if kind != "linux":
        assert by_stream.rows_of("vm"), "VM rows expected"
    if xentop:  # xentop's disk figures and VBD_OO, which xl list cannot give
        rates = [r.metrics["vm.disk_oo_per_s"] for r in by_stream.rows_of("vm")]
        assert rates
        assert all(isinstance(v, float) for v in rates)
        assert any(v > 0 for v in rates if isinstance(v, float))


def _ticks(data: bytes, nonce: str) -> list[tuple[int, object]]:
    out = []
    pos = 0
    for m in tick_end_re(nonce).finditer(data):
        tick = split_tick(data[pos : m.end()].decode(), nonce)
        out.append((tick.number, tick))
        pos = m.end()
    assert pos == len(data)
    return out  # type: ignore[return-value]


@pytest.mark.parametrize("awk", [True, False], ids=["awk", "no-awk"])
def test_the_looping_script_runs_in_a_real_sh(awk: bool, tmp_path: Path) -> None:
    """The script itself under dash/sh: 3 ticks, each sample numbered, the once-per-run
    sections with the first, the last tick ending the script; the same where the host has
    no awk to pass the output through."""
    import subprocess

    opts = ProbeOptions(interval_s=0.2, hypervisor="none")
    script = build_stream_script(opts, ticks=3)
    env = None if awk else env_without_awk(tmp_path)
    out = subprocess.run(
        ["sh", "-c", REMOTE_COMMAND],
        input=script.encode(),
        capture_output=True,
        timeout=30,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    ticks = _ticks(out.stdout, opts.nonce)
    assert [n for n, _ in ticks] == [1, 2, 3]
    first = ticks[0][1]
    assert {"meta", "df_k", "df_i"} <= set(first.once)  # type: ignore[attr-defined]
    assert not ticks[1][1].once  # type: ignore[attr-defined]
    pair = pair_output(first.once, first.sections, ticks[1][1].sections)  # type: ignore[attr-defined]
    rep = analyse_output(_base("local"), pair)
    assert rep.status is Status.OK, rep.error
    # The remote clock: Δ uptime, at least the sleep between the samples.
    assert rep.interval_s is not None
    assert rep.interval_s >= 0.19
    shares = [rep.metrics[f"cpu.{k}_pct"] for k in ("user", "nice", "system", "iowait", "irq",
              "softirq", "steal", "idle")]  # fmt: skip
    assert abs(sum(float(s) for s in shares if s is not None) - 100.0) < 0.5


def test_once_sections_come_back_every_n_ticks() -> None:
    script = build_stream_script(ProbeOptions(interval_s=2.0))
    assert f"$(( (N - 1) % {ONCE_EVERY_TICKS} )) = 0 ] && fm_once" in script
    assert "while :; do" in script


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(1)
    waits = [[backoff_s(n, rng) for _ in range(200)] for n in range(1, 10)]
    for n, ws in enumerate(waits, 1):
        base = min(BACKOFF_MAX_S, 2.0 ** (n - 1))
        assert all(base / 2 <= w <= base for w in ws)
        assert max(ws) - min(ws) > base / 4  # jittered, not one value
    assert max(waits[-1]) <= BACKOFF_MAX_S


def test_a_refused_key_is_retried_slowly_enough_for_fail2ban() -> None:
    """At most 4 tries in any 10 minutes (fail2ban's sshd jail: 5 failures in 10 minutes),
    the wait doubling from a minute to a quarter of an hour."""
    rng = random.Random(2)
    for _ in range(200):
        t, tries = 0.0, [0.0]
        for n in range(1, 12):
            wait = auth_backoff_s(n, rng)
            base = min(AUTH_BACKOFF_MAX_S, AUTH_BACKOFF_FIRST_S * 2.0 ** (n - 1))
            assert base <= wait <= base * 1.25
            t += wait
            tries.append(t)
        assert max(sum(1 for x in tries if a <= x < a + 600) for a in tries) <= 4


# --- against the simulator -------------------------------------------------------------------


class _Fleet:
    """A simulator and the host specs that reach it."""

    def __init__(self, sim: Simulator, tmp: Path, known_hosts: str | None = None) -> None:
        key = tmp / "key"
        sim.client_key.write_private_key(str(key))
        os.chmod(key, 0o600)
        kh = tmp / "known_hosts"
        kh.write_text(known_hosts if known_hosts is not None else sim.known_hosts())
        self.specs = [
            HostSpec(h.name, h.address, h.port, user="sim", key_file=str(key), known_hosts=str(kh))
            for h in sim.hosts
        ]


async def _until(cond: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll `cond` every 20 ms for at most `limit_s` (returns either way)."""
    for _ in range(int(limit_s / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)


async def _run_until(
    collector: StreamCollector, done: Callable[[], bool], limit_s: float = 30.0
) -> None:
    task = asyncio.ensure_future(collector.run())
    try:
        await _until(done, limit_s)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert done(), "condition not reached in time"


def test_simulated_hosts_stream_on_a_simulated_clock(tmp_path: Path) -> None:
    """time_scale 20: a 2 s tick every 0.1 s of real time, and every pair's interval is the
    simulated 2 s exactly (the remote clock, not the client's)."""
    pairs: list[tuple[int, HostReport]] = []

    async def main() -> float:
        cfg = SimConfig(hosts=3, kind="mixed", base_address=_block() + ".1", port=0, time_scale=20)
        async with serve(cfg) as sim:
            fleet = _Fleet(sim, tmp_path)

            def on_pair(i: int, out: ProbeOutput) -> None:
                pairs.append((i, analyse_output(_base(fleet.specs[i].name), out)))

            c = StreamCollector(fleet.specs, CollectOptions(interval_s=2.0),
                                lambda s: ProbeOptions(interval_s=2.0), on_pair)  # fmt: skip
            t0 = time.monotonic()
            await _run_until(
                c, lambda: all(sum(1 for i, _ in pairs if i == k) >= 10 for k in range(3))
            )
            assert [link.state for link in c.links] == ["live"] * 3
            return time.monotonic() - t0

    elapsed = asyncio.run(main())
    assert elapsed < 10.0  # 10 simulated ticks of 2 s each took far less than 20 s
    assert {r.interval_s for _, r in pairs} == {2.0}
    assert all(r.status is Status.OK for _, r in pairs)
    vms = {len(r.rows_of("vm")) for _, r in pairs}
    assert max(vms) > 0


def test_a_dropped_host_is_down_since_then_reconnects(tmp_path: Path) -> None:
    changes: list[tuple[str, Status | None, float]] = []

    async def main() -> None:
        cfg = SimConfig(hosts=1, base_address=_block() + ".1", port=0, time_scale=10)
        async with serve(cfg) as sim:
            fleet = _Fleet(sim, tmp_path)
            got: list[int] = []

            def on_change(i: int, link: Link) -> None:
                changes.append((link.state, link.status, link.since))

            c = StreamCollector(fleet.specs, CollectOptions(interval_s=1.0),
                                lambda s: ProbeOptions(interval_s=1.0),
                                lambda i, out: got.append(i), on_change,
                                rng=random.Random(0))  # fmt: skip
            task = asyncio.ensure_future(c.run())
            try:
                await _until(lambda: len(got) >= 3)
                for conn in list(sim._conns):  # the network drops the connection
                    conn.close()
                await _until(lambda: c.links[0].state == "down")
                link = c.links[0]
                assert link.status is Status.UNREACHABLE or link.status is Status.COMMAND_FAILED
                assert link.retry_at is not None
                assert link.retry_at > link.since
                before = len(got)
                await _until(lambda: len(got) >= before + 2)
                assert c.links[0].state == "live"
                assert c.links[0].failures == 0
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    states = [s for s, _, _ in changes]
    assert states == ["live", "down", "connecting", "live"]
    assert changes[1][2] <= changes[2][2] <= changes[3][2]


def test_a_failing_probe_says_why_and_since_when_across_retries(tmp_path: Path) -> None:
    """A host whose probe fails (the simulator's cmdfail: exit 1 and a message): the reason
    is `fleetmon run`'s (exit status and stderr; it was a bare "probe loop ended"), and its
    since-when stays the outage's start across the retries (it restarted at each)."""
    seen: list[tuple[str, float, str | None]] = []

    async def main() -> None:
        cfg = SimConfig(hosts=1, kind="linux", base_address=_block() + ".1", port=0,
                        faults={"cmdfail": 1}, time_scale=10)  # fmt: skip
        async with serve(cfg) as sim:
            fleet = _Fleet(sim, tmp_path)

            def on_change(i: int, link: Link) -> None:
                seen.append((link.state, link.since, link.reason))

            c = StreamCollector(fleet.specs, CollectOptions(interval_s=1.0),
                                lambda s: ProbeOptions(interval_s=1.0),
                                lambda i, out: None, on_change,
                                rng=random.Random(0))  # fmt: skip
            await _run_until(c, lambda: sum(1 for s in seen if s[0] == "down") >= 3)

    asyncio.run(main())
    downs = [s for s in seen if s[0] == "down"]
    assert {reason for _, _, reason in downs} == {
        "probe loop exited 1: sh: 1: cannot open /proc/stat: Permission denied"
        " (fleetmon simulate: cmdfail)"
    }
    assert len({since for state, since, _reason in seen if state != "live"}) == 1
    assert len(seen) >= 5  # down, connecting, down, connecting, down


def test_a_changed_host_key_stops_the_host_for_good(tmp_path: Path) -> None:
    async def main() -> tuple[Link, int]:
        cfg = SimConfig(hosts=1, base_address=_block() + ".1", port=0)
        async with serve(cfg) as sim:
            other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
            h = sim.hosts[0]
            fleet = _Fleet(sim, tmp_path, f"[{h.address}]:{h.port} {other}")
            c = StreamCollector(
                fleet.specs,
                CollectOptions(interval_s=1.0),
                lambda s: ProbeOptions(interval_s=1.0),
                lambda i, o: None,
            )
            task = asyncio.ensure_future(c.run())
            async with asyncio.timeout(20):
                await task  # every host stopped: run() returns by itself
            # No retry: nothing more reaches the server in 3 s (a retry would come in ~1).
            answers = sim.answers
            await asyncio.sleep(3)
            assert sim.answers == answers
            return c.links[0], len(sim._conns)

    link, conns = asyncio.run(main())
    assert link.state == "stopped"
    assert link.status is Status.HOSTKEY_MISMATCH
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in (link.reason or "")
    assert conns == 0


def test_a_host_that_refuses_the_key_waits_a_minute_before_the_next_try(tmp_path: Path) -> None:
    async def main() -> Link:
        cfg = SimConfig(hosts=2, base_address=_block() + ".1", port=0, faults={"auth": 1})
        async with serve(cfg) as sim:
            fleet = _Fleet(sim, tmp_path)
            c = StreamCollector(fleet.specs, CollectOptions(interval_s=1.0),
                                lambda s: ProbeOptions(interval_s=1.0), lambda i, o: None,
                                rng=random.Random(0))  # fmt: skip
            refused = next(i for i, h in enumerate(sim.hosts) if h.fault == "auth")
            await _run_until(c, lambda: c.links[refused].state == "down")
            return c.links[refused]

    link = asyncio.run(main())
    assert link.status is Status.AUTH_FAILED
    assert link.retry_at is not None
    assert link.retry_at - link.since >= AUTH_BACKOFF_FIRST_S


# --- a real sshd -------------------------------------------------------------------------------


@pytest.mark.sshd
def test_streaming_from_the_real_sshd(sshd: sshd_util.Sshd) -> None:
    spec = HostSpec("real", sshd.host, sshd.port, user=sshd.user, key_file=str(sshd.client_key))
    opts = CollectOptions(interval_s=0.5, known_hosts=str(sshd.known_hosts))
    reports: list[HostReport] = []

    def on_pair(i: int, out: ProbeOutput) -> None:
        reports.append(analyse_output(_base("real"), out))

    async def main() -> None:
        c = StreamCollector([spec], opts, lambda s: ProbeOptions(interval_s=0.5), on_pair)
        await _run_until(c, lambda: len(reports) >= 3, limit_s=60)

    asyncio.run(main())
    for rep in reports:
        assert rep.status is Status.OK, rep.error
        assert rep.interval_s is not None
        assert 0.45 <= rep.interval_s < 5
        busy = rep.metrics["cpu.busy_pct"]
        idle = rep.metrics["cpu.idle_pct"]
        iowait = rep.metrics["cpu.iowait_pct"]
        assert isinstance(busy, float)
        assert isinstance(idle, float)
        assert isinstance(iowait, float)
        assert abs(busy + idle + iowait - 100.0) < 0.5  # busy = 100 - idle - iowait
    # Consecutive pairs share a sample: each starts where the one before ended.
    ups = [rep.metrics["uptime_s"] for rep in reports]
    assert ups == sorted(ups)
    assert len(set(ups)) == len(ups)


@pytest.mark.sshd
def test_a_tick_comes_from_openssh_in_a_few_reads_not_one_per_write(
    sshd: sshd_util.Sshd,
) -> None:
    """The shell writes each marker line and each file apart (~45 writes a tick) and sshd
    sends each read of its pipe as a packet: through the script's awk a tick comes in one
    read per 4 KB block (plus one or two where a block straddles sshd's reads), where it
    came in some 35."""
    opts = ProbeOptions(interval_s=0.3, hypervisor="none")
    script = build_stream_script(opts, ticks=4)
    sizes: list[tuple[int, int]] = []  # each tick's reads and bytes

    async def main() -> None:
        async with asyncssh.connect(
            sshd.host,
            sshd.port,
            username=sshd.user,
            client_keys=[str(sshd.client_key)],
            known_hosts=str(sshd.known_hosts),
        ) as conn:
            proc = await conn.create_process(REMOTE_COMMAND, input=script.encode(), encoding=None)
            end_re = tick_end_re(opts.nonce)
            buf, reads = b"", 0
            while chunk := await proc.stdout.read(1 << 20):
                buf += chunk
                reads += 1
                # A read may end a tick and start the next (or hold two, the client late).
                while (m := end_re.search(buf)) is not None:
                    sizes.append((reads, m.end()))
                    buf, reads = buf[m.end() :], 0
            assert not buf

    asyncio.run(asyncio.wait_for(main(), 60))
    assert len(sizes) == 4
    for reads, size in sizes:
        assert reads <= size // 4096 + 3, (reads, size)


def test_a_local_host_streams_through_sh() -> None:
    spec = dataclasses.replace(HostSpec("me", "localhost"), connection="local")
    reports: list[HostReport] = []

    async def main() -> None:
        c = StreamCollector(
            [spec],
            CollectOptions(interval_s=0.3),
            lambda s: ProbeOptions(interval_s=0.3, hypervisor="none"),
            lambda i, out: reports.append(analyse_output(_base("me"), out)),
        )
        await _run_until(c, lambda: len(reports) >= 2)

    asyncio.run(main())
    assert all(r.status is Status.OK and r.interval_s and r.interval_s >= 0.29 for r in reports)


def _streamed(kind: str) -> tuple[ProbeOptions, Answer]:
    """The streaming probe's options (2 s ticks) and the simulator's answers for a host of
    `kind` of a small mixed fleet."""
    where = endpoints("127.0.1.1", 12, 2222, 1)
    host = next(h for h in make_fleet(12, "mixed", 3, {}, where) if h.kind == kind)
    opts = ProbeOptions(interval_s=2.0)
    info = parse_script(build_stream_script(opts))
    assert info is not None
    return opts, Answer(load_captures(), host, info, "", "")


@pytest.mark.parametrize("kind", ["kvm", "xen"])
def test_the_memo_shares_a_sample_between_two_pairs_and_changes_nothing(kind: str) -> None:
    """The collector's memo: sample N, parsed for pair (N-1, N), is not parsed again for
    pair (N, N+1); the reports are those of the same pairs analysed without it."""
    opts, answer = _streamed(kind)
    ticks = [
        split_tick(answer.tick(n, Moment(300.0 + 2 * n, 1.8e9 + 2 * n), n == 1), opts.nonce)
        for n in (1, 2, 3)
    ]
    once = dict(ticks[0].once)
    memo: dict[tuple[str, str, str], object] = {}
    first = analyse_output(
        _base("h"), pair_output(once, ticks[0].sections, ticks[1].sections, memo)
    )
    # Sample 1's parses (the once-per-run sections', such as meta, are shared too).
    shared = {k for k in memo if (s := ticks[1].sections.get(k[0])) and k[2] is s.text}
    assert any(k[0] == "stat" for k in shared)
    assert any(k[0] == ("virsh_domstats" if kind == "kvm" else "xl_list") for k in shared)
    cached = {k: memo[k] for k in shared}
    second = analyse_output(
        _base("h"), pair_output(once, ticks[1].sections, ticks[2].sections, memo)
    )
    assert all(memo[k] is v for k, v in cached.items())  # reused, not parsed again
    for got, (a, b) in ((first, (0, 1)), (second, (1, 2))):
        plain = analyse_output(_base("h"), pair_output(once, ticks[a].sections, ticks[b].sections))
        assert got == plain


def test_a_host_s_own_connect_timeout_applies_as_in_fleetmon_run(tmp_path: Path) -> None:
    """fleetmon_connect_timeout in the inventory: a host whose port never sends an SSH
    banner is down after its own 1 s, not the run's 30 s (cli.run.host_collect_options)."""
    import socket

    kh = tmp_path / "known_hosts"
    kh.write_text("")
    opts = CollectOptions(interval_s=1.0, connect_timeout_s=30.0)
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)  # the kernel completes the handshake; nobody ever speaks SSH
        spec = HostSpec("mute", "127.0.0.1", mute.getsockname()[1], user="x",
                        known_hosts=str(kh), vars={"fleetmon_connect_timeout": "1"})  # fmt: skip

        async def main() -> tuple[float, Link]:
            own = functools.partial(host_collect_options, opts)
            c = StreamCollector([spec], opts, lambda s: ProbeOptions(interval_s=1.0),
                                lambda i, out: None, host_options=own)  # fmt: skip
            t0 = time.monotonic()
            await _run_until(c, lambda: c.links[0].state == "down", limit_s=20)
            return time.monotonic() - t0, c.links[0]

        elapsed, link = asyncio.run(main())
    assert elapsed < 5
    assert link.status is Status.TIMEOUT
    assert link.reason == f"connect timeout: no SSH banner from 127.0.0.1:{spec.port} within 1 s"


def test_a_backlog_of_ticks_is_passed_over_to_the_newest_pair() -> None:
    """A client behind (several whole ticks in one read) analyses only the newest pair: old
    samples are split, not analysed, so it catches up instead of falling further behind."""
    opts, answer = _streamed("kvm")
    ticks = [
        answer.tick(n, Moment(300.0 + 2 * n, 1.8e9 + 2 * n), n == 1).encode() for n in range(1, 7)
    ]
    chunks = [ticks[0] + ticks[1], b"".join(ticks[2:]), b""]  # 1-2, then 3-6 at once

    async def read(n: int) -> bytes:
        c.analyse_pending()  # the analyser's turn comes between two reads
        return chunks.pop(0)

    pairs: list[ProbeOutput] = []
    c = StreamCollector([HostSpec("h", "x")], CollectOptions(interval_s=2.0),
                        lambda s: opts, lambda i, out: pairs.append(out))  # fmt: skip
    asyncio.run(c._ticks(0, read, opts.nonce))
    assert len(pairs) == 2
    assert (c.links[0].ticks, c.links[0].passed) == (6, 4)  # ticks 1, 3, 4 and 5 passed over
    split = [split_tick(t.decode(), opts.nonce) for t in ticks]
    once = dict(split[0].once)
    newest = analyse_output(_base("h"), pair_output(once, split[4].sections, split[5].sections))
    assert analyse_output(_base("h"), pairs[1]) == newest
    first = analyse_output(_base("h"), pair_output(once, split[0].sections, split[1].sections))
    assert analyse_output(_base("h"), pairs[0]) == first


@pytest.mark.parametrize("kind", ["kvm", "linux"])
def test_a_tick_whose_clock_went_back_starts_a_new_pair(kind: str) -> None:
    """A tick whose uptime is before the tick it follows gives no pair (its interval would
    be negative, and so its rates): it is the first sample of the next pair."""
    opts, answer = _streamed(kind)
    since = [2.0, 4.0, 3.0, 5.0, 7.0]  # the third tick's clock went back a second
    chunks = [
        answer.tick(n, Moment(300.0 + s, 1.8e9 + s), n == 1).encode()
        for n, s in enumerate(since, 1)
    ] + [b""]

    async def read(n: int) -> bytes:
        c.analyse_pending()
        return chunks.pop(0)

    pairs: list[ProbeOutput] = []
    c = StreamCollector([HostSpec("h", "x")], CollectOptions(interval_s=2.0),
                        lambda s: opts, lambda i, out: pairs.append(out))  # fmt: skip
    asyncio.run(c._ticks(0, read, opts.nonce))
    c.analyse_pending()
    reports = [analyse_output(_base("h"), out) for out in pairs]
    assert [r.interval_s for r in reports] == [2.0, 2.0, 2.0]  # ticks (1, 2), (3, 4), (4, 5)
    assert all(r.status is Status.OK for r in reports)
    assert (c.links[0].ticks, c.links[0].went_back, c.links[0].passed) == (5, 1, 0)


def test_stop_soon_ends_the_streams_without_another_analysis() -> None:
    """stop_soon() (a signal handler's first move): the pair being handled is the last one
    analysed, even with more ticks already read, and each host's stream ends by itself."""
    opts, answer = _streamed("linux")
    n = 0

    async def read(size: int) -> bytes:  # an endless stream, one tick per read
        nonlocal n
        n += 1
        c.analyse_pending()  # the analyser's turn comes between two reads
        await asyncio.sleep(0)  # so that wait_for can end a stream that never stops
        return answer.tick(n, Moment(300.0 + 2 * n, 1.8e9 + 2 * n), n == 1).encode()

    pairs: list[ProbeOutput] = []

    def on_pair(i: int, out: ProbeOutput) -> None:
        pairs.append(out)
        if len(pairs) == 3:
            c.stop_soon()

    c = StreamCollector([HostSpec("h", "x")], CollectOptions(interval_s=2.0),
                        lambda s: opts, on_pair)  # fmt: skip
    asyncio.run(asyncio.wait_for(c._ticks(0, read, opts.nonce), 10))
    assert len(pairs) == 3
    assert c.links[0].ticks == 5  # the tick read as it stopped is neither queued nor analysed
    assert c.analyse_pending() == 0


def test_a_pair_superseded_in_the_queue_keeps_its_place() -> None:
    """The analyser behind: a host whose waiting pair is replaced by a newer one keeps its
    turn (were it sent to the back, a host could be superseded for ever)."""
    done: list[int] = []
    c = StreamCollector([HostSpec("a", "x"), HostSpec("b", "y")], CollectOptions(),
                        lambda s: ProbeOptions(), lambda i, out: done.append(i))  # fmt: skip
    pair = ProbeOutput({})
    c._queue(0, pair)
    c._queue(1, pair)
    c._queue(0, pair)  # host a's newer pair, before the analyser came by
    assert c.analyse_pending(limit=1) == 1
    assert done == [0]
    assert (c.links[0].passed, c.links[1].passed) == (1, 0)
    assert c.analyse_pending() == 1
    assert done == [0, 1]


def test_the_live_modes_collect_garbage_rarely_and_put_the_settings_back() -> None:
    """While streaming (run_live): what the start made frozen, collections every
    LIVE_GC_THRESHOLD objects; after it (a SIGHUP reload runs it again) the settings it
    found."""
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with _live_gc():
        assert gc.get_threshold() == LIVE_GC_THRESHOLD
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before


def test_the_memo_follows_a_container_that_starts_between_ticks() -> None:
    """A host streams three containers, then four (one started before tick 3); its cgroup
    gauges and names come again with tick 4's once-a-minute sections. Through the memo
    (cgroup columns, identities and names kept between ticks), every pair's report is the
    one analysed without it: the newcomer without rates while its first sample is the
    pair's second, then with them, and its memory once the gauges list it."""
    opts, answer = _streamed("linux")
    three, four = (with_containers((answer.host,), n, 7)[0] for n in (3, 4))
    assert four.containers[:3] == three.containers
    answers = [Answer(answer.cap, h, answer.info, "", "") for h in (three, four)]
    ticks = []
    for n in range(1, 6):
        at = Moment(300.0 + 2 * n, 1.8e9 + 2 * n)
        text = answers[n >= 3].tick(n, at, n in (1, 4))
        ticks.append(split_tick(text, opts.nonce))
    once: dict[str, Section] = {}
    memo: dict[tuple[str, str, str], object] = {}
    new = four.containers[3]
    seen = []
    for a, b in itertools.pairwise(ticks):  # as the collector: each tick's once, then the pair
        once.update(a.once)
        once.update(b.once)
        got = analyse_output(_base("h"), pair_output(once, a.sections, b.sections, memo))
        assert got == analyse_output(_base("h"), pair_output(once, a.sections, b.sections))
        rows = {r.labels["id"]: r for r in got.rows_of("ctr")}
        row = rows.get(new.id)
        seen.append((len(rows), row and row.name, row and row.metrics["ctr.cpu_pct"],
                     row and row.metrics["ctr.mem_bytes"]))  # fmt: skip
    assert seen[0] == (3, None, None, None)
    # Started between the samples: a row without rates, nor gauges, nor a name yet (its
    # short id), until tick 4's once-a-minute sections list it.
    assert seen[1] == (4, new.id[:12], None, None)
    for count, name, cpu, mem in seen[2:]:
        assert (count, name) == (4, new.name)
        assert cpu is not None
        assert mem is not None


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        # A forced command's message, or garbage (the simulator's fault): run's reason.
        (
            b"This account is currently not available.\n",
            "no probe sections in the output; the host printed: 'This account is currently not"
            " available.' (a ForceCommand or an authorized_keys command= restriction?)",
        ),
        (bytes(range(256)) * 8, "no probe sections in the output"),
        # The probe's own output cut short before its first tick's end: the loop ended.
        (b"@@fleetmon-NONCE@@ begin 0 meta\nprobe=1\n", None),
        (b"", None),
    ],
)
def test_a_stream_that_ends_before_its_first_tick_says_why(sent: bytes, why: str | None) -> None:
    opts, _ = _streamed("kvm")
    chunks = [sent.replace(b"NONCE", opts.nonce.encode()), b""]

    async def read(n: int) -> bytes:
        return chunks.pop(0)

    c = StreamCollector([HostSpec("h", "x")], CollectOptions(interval_s=2.0),
                        lambda s: opts, lambda i, out: None)  # fmt: skip
    if why is None:
        asyncio.run(c._ticks(0, read, opts.nonce))  # returns: _host says "probe loop ended"
        return
    with pytest.raises(HostFailure) as err:
        asyncio.run(c._ticks(0, read, opts.nonce))
    assert err.value.status is Status.PARSE_ERROR
    assert err.value.reason == f"parse error: section markers: {why}"


def test_a_shape_outlives_the_ticks_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """The domstats shape made at the second tick reads the newest pair after a backlog
    (its first sample never parsed before): one shape for the stream, not one a pair, so a
    client behind does not pay ~0.4 ms more a pair for falling behind."""
    from fleetmon.sources import domshape

    made: list[str] = []
    real = domshape.shape_of
    monkeypatch.setattr(domshape, "shape_of", lambda *a: made.append(a[0]) or real(*a))
    opts, answer = _streamed("kvm")
    ticks = [
        answer.tick(n, Moment(300.0 + 2 * n, 1.8e9 + 2 * n), n == 1).encode() for n in range(1, 9)
    ]
    chunks = [ticks[0] + ticks[1], b"".join(ticks[2:5]), b"".join(ticks[5:]), b""]
    reports: list[HostReport] = []

    async def read(n: int) -> bytes:
        c.analyse_pending()
        return chunks.pop(0)

    c = StreamCollector([HostSpec("h", "x")], CollectOptions(interval_s=2.0), lambda s: opts,
                        lambda i, out: reports.append(analyse_output(_base("h"), out)))  # fmt: skip
    asyncio.run(c._ticks(0, read, opts.nonce))
    c.analyse_pending()
    # Pairs (1, 2), (4, 5) and (7, 8); ticks 1, 3, 4, 6 and 7 passed over as second samples
    # (4 and 7 then the first of a pair, never parsed before).
    assert len(reports) == 3
    assert c.links[0].passed == 5
    assert len(made) == 1
    split = [split_tick(t.decode(), opts.nonce) for t in ticks]
    once = dict(split[0].once)
    newest = analyse_output(_base("h"), pair_output(once, split[6].sections, split[7].sections))
    assert reports[-1] == newest


def test_a_host_that_drops_before_its_first_pair_is_retried_ever_more_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host whose probe loop ends after one sample (a partial frame and the close, a
    forced command printing once) never gives a pair, but its first sample reset the
    backoff: it was logged into every 3 s for ever (19 logins a minute at -d 2, retry
    always 0.5-1 s). The backoff starts again only once a pair has come."""
    from fleetmon.collect import stream

    one_tick = functools.partial(stream.build_stream_script, ticks=1)
    monkeypatch.setattr(stream, "build_stream_script", one_tick)
    spec = dataclasses.replace(HostSpec("me", "localhost"), connection="local")
    failures: list[int] = []

    def on_change(i: int, link: Link) -> None:
        if link.state == "down":
            failures.append(link.failures)

    async def main() -> None:
        c = StreamCollector([spec], CollectOptions(interval_s=0.2),
                            lambda s: ProbeOptions(interval_s=0.2, hypervisor="none"),
                            lambda i, out: None, on_change, rng=random.Random(0))  # fmt: skip
        await _run_until(c, lambda: len(failures) >= 3, 30)

    asyncio.run(main())
    assert failures[:3] == [1, 2, 3]


def test_a_host_that_never_gives_a_pair_is_down_since_its_first_drop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host whose probe loop ends after one sample connects, sends it and drops, again and
    again: its outage lasts until a pair comes, so its since-when stays the first drop's.
    Each reconnection made it anew ("down since" a few seconds ago, for hours)."""
    from fleetmon.collect import stream

    one_tick = functools.partial(stream.build_stream_script, ticks=1)
    monkeypatch.setattr(stream, "build_stream_script", one_tick)
    spec = dataclasses.replace(HostSpec("me", "localhost"), connection="local")
    seen: list[tuple[str, float]] = []

    def on_change(i: int, link: Link) -> None:
        seen.append((link.state, link.since))

    async def main() -> None:
        c = StreamCollector([spec], CollectOptions(interval_s=0.2),
                            lambda s: ProbeOptions(interval_s=0.2, hypervisor="none"),
                            lambda i, out: None, on_change, rng=random.Random(0))  # fmt: skip
        await _run_until(c, lambda: [s for s, _ in seen].count("down") >= 3, 30)

    asyncio.run(main())
    first_down = [s for s, _ in seen].index("down")
    assert [state for state, _ in seen[first_down:]][:5] == [
        "down",
        "connecting",
        "live",
        "down",
        "connecting",
    ]
    assert len({since for _, since in seen[first_down:]}) == 1


async def _first_down(
    specs: list[HostSpec], opts: CollectOptions, popts: ProbeOptions
) -> tuple[Status | None, str | None]:
    """The first host's status and reason as it first goes down, from a real stream."""
    downs: list[tuple[Status | None, str | None]] = []

    def on_change(i: int, link: Link) -> None:
        if link.state == "down":
            downs.append((link.status, link.reason))

    c = StreamCollector(specs, opts, lambda s: popts, lambda i, out: None, on_change,
                        rng=random.Random(0))  # fmt: skip
    await _run_until(c, lambda: bool(downs), 30)
    return downs[0]


def test_a_silent_host_says_no_output_not_no_complete_sample(tmp_path: Path) -> None:
    """The simulator's timeout fault (logged in, then nothing): said as no output at all."""

    async def main() -> tuple[Status | None, str | None]:
        cfg = SimConfig(hosts=1, kind="linux", base_address=_block() + ".1", port=0,
                        faults={"timeout": 1}, time_scale=10)  # fmt: skip
        async with serve(cfg) as sim:
            fleet = _Fleet(sim, tmp_path)
            return await _first_down(fleet.specs, CollectOptions(interval_s=1.0, timeout_s=1.0),
                                     ProbeOptions(interval_s=1.0))  # fmt: skip

    assert asyncio.run(main()) == (Status.TIMEOUT, "no output within 1 s")


@pytest.mark.parametrize(
    ("junk", "why"),
    [
        (b"\\377\\376 garbled \\001\\n" * 5, "garbled output?"),
        (
            b"@@fleetmon-0123abcd@@ begin 3 stat\\ncpu 1 2 3\\n",
            "garbled output or another run's frames?",
        ),
    ],
)
def test_garbage_mid_stream_is_said_so_not_a_hung_host(junk: bytes, why: str) -> None:
    """A real sh stream: two good ticks, then bytes with no marker of this run and silence.
    It read "no complete sample within 1 s", as a hung host does; now it says how much came
    and that none of it was a sample."""
    from fleetmon.collect import stream

    def then_junk(popts: ProbeOptions) -> str:
        script = build_stream_script(popts, ticks=2)
        return f"(\n{script}\n)\nprintf '{junk.decode()}'\nexec sleep 30\n"

    spec = dataclasses.replace(HostSpec("me", "localhost"), connection="local")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream, "build_stream_script", then_junk)
        popts = ProbeOptions(interval_s=0.2, hypervisor="none")
        got = asyncio.run(_first_down([spec], CollectOptions(interval_s=0.2, timeout_s=1.0), popts))
    size = len(junk.decode("unicode_escape").encode("latin-1"))
    assert got == (
        Status.TIMEOUT,
        f"{size} bytes without a sample's end marker within 1 s ({why})",
    )


def test_a_sample_begun_but_not_ended_names_its_last_section() -> None:
    """A probe command that hangs mid-sample: the section it stopped in or after is named."""
    opts, answer = _streamed("linux")
    tick = answer.tick(1, Moment(300.0, 1.8e9), True).encode()
    cut = tick[: tick.index(b" begin 1 loadavg\n") + len(b" begin 1 loadavg\n")]
    reason = stalled_reason(bytearray(cut), opts.nonce, 32.0)
    assert reason == (
        f"sample 1 stopped in or after its section loadavg: {len(cut)} bytes without its"
        " end marker within 32 s (a probe command hung?)"
    )
    assert stalled_reason(bytearray(), opts.nonce, 32.0) == "no output within 32 s"
