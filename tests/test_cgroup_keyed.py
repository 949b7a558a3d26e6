"""The probe's cgroup lines read as columns (sources/cgroupcols.py): a key's values of plain
numbers read by one C call, `max` or sums by a few (_quick), give what reading each value
on its own gives (the same numbers, or the same error); runs of lines are merged (v1
mounts) or joined by path; what is cut short or malformed is refused, the file or the
path named."""

from __future__ import annotations

import re

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sim.containers import as_keyed, render_counters, render_gauges, with_containers
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sources import cgroupcols
from fleetmon.sources.cgroupcols import Columns, read_columns

HEX = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
A, B = f"system.slice/docker-{HEX}.scope", f"system.slice/docker-{OTHER}.scope"
HEAD = "#cgroup keyed v2\n"


def _read(text: str, one_by_one: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        if one_by_one:  # no quick way can take a run or a column
            m.setattr(cgroupcols, "_whole", lambda joined, keys, width: None)
            m.setattr(cgroupcols, "_DIGITS", b"")
            m.setattr(cgroupcols, "_quick", lambda key, values: None)
        try:
            return read_columns(text, "cgroup")
        except ProbeParseError as exc:
            return str(exc)


#: Values put in a column beside a plain number (each must be read as one by one reads it).
ODD = ("5", "max", "1+2", "1+2+3", "", "+1", "1_0", "\u0661", "\u00b2", "9" * 20, "9" * 21,
       "0" * 25 + "1", "-5", "-", "1+", "+", "1++2", "x", "1\r", "\u0661+2", "007")  # fmt: skip


@pytest.mark.parametrize("key", ["m", "l", "r", "zz"])
@pytest.mark.parametrize("odd", range(len(ODD)))
def test_every_way_reads_a_column_as_one_by_one_does(
    monkeypatch: pytest.MonkeyPatch, key: str, odd: int
) -> None:
    for first, second in ((ODD[odd], "7"), ("7", ODD[odd]), ("max", ODD[odd])):
        text = f"{HEAD}#k p {key}\n{A}\t1 {first}\n{B}\t2 {second}\n"
        assert _read(text, False, monkeypatch) == _read(text, True, monkeypatch)


def test_what_each_way_gives() -> None:
    text = f"{HEAD}#k m l r w zz yy pcs\n{A}\t1 max 1+2+3 4 5 x 042\n{B}\t2 5 0 0 6 1 100\n"
    assert read_columns(text) == Columns(2, [A, B], {
        "m": [1, 2], "l": [None, 5], "r": [6, 0], "w": [4, 0], "zz": [5, 6], "pcs": [42, 100],
    })  # fmt: skip  # yy: a later probe's key whose values are not numbers, passed over
    with pytest.raises(ProbeParseError, match=r"memory.current: malformed value 'x' of 'system"):
        read_columns(text.replace("\t2 5", "\tx 5"))


def test_simulated_sections_take_the_one_call_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the awk prints of a usual host (the simulator's, v2 and v1): a whole run by one
    call (_whole), `max` too, no column and no value one at a time."""
    hosts = with_containers(make_fleet(2, "linux", 1, {}, endpoints("127.0.1.1", 2, 22, 1)), 8, 1)
    monkeypatch.setattr(cgroupcols, "_column", lambda *a: pytest.fail(f"a column: {a[0]}"))
    for h in hosts:
        for text in (render_counters(h, h.uptime_at_start_s + 10), render_gauges(h)):
            cols = read_columns(text)
            assert len(cols.paths) == 8
            assert all(None not in v for k, v in cols.values.items() if k != "l")


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("1 max 3", {"m": [1, 2], "l": [None, 5], "r": [3, 6]}),  # by _whole
        ("1 max 03", {"m": [1, 2], "l": [None, 5], "r": [3, 6]}),  # a leading zero: by columns
        ("1 max 3+4", {"m": [1, 2], "l": [None, 5], "r": [7, 6]}),  # a sum: by columns
        ("1 max 3++4", "io.stat: malformed value '3++4'"),
        ("max 1 3", "memory.current: malformed value 'max'"),  # `max` where no key has it
        ("1 1maxmax 3", "memory.max: malformed value '1maxmax'"),
        (f"{'9' * 21} 1 3", "memory.current: malformed value '999"),
        ("1  3", "memory.max: malformed value ''"),
    ],
)
def test_a_run_by_one_call_or_by_columns(rest: str, expected: object) -> None:
    text = f"{HEAD}#k m l r\n{A}\t{rest}\n{B}\t2 5 6\n"
    if isinstance(expected, str):
        with pytest.raises(ProbeParseError, match=re.escape(expected)):
            read_columns(text)
    else:
        assert read_columns(text) == Columns(2, [A, B], expected)


def test_runs_are_merged_or_joined_by_path() -> None:
    """v1: a run a mount of the same paths, merged (a later run's key wins); a run of
    other paths (a container without I/O among others, mawk's re-read of each directory)
    joined by path, None where a cgroup has no value; lines before the first keys and
    lines without a tab (a shell's message) passed over."""
    mounts = f"#cgroup keyed v1\n#k np nt\n{A}\t1 3\n{B}\t2 4\n#k ca np\n{A}\t5 9\n{B}\t6 8\n"
    cols = read_columns(mounts)
    assert (cols.version, cols.paths) == (1, [A, B])
    assert cols.values == {"np": [9, 8], "nt": [3, 4], "ca": [5, 6]}
    joined = read_columns(
        f"{HEAD}{A}\t7\nsh: 1: a message\n#k u r w\n{A}\t1 2 3\nawk: another\n#k u\n{B}\t4\n"
    )
    assert (joined.paths, joined.values) == ([A, B], {"u": [1, 4], "r": [2, None], "w": [3, None]})
    assert read_columns(HEAD) == Columns(2, [], {})
    twice = read_columns(f"{HEAD}#k m\n{A}\t1\n{A}\t2\n")  # one path twice: the later wins
    assert (twice.paths, twice.values) == ([A], {"m": [2]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"#k m p\n{A}\t1\n", f"1 values for 2 keys of '{A}'"),
        (f"#k m p\n{A}\t1 2\n{B}\t1 2 3\n", f"3 values for 2 keys of '{B}'"),
        (f"#k m p\n{A}\t1  2\n", f"3 values for 2 keys of '{A}'"),
        (f"#k m p\n{A}\t1 2\t3\n", r"pids.current: malformed value '2\\t3'"),
        (f"#k u r\n{A}\t1 -2\n", "io.stat: malformed value '-2'"),
        (f"#k l\n{A}\t{'9' * 21}\n", "memory.max: malformed value"),
        (f"#k m p\n{A}\t1 \n", "pids.current: malformed value ''"),
    ],
)
def test_a_garbled_section_names_the_file_or_path(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError, match=message):
        read_columns(HEAD + text, "cgroup_mem")


def test_as_keyed_prints_what_the_awk_prints() -> None:
    """The simulator's printer (sim/containers.as_keyed), from lines as the awk read them,
    a v1 container's mounts one each."""
    lines = [f"{A}\tnp=1 nt=2", f"{B}\tnp=3 nt=4", f"{A}\tca=5"]
    assert as_keyed(1, lines) == (
        f"#cgroup keyed v1\n#k np nt\n{A}\t1 2\n{B}\t3 4\n#k ca\n{A}\t5\n"
    )
    assert as_keyed(2, []) == HEAD


def test_a_line_without_a_tab_and_one_with_two_do_not_shift_values() -> None:
    """Two garbled lines whose tabs add up to one a line: still read line by line (the
    first passed over, the second's values malformed), never one container's values on
    another."""
    with pytest.raises(ProbeParseError, match=r"cpu.stat: malformed value 'C\\t3000' of '999000'"):
        read_columns(f"{HEAD}#k u\n{A}\t2000\nB\n999000\tC\t3000\n")
    cols = read_columns(f"{HEAD}#k u\n{A}\t2000\nsh: a message\n{B}\t3000\n")
    assert (cols.paths, cols.values) == ([A, B], {"u": [2000, 3000]})


@pytest.mark.parametrize(
    "text", ["#k u np\n", f"#k u np\n#k u\n{A}\t5\n", f"#k u\n{A}\t5\n#k np\n", "#k u\n\n"]
)
def test_keys_without_lines_are_passed_over(text: str) -> None:
    cols = read_columns(HEAD + text)
    assert cols.values == ({"u": [5]} if A in text else {})


def test_crlf_lines_read_as_lf_lines() -> None:
    text = f"#cgroup keyed v1\n#k u p\n{A}\t1 3\n{B}\t2 4\n"
    assert read_columns(text.replace("\n", "\r\n")) == read_columns(text)
    assert read_columns(text.replace("\n", "\r\n")).version == 1
