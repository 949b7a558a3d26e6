"""`fleetmon top` in a real pseudo-terminal (pyte), where the last hunt left it short: a
down host's reason in the host drilled into and in a 40-column row, non-ASCII typed into
the filter under LC_ALL=C, and the plain frame of a window too short for the screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import reportfactory as rf

from fleetmon.model import Status
from fleetmon.render.top import ViewState, frame
from tests.livesim import FLEETMON, simulated_fleet
from tests.test_top import Tty, _rows

#: Where a down host's reason ends (cli/live.py's link_words): since when, the next try.
_WHEN = re.compile(r"\(down since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; retry in \d+ s\)")


def _down(ls: list[str]) -> bool:
    return re.search(r"hosts 2: 1 live, 1 down$", ls[0]) is not None


@pytest.mark.slow
@pytest.mark.parametrize("cols", [80, 40])
def test_a_down_host_drilled_into_shows_its_reason_whole(tmp_path: Path, cols: int) -> None:
    """Enter on a down host: its reason was one line cut at the window's edge, inside the
    address in 40 columns and inside its since-when in 80. Now wrapped over as many lines
    as it takes, since when and the next try included; and its row in the hosts view ends
    with a whole bracket (40 columns: "(down since 05:12" was cut there)."""
    with simulated_fleet(tmp_path, hosts=2, kind="linux", faults="unreachable=1") as inv:
        argv = [FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"]
        tty = Tty(argv, rows=14, cols=cols)
        try:
            lines = tty.wait_for(lambda ls: _down(ls) and "UNREACHABLE" in "\n".join(ls), 60)
            row = next(ln for ln in lines if "UNREACHABLE" in ln)
            assert len(row) <= cols
            assert row.endswith(")"), row
            assert row.count("(") == row.count(")"), row
            tty.key("\x1bOB\r")  # down to it (down hosts sort last; xterm keypad mode), Enter
            lines = tty.wait_for(lambda ls: "unreachable" in "\n".join(ls), 30)
            at = next(i for i, ln in enumerate(lines) if "unreachable" in ln)
            figures = next(i for i, ln in enumerate(lines) if ln.startswith("CPU "))
            said = " ".join(ln.strip() for ln in lines[at:figures])  # the lines it wraps over
            assert re.search(r"unreachable +connect to \S+ refused ", said), lines
            assert _WHEN.search(said), lines
            assert all(len(ln) <= cols for ln in lines)
            tty.key("q")
            assert tty.proc.wait(timeout=30) == 0
            tty.assert_restored()
        finally:
            tty.close()


@pytest.mark.parametrize(
    ("width", "end"),
    [
        (52, "connect to… (down since 23:10:04Z)"),
        (40, "(down since 23:10:04Z)"),
        (38, "(since 23:10:04Z)"),
        (30, ""),
    ],
)
def test_a_narrow_row_ends_its_reason_with_a_whole_bracket(width: int, end: str) -> None:
    """Pure: narrower than "(down since HH:MM:SSZ)" needs, the state's word goes (HEALTH
    says it), then the bracket, rather than cutting inside it."""
    said = "connect to 10.0.0.7:22 refused (down since 2026-11-26T23:10:04Z; retry in 4 s)"
    report = rf.report([rf.failed("db-01", Status.UNREACHABLE, said)])
    lines = [ln.text for ln in frame(report, ViewState(), width, 20, "03:00:00")]
    row = next(ln for ln in lines if ln.startswith("db-01 "))
    assert row.rstrip() == f"db-01 UNREACHABLE {end}".rstrip()
    detail = [ln.text for ln in frame(report, ViewState(host="db-01"), width, 20, "03:00:00")]
    assert all(len(ln) <= width for ln in detail)
    assert " ".join(ln.strip() for ln in detail[3:-1]).endswith(said)  # whole, wrapped


def _accented(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.yaml"
    hosts = "".join(
        f'    "{n}":\n      ansible_connection: local\n' for n in ("café-主机", "plain")
    )
    inv.write_text(f"all:\n  hosts:\n{hosts}", encoding="utf-8")
    return inv


@pytest.mark.slow
def test_non_ascii_typed_into_the_filter_under_an_ascii_only_locale(tmp_path: Path) -> None:
    """LC_ALL=C, a terminal that sends UTF-8 (as terminals do whatever the locale says):
    "é" typed at `/`. The filter matches the names as they are (café-主机, shown as
    caf?-???? in an ASCII-only locale): "é" finds it, and nothing but ASCII reaches the
    terminal."""
    argv = [FLEETMON, "top", str(_accented(tmp_path)), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=12, cols=80, extra_env={"LANG": "C", "LC_ALL": "C"})
    try:
        tty.wait_for(lambda ls: "hosts 2: 2 live" in ls[0] and len(_rows(ls)) == 2, 60)
        mark = len(tty.raw)
        tty.key("/é")
        tty.wait_for(lambda ls: ls[-1].startswith("filter: "), 30)
        tty.key("\r")
        lines = tty.wait_for(lambda ls: "filter: " in ls[1] and ls[-1] == "h help", 30)
        assert tty.proc.poll() is None, lines
        lines = tty.wait_for(lambda ls: [r[0] for r in _rows(ls)] == ["caf?-????"], 30)
        assert "filter: ?" in lines[1], lines  # é, folded as the names are
        assert bytes(tty.raw[mark:]).isascii()
        tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        tty.assert_restored()
    finally:
        tty.close()


@pytest.mark.slow
def test_a_window_too_short_for_the_screen_gets_a_frame_as_wide_as_it(tmp_path: Path) -> None:
    """A 2-row window: one plain frame instead of the screen. It was 160 columns wide
    ($COLUMNS unset, as a shell exports it only to be read), every line wrapped in a
    60-column window; now the window's own width."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    argv = [FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=2, cols=60)
    try:
        tty.wait_for(lambda ls: tty.proc.poll() is not None, 60)
        assert tty.proc.returncode == 0
        tty.pump(0.3)
    finally:
        tty.close()
    lines = bytes(tty.raw).decode().replace("\r\n", "\n").split("\n")
    assert any(ln.endswith("hosts 1: 1 live") for ln in lines), lines
    head = next(ln for ln in lines if ln.startswith("HOST "))
    assert all(len(ln) <= 60 for ln in lines), lines
    assert len(head) > 40, head  # the columns that fit 60, not a cut 160
    assert any(ln.startswith("a ") for ln in lines), lines


