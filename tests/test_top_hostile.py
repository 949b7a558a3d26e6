"""`fleetmon top`'s frames with what a hostile or merely foreign host sends: terminal escapes
in every name and reason (shown escaped, as the other outputs show them, in every column
of every view), and wide characters (cut by terminal columns, never past the window)."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
from pathlib import Path

import pytest
import reportfactory as rf
from hostilesim import EVIL, EVIL_SHOWN

from fleetmon.model import Report, Row, Severity, Status
from fleetmon.render.textfit import columns
from fleetmon.render.top import VIEWS, ViewState, frame, items
from tests.livesim import FLEETMON, simulated_fleet
from tests.test_top import Tty


def _evil(what: str) -> str:
    return f"{what}{EVIL}\r\n\u202e"


def _hostile_host() -> Report:
    """A host whose every string from the host carries escapes: its disks and NICs (the
    busiest of each), VMs and their state, containers and their runtime, findings, and a
    host down with an escaped reason."""
    rng = random.Random(3)
    vms = [rf.vm(_evil("vm"), rng, cpu_pct=90.0), rf.vm("ok-vm", rng)]
    vms[0] = dataclasses.replace(vms[0], metrics={**vms[0].metrics, "vm.state": _evil("run")})
    finding = rf.finding(
        _evil("rule"), Severity.CRITICAL, "vm", _evil("vm"), "vm.cpu_pct", 90.0, "> 80"
    )
    host = rf.host(_evil("kvm"), rng, vms=vms, findings=[finding])
    ctr = Row(_evil("ctr"), {"ctr.cpu_pct": 50.0, "ctr.mem_bytes": 2**30}, {"runtime": EVIL})
    rows = {
        **host.rows,
        "disk": (*host.rows["disk"], rf.disk(_evil("sd"), 99.9, rng)),
        "nic": (*host.rows["nic"], rf.nic(_evil("eth"), 9e9, 9e9)),
        "ctr": (ctr,),
    }
    host = dataclasses.replace(host, rows=rows)
    down = rf.failed(_evil("gone"), Status.COMMAND_FAILED, _evil("probe loop exited 1: sh: "))
    return rf.report([host, down])


@pytest.mark.parametrize("view", VIEWS)
def test_every_column_of_every_view_shows_host_text_escaped(view: str) -> None:
    """The DISK and NIC columns printed the busiest device's name raw: `top -b` wrote a
    host's escape sequences to the terminal (title set, colours, screen cleared)."""
    report = _hostile_host()
    heads = [c.head for c in ViewState(view=view).columns()]
    for sort in heads:
        for width in (40, 80, 200, 1000):
            state = ViewState(view=view, sort=sort, pattern="")
            lines = [ln.text for ln in frame(report, state, width, 60, "12:00:00")]
            assert len(lines) > 4
            for line in lines:
                assert line.isprintable(), (view, sort, width, line)
                assert columns(line) <= width
    wide = [ln.text for ln in frame(report, ViewState(view=view), 1000, 60, "12:00:00")]
    assert any(EVIL_SHOWN in ln for ln in wide), wide  # shown, escaped: not dropped
    for host in report.hosts:  # the host drilled into
        state = ViewState(view=view, host=host.name)
        for line in frame(report, state, 1000, 60, "12:00:00"):
            assert line.text.isprintable(), line
    if view == "hosts":
        # The busiest disk and NIC, cut to their columns (14 and 16), escaped.
        assert any("sd\\x1b]0;PWNE~" in ln for ln in wide), wide
        assert any("eth\\x1b]0;PWNED~" in ln for ln in wide), wide
    assert items(report, ViewState(view=view))  # the view has rows to show


def test_wide_names_are_cut_by_terminal_columns() -> None:
    """A CJK character takes two columns: rows of wide names were cut and padded by
    characters, running past the window's edge (curses wrapped them onto the next line)."""
    rng = random.Random(4)
    vms = [rf.vm("中" * 30, rng), rf.vm("e\u0301" * 30, rng), rf.vm("vm", rng)]
    report = rf.report([rf.host("主机" * 10, rng, vms=vms), rf.host("plain", rng)])
    for view in VIEWS:
        for width in (20, 41, 80, 161):
            for line in frame(report, ViewState(view=view), width, 40, "12:00:00"):
                assert columns(line.text) <= width, (view, width, line.text)
    head, *rows = [
        ln.text for ln in frame(report, ViewState(view="vms"), 80, 40, "12:00:00")[3:] if ln.text
    ]
    assert head.startswith("VM ")
    # The %CPU column lines up under its heading whatever the width of the names before it.
    end = columns(head[: head.index("%CPU") + 4])
    at_cpu = head.split().index("%CPU")
    for row in rows:
        cpu = row.split()[at_cpu]
        at = columns(row[: row.index(f" {cpu} ") + 1 + len(cpu)])
        assert at == end, (row, head)


@pytest.mark.slow
def test_top_batch_shows_a_hostile_nic_name_escaped(tmp_path: Path) -> None:
    """A host's NIC name carrying an OSC title, SGR colours, clear-screen and a C1 CSI:
    `top -b` wrote it raw to the terminal."""
    with simulated_fleet(tmp_path, hosts=2, kind="linux", hostile="nic") as inv:
        cmd = [FLEETMON, "top", str(inv), "-b", "-n", "1", "-d", "0.5", "--no-rules"]
        out = subprocess.run(
            cmd, capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "300"}
        )
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "hosts 2: 2 live" in text
    for bad in ("\x1b", "\x07", "\x9b"):
        assert bad not in text
    assert "\\x1b]0;PWNED\\x0~" in text  # the busiest NIC, escaped, cut to its column


@pytest.mark.slow
def test_a_filter_of_wide_characters_wider_than_the_window(tmp_path: Path) -> None:
    """Twelve CJK characters typed at `/` in a 20-column terminal: addnstr counts
    characters, not columns, and the prompt ran past the bottom-right cell: curses raised
    (`addnwstr() returned ERR`), internal error, exit 70."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    tty = Tty([FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"], rows=10, cols=20)
    try:
        tty.wait_for(lambda ls: ls[0].startswith("fleetmon top"))
        tty.key("/" + "中" * 12)
        tty.wait_for(lambda ls: ls[-1].startswith("filter: 中"))
        tty.key("\r")
        lines = tty.wait_for(lambda ls: "filter: 中" in "\n".join(ls[:2]) or ls[-1] == "h help")
        assert tty.proc.poll() is None, lines
        tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        assert tty.proc.stderr is not None
        assert b"internal error" not in tty.proc.stderr.read()
        tty.assert_restored()
    finally:
        tty.close()
