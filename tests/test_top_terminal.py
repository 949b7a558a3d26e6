"""`fleetmon top` in a real pseudo-terminal (pyte) where the terminal is not the usual one:
an ASCII-only locale (LC_ALL=C) with names that are not ASCII, in the screen and the frames."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from random import Random

import pytest
import reportfactory as rf

from fleetmon.model import Status
from fleetmon.render.textfit import ELLIPSIS, fold
from fleetmon.render.top import ViewState, frame
from tests.livesim import FLEETMON, simulated_fleet
from tests.test_top import Tty, _rows

#: Host names as an inventory may hold them: accented and CJK letters (one and two columns
#: each), a bidi override (shown escaped, as clean() shows it), one longer than the window.
NAMES = ("café-主机", "bidi\u202egnp.exe", "x" * 200, "plain")


def _inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.yaml"
    hosts = "".join(f"    {json.dumps(n)}:\n      ansible_connection: local\n" for n in NAMES)
    inv.write_text(f"all:\n  hosts:\n{hosts}", encoding="utf-8")
    return inv


def test_fold_keeps_the_columns_a_character_takes() -> None:
    assert fold("café-主机", "ascii") == "caf?-????"
    assert fold("café-主机", "utf-8") == "café-主机"
    assert fold("café", "latin-1") == "café"  # a letter the encoding has stays
    assert fold("e\u0301x", "ascii") == "ex"  # a combining mark takes no column
    assert fold(f"long{ELLIPSIS}", "ascii") == "long~"
    assert fold("plain ascii", "ascii") == "plain ascii"


def test_an_ascii_only_locale_gets_ascii_in_its_columns(tmp_path: Path) -> None:
    """LC_ALL=C: ncurses wrote é, the CJK letters and the cut's ellipsis as it guessed (bytes
    a C terminal shows as garbage, and fewer columns than the names take): every row after
    them went out of line, figures written over each other."""
    env = {"LANG": "C", "LC_ALL": "C"}
    argv = [FLEETMON, "top", str(_inventory(tmp_path)), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=12, cols=80, extra_env=env)
    try:
        lines = tty.wait_for(lambda ls: "hosts 4: 4 live" in ls[0] and len(_rows(ls)) == 4, 60)
        start = bytes(tty.raw).rfind(b"\x1b[?1049h")
        assert start > -1
        assert bytes(tty.raw)[start:].isascii()  # nothing a C terminal cannot show
        head = next(ln for ln in lines if ln.startswith("HOST "))
        end = head.index("CPU%") + len("CPU%")
        at = lines.index(head) + 1
        rows = {ln.split()[0]: ln for ln in lines[at : at + 4]}  # the window's last: h help
        assert sorted(rows) == ["bidi\\u202egnp.exe", "caf?-????", "plain", "x" * 19 + "~"]
        for name, row in rows.items():
            assert len(row) <= 80, row
            # Each figure ends under its heading: no row shifted by what came before it.
            assert re.fullmatch(r"\d+\.\d", row[:end].split()[-1]), (name, row, head)
            assert row[end] == " ", (name, row, head)
        tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        tty.assert_restored()
    finally:
        tty.close()


def test_plain_frames_to_an_ascii_only_terminal_are_ascii(tmp_path: Path) -> None:
    """`top -b` to a terminal under LC_ALL=C wrote the names' UTF-8 bytes to it (Python's
    UTF-8 mode, PEP 540), while the screen folds them; to a pipe they stay UTF-8, as every
    other output of fleetmon."""
    inv = _inventory(tmp_path)
    argv = [FLEETMON, "top", str(inv), "-b", "-n", "1", "-d", "0.5", "--no-rules"]
    env = {"LANG": "C", "LC_ALL": "C", "COLUMNS": "100"}
    tty = Tty(argv, rows=40, cols=100, extra_env=env)
    try:
        assert tty.proc.wait(timeout=60) == 0
        tty.pump(0.5)
    finally:
        tty.close()
    raw = bytes(tty.raw)
    assert raw.isascii(), raw
    rows = {ln.split()[0]: ln for ln in raw.decode().splitlines()[4:] if ln.strip()}
    long = max(rows, key=len)
    assert re.fullmatch(r"x{20,}~", long)  # cut, with the ASCII mark of a cut
    assert sorted(rows) == ["bidi\\u202egnp.exe", "caf?-????", "plain", long]
    ends = {ln.index("100.0") for ln in rows.values() if "100.0" in ln}
    assert len(ends) <= 1, rows  # the CPU% figures in one column
    piped = subprocess.run(argv, capture_output=True, timeout=60, env={**os.environ, **env})
    assert piped.returncode == 0, piped.stderr
    assert "café-主机 " in piped.stdout.decode()


@pytest.mark.slow
def test_hosts_that_drop_mid_run_say_since_when_in_a_narrow_terminal(tmp_path: Path) -> None:
    """A down host's reason ends with since when (cli/live.py's link_words): in 50 columns
    the row was cut inside "connect to 127.x.y.z:PORT refused", the since-when gone. Now
    the words before it are shortened and the bracket kept."""
    tty = None
    try:
        with simulated_fleet(tmp_path, hosts=2, kind="linux") as inv:
            argv = [FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"]
            tty = Tty(argv, rows=12, cols=50)
            tty.wait_for(lambda ls: "hosts 2: 2 live" in ls[0], 60)
        # The simulator stopped: both hosts dropped mid-run.
        lines = tty.wait_for(lambda ls: sum("UNREACHABLE" in ln for ln in ls) == 2, 60)
        rows = [ln for ln in lines if ln.startswith("linux")]
        assert len(rows) == 2, lines
        for row in rows:
            assert len(row) <= 50, row
            # 50 columns leave room for the time alone (the date is the report's).
            assert re.search(r"UNREACHABLE \(down since \d\d:\d\d:\d\dZ\)$", row), row
        tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        tty.assert_restored()
    finally:
        if tty is not None:
            tty.close()


@pytest.mark.parametrize(
    ("width", "reason"),
    [
        (120, "connect to 10.0.0.7:22 refused (down since 2026-11-25T23:10:04Z; retry in 4 s)"),
        (80, "connect to 10… (down since 2026-11-25T23:10:04Z; retry in 4 s)"),
        (70, "connect to 10.0.0… (down since 2026-11-25T23:10:04Z)"),
        (52, "(down since 2026-11-25T23:10:04Z)"),
    ],
)
def test_a_down_host_s_since_when_outlives_its_reason(width: int, reason: str) -> None:
    """Pure: the reason's words shortened first, then the next try; the date kept when it
    is not the report's (reportfactory's run is 2026-11-26)."""
    said = "connect to 10.0.0.7:22 refused (down since 2026-11-25T23:10:04Z; retry in 4 s)"
    report = rf.report([rf.failed("db-01", Status.UNREACHABLE, said), rf.host("ok", Random(1))])
    lines = [ln.text for ln in frame(report, ViewState(), width, 20, "03:00:00")]
    row = next(ln for ln in lines if ln.startswith("db-01 "))
    assert row == f"db-01 UNREACHABLE {reason}"
    assert len(row) <= width
    today = said.replace("2026-11-25", "2026-11-26")
    report = rf.report([rf.failed("db-01", Status.UNREACHABLE, today)])
    row = next(
        ln.text for ln in frame(report, ViewState(), 52, 20, "03:00:00") if "db-01" in ln.text
    )
    assert row == "db-01 UNREACHABLE connect to… (down since 23:10:04Z)"


def _title_counts(ls: list[str]) -> bool:
    return re.search(r"hosts 3: 2 live, 1 down$", ls[0]) is not None and len(_rows(ls)) == 3


@pytest.mark.slow
def test_a_40_column_terminal_keeps_the_host_counts_through_a_resize_storm(
    tmp_path: Path,
) -> None:
    """40x10: the title's first line was cut inside "(ticks 0.5-1.0 s)" (a Xen host's whole
    seconds), the hosts' counts gone. Then a burst of resizes down to 1 row and up to 300
    columns: no crash, the counts back, q exits, the terminal as it was."""
    with simulated_fleet(tmp_path, hosts=3, faults="unreachable=1") as inv:
        argv = [FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"]
        tty = Tty(argv, rows=10, cols=40)
        try:
            lines = tty.wait_for(_title_counts, 60)
            assert all(len(ln) <= 40 for ln in lines)
            assert lines[0] == "fleetmon top  hosts 3: 2 live, 1 down"  # the clock gone
            head = next(ln for ln in lines if ln.startswith("HOST ")).split()
            assert head[:3] == ["HOST", "HEALTH", "CPU%"]
            for rows, cols in [(5, 20), (1, 80), (24, 300), (2, 5), (60, 1)] * 10:
                tty.resize(rows, cols)
            tty.resize(10, 40)
            lines = tty.wait_for(_title_counts, 60)
            assert all(len(ln) <= 40 for ln in lines)
            tty.key("q")
            assert tty.proc.wait(timeout=30) == 0
            tty.assert_restored()
            raw = bytes(tty.raw)
            assert raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")  # the cursor shown
            assert tty.proc.stderr is not None
            assert tty.proc.stderr.read() == b""
        finally:
            tty.close()


def test_ctrl_z_gives_the_terminal_back_and_fg_draws_the_screen_again(tmp_path: Path) -> None:
    """Ctrl-Z: stopped with the terminal as it was (modes, main screen, cursor shown), so
    the shell is usable; `fg`: the screen drawn whole again; q still ends it with 0."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    shell = str(Path(__file__).with_name("jobshell.py"))
    argv = [sys.executable, shell, FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=12, cols=80)
    try:
        tty.wait_for(lambda ls: "hosts 1: 1 live" in ls[0] and len(_rows(ls)) == 1, 60)
        m = re.search(rb"child (\d+)", bytes(tty.raw))
        assert m is not None
        mark = len(tty.raw)
        tty.key("\x1a")  # Ctrl-Z: the line discipline sends SIGTSTP to the job
        tty.wait_for(lambda ls: b"stopped\r\n" in bytes(tty.raw[mark:]), 30)
        assert Path(f"/proc/{int(m.group(1))}/stat").read_text().split()[2] == "T"
        tty.assert_restored()
        raw = bytes(tty.raw)
        assert raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")
        tty.screen.reset()  # blank: what follows must draw every line again
        tty.proc.send_signal(signal.SIGUSR1)  # fg
        lines = tty.wait_for(lambda ls: "hosts 1: 1 live" in ls[0] and ls[4].startswith("a "), 30)
        assert lines[3].startswith("HOST ")
        tty.key("q")
        tty.wait_for(lambda ls: b"exited 0\r\n" in bytes(tty.raw), 30)
        tty.assert_restored()
    finally:
        tty.close()
