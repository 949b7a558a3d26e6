"""The progress line of `fleetmon run` on a (fake) terminal: counts, the slowest outstanding
hosts by name, at most four redraws a second, and no measurable cost at 1,000 hosts."""

from __future__ import annotations

import asyncio
import io
import os
import select
import time

import pytest

from fleetmon.cli.progress import REDRAW_S, Progress


class FakeTty(io.StringIO):
    """A terminal that records what is drawn."""

    def __init__(self, tty: bool = True) -> None:
        super().__init__()
        self.tty = tty
        self.flushes = 0

    def isatty(self) -> bool:
        return self.tty

    def flush(self) -> None:
        self.flushes += 1

    def lines(self) -> list[str]:
        """Each drawn state of the line (the text after each carriage return and erase)."""
        return [part for part in self.getvalue().split("\r\x1b[K") if part]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _progress(names: list[str], tty: FakeTty, clock: Clock, slow_after_s: float = 1.0) -> Progress:
    return Progress(names, True, slow_after_s=slow_after_s, stream=tty, clock=clock)


@pytest.fixture(autouse=True)
def columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")


def test_the_line_names_the_slowest_outstanding_hosts() -> None:
    tty, clock = FakeTty(), Clock()
    names = [f"kvm{i:02d}" for i in range(1, 13)]
    p = _progress(names, tty, clock)
    for i in range(12):  # one start every 0.3 s: kvm01 at 0.0 s ... kvm12 at 3.3 s
        p.start(i)
        clock.now += 0.3
    clock.now += 8.4  # 12.0 s into the run
    for i in (0, 1, 2, 3, 4, 5, 8, 9):
        p.done(i, ok=i != 3)  # all at the same instant: only the first one redraws
    assert tty.lines() == [
        "fleetmon: 1/12 hosts done, 0 failed, 12.0 s; "
        "waiting on kvm02 (12 s), kvm03 (11 s), kvm04 (11 s) and 8 more"
    ]
    clock.now += REDRAW_S
    p.draw()
    assert tty.lines()[-1] == (
        "fleetmon: 8/12 hosts done, 1 failed, 12.2 s; "
        "waiting on kvm07 (10 s), kvm08 (10 s), kvm11 (9 s) and 1 more"
    )
    p.finish()
    assert tty.getvalue().endswith("\r\x1b[K")


def test_hosts_not_yet_slow_are_not_named() -> None:
    tty, clock = FakeTty(), Clock()
    p = _progress(["a", "b"], tty, clock, slow_after_s=5.0)
    p.start(0)
    clock.now += 3.0
    p.start(1)
    p.draw()
    assert tty.lines() == ["fleetmon: 0/2 hosts done, 0 failed, 3.0 s"]
    clock.now += 2.5
    p.draw()
    assert tty.lines()[-1] == "fleetmon: 0/2 hosts done, 0 failed, 5.5 s; waiting on a (6 s)"


def test_a_hostile_name_cannot_move_the_cursor_and_the_line_fits_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tty, clock = FakeTty(), Clock()
    p = _progress(["evil\x1b[2J\nname\u202e", "x" * 300], tty, clock, slow_after_s=0.0)
    p.start(0)
    p.start(1)
    p.draw()
    # Control and bidi characters escaped; names dropped to fit (one column kept free, so
    # the line never wraps at the margin).
    assert tty.lines() == [
        "fleetmon: 0/2 hosts done, 0 failed, 0.0 s; "
        "waiting on evil\\x1b[2J\\nname\\u202e (0 s) and 1 more"
    ]
    monkeypatch.delenv("COLUMNS")  # a stream without a terminal size: 80 columns
    p.draw(force=True)
    assert tty.lines()[-1] == "fleetmon: 0/2 hosts done, 0 failed, 0.0 s; waiting on 2 hosts"
    monkeypatch.setenv("COLUMNS", "30")
    p.draw(force=True)
    assert tty.lines()[-1] == "fleetmon: 0/2 hosts done, 0 f"


@pytest.mark.parametrize(("enabled", "tty"), [(True, False), (False, True)])
def test_nothing_is_drawn_off_a_terminal_or_when_quiet(enabled: bool, tty: bool) -> None:
    stream = FakeTty(tty=tty)
    p = Progress(["a"], enabled, stream=stream, clock=Clock())
    p.start(0)
    p.done(0, ok=False)
    p.finish()
    asyncio.run(p.track(asyncio.sleep(0)))
    assert stream.getvalue() == ""
    assert (p.done_count, p.failed) == (1, 1)


def test_at_most_four_redraws_a_second_at_1000_hosts() -> None:
    tty, clock = FakeTty(), Clock()
    names = [f"host{i:04d}" for i in range(1000)]
    p = _progress(names, tty, clock)
    cpu = time.process_time()
    for i in range(1000):  # 1,000 hosts start over 1 s and end over the next 2 s
        p.start(i)
        clock.now += 0.001
    for i in range(1000):
        p.done(i, ok=True)
        clock.now += 0.002
    cpu = time.process_time() - cpu
    # 3 s of run: one redraw per REDRAW_S at most (here drawn by the 2 s of done events).
    assert 2 / REDRAW_S - 1 <= len(tty.lines()) <= 3 / REDRAW_S + 1
    p.draw(force=True)
    assert tty.lines()[-1] == "fleetmon: 1000/1000 hosts done, 0 failed, 3.0 s"
    # The bookkeeping of 2,000 events and the draws: far below a millisecond a host.
    assert cpu < 0.2, f"{cpu:.3f} s of CPU"


def test_track_keeps_redrawing_while_a_host_hangs() -> None:
    tty = FakeTty()
    p = Progress(["fast", "hung"], True, slow_after_s=0.0, stream=tty)

    async def run() -> str:
        p.start(0)
        p.start(1)
        p.done(0, ok=True)
        await asyncio.sleep(1.3)  # nothing completes: only the ticker draws
        return "done"

    assert asyncio.run(p.track(run())) == "done"
    lines = tty.lines()
    assert 2 <= len(lines) <= 7, lines  # the done event, then the ticker (~5 in 1.3 s)
    assert all("1/2 hosts done" in line and "waiting on hung (" in line for line in lines)
    assert lines[-1].endswith("waiting on hung (1 s)")


def test_track_stops_its_ticker_when_the_run_is_cancelled() -> None:
    tty = FakeTty()
    p = Progress(["a"], True, stream=tty)

    async def run() -> int:
        task = asyncio.ensure_future(p.track(asyncio.sleep(60)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        drawn = len(tty.lines())
        await asyncio.sleep(0.6)
        assert len(tty.lines()) == drawn  # no ticker left behind
        return len(asyncio.all_tasks())

    assert asyncio.run(run()) == 1


def test_a_real_terminal_of_unknown_width_gets_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new pty reports 0 columns: the line is fitted to 80, not cut to nothing."""
    monkeypatch.delenv("COLUMNS")
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as term:
        p = Progress(["kvm07"], True, stream=term, slow_after_s=0.0, clock=Clock())
        p.start(0)
        p.draw()
        p.finish()
    drawn = b""
    # A pty may hand the bytes over in pieces.
    while drawn.count(b"\r\x1b[K") < 2 and select.select([master], [], [], 10)[0]:
        drawn += os.read(master, 4096)
    os.close(master)
    assert drawn.decode() == (
        "\r\x1b[Kfleetmon: 0/1 hosts done, 0 failed, 0.0 s; waiting on kvm07 (0 s)\r\x1b[K"
    )
