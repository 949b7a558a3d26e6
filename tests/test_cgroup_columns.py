"""The probe's cgroup columns (sources/cgroupcols.py): a column of plain numbers
read by one C call, one with `-`, `max` or sums by a few (_quick), gives what reading each
value on its own gives (the same numbers, or the same error); blocks (xargs's batches,
mawk's re-read of each directory) are joined by path; and what is cut short or malformed
is refused with the file named."""

from __future__ import annotations

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sim.containers import as_columns, render_counters, render_gauges, with_containers
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sources import cgroupcols
from fleetmon.sources.cgroupcols import Columns, read_columns

HEX = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
A, B = f"system.slice/docker-{HEX}.scope", f"system.slice/docker-{OTHER}.scope"


def _read(text: str, one_by_one: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        if one_by_one:  # neither quick way can take a column
            m.setattr(cgroupcols, "_DIGITS_SPACE", b"")
            m.setattr(cgroupcols, "_quick", lambda key, values: None)
        try:
            return read_columns(text, "cgroup")
        except ProbeParseError as exc:
            return str(exc)


#: Values put in a column beside a plain number (each must be read as one by one reads it).
ODD = ("5", "-", "max", "1+2", "1+2+3", "", "+1", "1_0", "\u0661", "\u00b2", "9" * 20,
       "9" * 21, "0" * 25 + "1", "-5", "1+", "+", "1++2", "x", "1\r", "1\t", "\u0661+2",
       "007")  # fmt: skip


@pytest.mark.parametrize("key", ["m", "l", "r", "zz"])
@pytest.mark.parametrize("odd", range(len(ODD)))
def test_every_way_reads_a_column_as_one_by_one_does(
    monkeypatch: pytest.MonkeyPatch, key: str, odd: int
) -> None:
    for values in ([ODD[odd], "7"], ["7", ODD[odd]], [ODD[odd], "-"], ["max", ODD[odd]]):
        text = f"#cgroup columns v2\nn 2\n{A}\n{B}\np 1 2\n{key} {' '.join(values)}\n"
        assert _read(text, False, monkeypatch) == _read(text, True, monkeypatch)


def test_what_each_way_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        f"#cgroup columns v2\nn 2\n{A}\n{B}\n"
        "m 1 2\nl max 5\nr 1+2+3 -\nw 4 0\nzz 5 -\nyy x 1\npcs 042 100\n"
    )
    cols = read_columns(text)
    assert cols == Columns(2, [A, B], {
        "m": [1, 2], "l": [None, 5], "r": [6, None], "w": [4, 0], "zz": [5, None],
        "pcs": [42, 100],
    })  # fmt: skip  # yy: a later probe's key whose values are not numbers, passed over
    with pytest.raises(ProbeParseError, match=r"memory.current: malformed value 'x' of 'system"):
        read_columns(text.replace("m 1 2", "m 1 x"))


def test_simulated_columns_take_the_one_call_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the awk prints of a usual host (the simulator's, v2 and v1): a column with
    `max` or `-` by _quick, none one value at a time."""
    hosts = with_containers(make_fleet(2, "linux", 1, {}, endpoints("127.0.1.1", 2, 22, 1)), 8, 1)
    monkeypatch.setattr(cgroupcols, "_value", lambda key, value: pytest.fail(f"{key}={value}"))
    for h in hosts:
        for text in (render_counters(h, h.uptime_at_start_s + 10), render_gauges(h)):
            cols = read_columns(text)
            assert len(cols.paths) == 8
            assert all(None not in v for k, v in cols.values.items() if k != "l")


def test_blocks_are_joined_by_path() -> None:
    """xargs's batches, or mawk's re-read of each directory: a block each; a later block's
    value of a key wins, its `-` does not erase one; a shell's message between is passed
    over."""
    text = (
        f"#cgroup columns v1\nn 2\n{A}\n{B}\nnp 1 2\nnt 3 -\n"
        "sh: 1: awk: a message\n"
        f"n 1\n{A}\nca 5\nnp 9\nnt -\n"
    )
    cols = read_columns(text)
    assert (cols.version, cols.paths) == (1, [A, B])
    assert cols.values == {"np": [9, 2], "nt": [3, None], "ca": [5, None]}
    assert read_columns("#cgroup columns v2\n") == Columns(2, [], {})
    # One block naming a path twice is joined as two blocks are.
    twice = read_columns(f"#cgroup columns v2\nn 2\n{A}\n{A}\nm 1 2\n")
    assert (twice.paths, twice.values) == ([A], {"m": [2]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"n 3\n{A}\n{B}\n", "cgroup paths cut short: 2 of 3"),
        (f"n 2\n{A}\n\nm 1 2\n", "cgroup paths cut short"),
        ("n x\n", "malformed count of cgroups 'n x'"),
        (f"n 2\n{A}\n{B}\nm 1\n", "memory.current: 1 values of 'm' for 2 cgroups"),
        (f"n 2\n{A}\n{B}\nm 1 2 3\n", "memory.current: 3 values of 'm' for 2 cgroups"),
        (f"n 2\n{A}\n{B}\nu 1  2\n", "cpu.stat: 3 values of 'u' for 2 cgroups"),
        (f"n 2\n{A}\n{B}\nr 1 -2\n", "io.stat: malformed value '-2'"),
        (f"n 1\n{A}\nl {'9' * 21}\n", "memory.max: malformed value"),
    ],
)
def test_a_garbled_section_names_the_file(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_columns("#cgroup columns v2\n" + text, "cgroup_mem")


def test_as_columns_prints_what_the_awk_prints() -> None:
    """The simulator's printer (sim/containers.as_columns), from lines as the awk read them,
    a v1 container's mounts one each."""
    lines = [f"{A}\tnp=1 nt=2", f"{B}\tnp=3", f"{A}\tca=5 np=9"]
    assert as_columns(1, lines) == (f"#cgroup columns v1\nn 2\n{A}\n{B}\nnp 9 3\nnt 2 -\nca 5 -\n")
    assert as_columns(2, []) == "#cgroup columns v2\n"
