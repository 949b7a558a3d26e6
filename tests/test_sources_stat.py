"""/proc/stat parser and CPU shares on real captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.stat import (
    CpuTimes,
    _max_busy_fast,
    _max_busy_loop,
    cpu_shares,
    max_core_busy_pct,
    parse_stat,
)

DATA = Path(__file__).parent / "data"


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("rel", "ncpu", "total", "ctxt", "btime", "running"),
    [
        (
            "sysstat/root1/proc/stat",
            9,
            CpuTimes(96005, 2578701, 53845, 3617879, 60648, 27891, 25853, 0, 0, 0),
            130465866,
            1555568347,
            2,
        ),
        (
            "sysstat/root5/proc/stat",
            9,
            CpuTimes(99497, 2590985, 56814, 2987296, 58317, 28246, 26106, 100, 150, 25),
            138969137,
            1555568347,
            5,
        ),
        # Cut to 7 columns (pre-2.6.11): steal, guest, guest_nice are absent, not 0.
        (
            "sysstat/root6/proc/stat",
            10,
            CpuTimes(94891, 2581673, 52704, 2909475, 58343, 27927, 25855),
            130465866,
            1555568347,
            2,
        ),
        (
            "prometheus-procfs/proc/stat",
            8,
            CpuTimes(301854, 612, 111922, 8979004, 3552, 2, 3944, 0, 0, 0),
            38014093,
            1418183276,
            2,
        ),
        # Stored with CRLF line endings.
        (
            "go-sysinfo/providers/linux/testdata/ubuntu1710/proc/stat",
            4,
            CpuTimes(2277627, 0, 1464379, 1303119903, 200372, 0, 27401, 0, 0, 0),
            888692448,
            1518838073,
            None,
        ),
        (
            "insights-core/proc_stat-PROC_STAT.txt",
            8,
            CpuTimes(32270961, 89036, 23647730, 1073132344, 1140756, 0, 1522035, 18738206, 0, 0),
            17852681,
            1542179825,
            None,
        ),
    ],
)
def test_parse_stat(
    rel: str, ncpu: int, total: CpuTimes, ctxt: int, btime: int, running: int | None
) -> None:
    st = parse_stat(read(rel))
    assert len(st.cpus) == ncpu
    assert st.total == total
    assert (st.ctxt, st.btime) == (ctxt, btime)
    if running is not None:
        assert st.procs_running == running


@pytest.mark.parametrize(
    "rel",
    [
        "go-sysinfo/providers/linux/testdata/fedora30/proc/stat",
        "gopsutil/cpu/testdata/linux/424/proc/stat",
    ],
)
def test_other_stat_captures_parse(rel: str) -> None:
    st = parse_stat(read(rel))
    assert st.cpus[0][0] == "cpu0"
    assert st.intr_total is not None


def test_seven_columns_give_no_steal_share() -> None:
    s6 = parse_stat(read("sysstat/root6/proc/stat"))
    s7 = parse_stat(read("sysstat/root7/proc/stat"))
    shares = cpu_shares(s6.total, s7.total)
    assert shares is not None
    assert shares.steal_pct is None
    assert shares.guest_pct is None
    parts = (
        shares.user_pct + shares.nice_pct + shares.system_pct + shares.idle_pct
        + (shares.iowait_pct or 0) + (shares.irq_pct or 0) + (shares.softirq_pct or 0)
    )  # fmt: skip
    assert parts == pytest.approx(100.0)


def test_guest_is_taken_out_of_user_and_nice() -> None:
    prev = CpuTimes(100, 100, 0, 0, 0, 0, 0, 0, 0, 0)
    cur = CpuTimes(200, 150, 0, 50, 0, 0, 0, 0, 60, 10)
    shares = cpu_shares(prev, cur)
    assert shares is not None
    # T = 100 + 50 + 50 = 200; user 100-60, nice 50-10, guest 60+10
    assert (shares.user_pct, shares.nice_pct, shares.guest_pct) == (20.0, 20.0, 35.0)
    assert shares.busy_pct == 75.0


def test_no_tick_gives_none() -> None:
    t = CpuTimes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    assert cpu_shares(t, t) is None


def test_hotplugged_cpu_is_left_out_of_max_core() -> None:
    s1 = parse_stat(read("sysstat/root1/proc/stat"))
    s2 = parse_stat(read("sysstat/root2/proc/stat"))
    busiest, one_side = max_core_busy_pct(s1, s2)
    assert one_side == ("cpu8",)
    # mpstat: CPU 3 is 99.55 nice, 0.00 idle, 0.00 iowait
    assert busiest == pytest.approx(100.0)


#: Every /proc/stat capture: paired each with each, counters go up, down or stay, CPUs come
#: and go, and the 7-column kernels leave columns out.
_STAT_CAPTURES = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("proc/stat"))


@pytest.mark.parametrize("second", _STAT_CAPTURES)
@pytest.mark.parametrize("first", _STAT_CAPTURES)
def test_max_core_busy_is_the_per_cpu_loop_s_figure(first: str, second: str) -> None:
    """The column-at-a-time path gives the loop's figure, to the last bit, or leaves it to
    the loop."""
    a, b = parse_stat(read(first)), parse_stat(read(second))
    assert repr(max_core_busy_pct(a, b)) == repr(_max_busy_loop(a, b))


def test_max_core_busy_takes_the_column_path_on_usual_samples() -> None:
    a = parse_stat(read("sysstat/root1/proc/stat"))
    b = parse_stat(read("sysstat/root5/proc/stat"))
    assert [n for n, _ in a.cpus] == [n for n, _ in b.cpus]
    fast = _max_busy_fast(a, b)
    assert fast is not None
    assert (fast, ()) == _max_busy_loop(a, b)
    # Seven columns (no steal): the loop's case.
    old = parse_stat(read("sysstat/root6/proc/stat"))
    assert _max_busy_fast(old, parse_stat(read("sysstat/root7/proc/stat"))) is None
    assert _max_busy_fast(a, a) is None  # no tick passed: no CPU counts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "section stat: no aggregate 'cpu' line"),
        ("cpu  1 2 3\n", "section stat: cpu: expected at least 4 tick columns, got 3"),
        (
            "cpu  1 2 x 4\n",
            "section stat: cpu column 3: expected an unsigned integer, got 'x'",
        ),
        ("cpu  1 2 3 4\nctxt\n", "section stat: ctxt: no value"),
        ("cpu  1 2 3 4\nbtime -5\n", "section stat: btime: expected an unsigned integer, got '-5'"),
    ],
)
def test_garbled_stat(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as err:
        parse_stat(text)
    assert str(err.value) == message
    assert err.value.section == "stat"


def test_busy_is_never_below_zero() -> None:
    """idle 1 tick and iowait 2 of 3: 100 - 33.33... - 66.66... is -1.4e-14 in floats (top
    showed -0.0, /metrics a negative ratio); busy is 0."""
    a = parse_stat("cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")
    b = parse_stat("cpu  0 0 0 1 2 0 0 0 0 0\ncpu0 0 0 0 1 2 0 0 0 0 0\n")
    shares = cpu_shares(a.total, b.total)
    assert shares is not None
    assert shares.busy_pct == 0.0
    assert max_core_busy_pct(a, b)[0] == 0.0
    c = parse_stat("cpu  0 0 0 1 2 0 0 0 0 0\ncpu0 0 0 0 1 2 0 0 0 0 0\ncpu0 0 0 0 1 2 0 0 0 0 0\n")
    assert max_core_busy_pct(a, c)[0] == 0.0  # the loop's way (a CPU named twice)