def test_the_host_drilled_into_shows_its_notes_folded_escaped_and_counted() -> None:
    """Pure, 80x24: a host's notes (a guest's pairing, containers restarted) were nowhere in
    top. Now under its figures, each folded to the width and escaped as every host-supplied
    value is; more than the room leaves end with "+N more notes"."""
    import random

    pairing = (
        "fleetmon_vm_of names VM kvm-02/web-3, its SMBIOS UUID VM kvm-01/web-7: paired as the"
        " inventory says"
    )
    notes = [pairing, "2 containers restarted: \x1b[31mapi\x1b[0m (3), worker (1)"]
    notes += [f"note {n}" for n in range(3, 9)]
    rng = random.Random(1)
    vms = [rf.vm(f"web-{n}", rng) for n in range(12)]
    host = rf.host("kvm-01", rng, vms=vms, notes=notes)
    lines = frame(rf.report([host]), ViewState(host="kvm-01"), 80, 24, "03:00:00")
    texts = [ln.text for ln in lines]
    assert len(texts) <= 24
    assert all(len(t) <= 80 for t in texts)
    at = next(i for i, t in enumerate(texts) if t.startswith("note: fleetmon_vm_of"))
    said = " ".join(t.strip() for t in texts[at : at + 2])
    assert said == f"note: {pairing}", texts  # folded over two lines, whole
    assert texts[at + 2] == r"note: 2 containers restarted: \x1b[31mapi\x1b[0m (3), worker (1)"
    assert texts[at + 3] == "+6 more notes"
    assert at + 3 == len(texts) - 1  # the tables gave way to the notes
    assert texts[at - 1].startswith("vnet")  # the NICs above them, cut short
    few = rf.host("db-01", rng, groups=("linux",), notes=["1 container restarted: api (1)"])
    texts = [ln.text for ln in frame(rf.report([few]), ViewState(host="db-01"), 80, 24, "x")]
    assert texts[-1] == "note: 1 container restarted: api (1)"


@pytest.mark.slow
def test_a_guest_s_pairing_note_is_seen_in_the_host_drilled_into(tmp_path: Path) -> None:
    """A real `fleetmon top` in 80x24: a guest whose fleetmon_vm_of names a hypervisor not
    in the run has the note saying so under its figures once drilled into (it was only in
    the text report and /api/report)."""
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    guest:\n      ansible_connection: local\n"
        "      fleetmon_vm_of: kvm-9/web-3\n"
        # No virsh: whether this machine runs libvirtd would add a note of its own first.
        "      fleetmon_hypervisor: none\n"
    )
    argv = [FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=24, cols=80)
    try:
        tty.wait_for(lambda ls: "hosts 1: 1 live" in ls[0] and len(_rows(ls)) == 1, 60)
        tty.key("\r")
        lines = tty.wait_for(lambda ls: any(ln.startswith("note: ") for ln in ls), 30)
        at = next(i for i, ln in enumerate(lines) if ln.startswith("note: "))
        said = " ".join(ln.strip() for ln in lines[at:] if ln.strip())
        assert said.startswith(
            "note: fleetmon_vm_of: no host 'kvm-9' in this run: VM 'web-3' not paired"
        ), lines
        assert any(ln.startswith("CPU ") for ln in lines[:at]), lines  # under the figures
        assert all(len(ln) <= 80 for ln in lines)
        tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        tty.assert_restored()
    finally:
        tty.close()
