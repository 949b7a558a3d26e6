"""`fleetmon top` in a real pseudo-terminal read through pyte (a VT100 emulator), against a
simulated fleet: hosts shown, sorting changes the order, filter, drill-in, the VMs view,
resizing stays readable, q exits and gives the terminal back; `--batch` prints plain text."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import resource
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pyte
import pytest

from fleetmon.collect.runner import FD_RESERVE, FDS_PER_LOCAL_HOST
from tests.livesim import FLEETMON, simulated_fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with simulated_fleet(
        tmp_path_factory.mktemp("top"), hosts=12, faults="unreachable=1",
        extra=("--containers", "2"),
    ) as inv:  # fmt: skip
        yield inv


class _Screen(pyte.Screen):
    """pyte's screen, with REP (`CSI n b`: the last character drawn, n times more; ECMA-48
    8.3.103), which ncurses sends where xterm's terminfo has `rep` and pyte ignored: a run
    of one letter in a name came out one character long and every cell after it moved."""

    last = " "

    def draw(self, data: str) -> None:
        if data:
            self.last = data[-1]
        super().draw(data)

    def repeat_last(self, count: int = 1, *args: object, **kwargs: object) -> None:
        self.draw(self.last * max(1, count))


class _Stream(pyte.ByteStream):
    csi: ClassVar[dict[str, str]] = {**pyte.ByteStream.csi, "b": "repeat_last"}


class Tty:
    """fleetmon top on the slave side of a pty; the master side fed to pyte."""

    def __init__(
        self, argv: list[str], rows: int = 24, cols: int = 80, term: str | None = "xterm",
        extra_env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.master, self.slave = pty.openpty()
        self._winsize(rows, cols)
        self.attrs_before = termios.tcgetattr(self.slave)
        env = {**os.environ, "TERM": term or "", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        if term is None:
            del env["TERM"]
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            argv, stdin=self.slave, stdout=self.slave, stderr=subprocess.PIPE,
            env=env, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )  # fmt: skip
        self.screen = _Screen(cols, rows)
        self.stream = _Stream(self.screen)
        self.raw = bytearray()

    def _winsize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(rows, cols)
        self._winsize(rows, cols)  # the kernel sends SIGWINCH to the foreground group
        os.killpg(self.proc.pid, signal.SIGWINCH)

    def pump(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                break
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            self.raw += data
            self.stream.feed(data)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def wait_for(self, cond: Callable[[list[str]], bool], limit_s: float = 30.0) -> list[str]:
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            self.pump(0.2)
            if cond(self.lines()):
                return self.lines()
        raise AssertionError("screen never matched:\n" + "\n".join(self.lines()))

    def assert_restored(self) -> None:
        """curses left the alternate screen and the line discipline is back as it was."""
        self.pump(0.3)
        raw = bytes(self.raw)
        assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h") > -1
        assert termios.tcgetattr(self.slave) == self.attrs_before

    def key(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        os.close(self.master)
        os.close(self.slave)


def _rows(lines: list[str]) -> list[list[str]]:
    """The table's rows under its HOST/VM/CONTAINER heading, split into cells."""
    start = next(i for i, ln in enumerate(lines) if re.match(r"^(HOST|VM|CONTAINER) ", ln))
    out = []
    for ln in lines[start + 1 :]:
        if not ln.strip() or ln.startswith("h help") or ln.startswith("q quit"):
            break
        out.append(ln.split())
    return out


def _column(lines: list[str], head: str) -> list[float]:
    """A numeric column's figures (right-aligned: each ends where its heading ends)."""
    heading = next(ln for ln in lines if re.match(r"^(HOST|VM|CONTAINER) ", ln))
    end = re.search(rf"(?<!\S){re.escape(head)}(?!\S)", heading)
    assert end is not None, heading
    start = next(i for i, ln in enumerate(lines) if ln == heading)
    vals = []
    for ln in lines[start + 1 :]:
        if not ln.strip() or ln.startswith(("h help", "q quit")):
            break
        if "UNREACHABLE" in ln or "SKIPPED" in ln:
            continue
        cell = ln[: end.end()].split()[-1]
        vals.append(-1.0 if cell == "-" else float(cell))
    return vals


def _live(lines: list[str]) -> bool:
    """11 of the 12 hosts live, in the title and in the rows alike: under load the pty's
    bytes come in pieces, and a frame half drawn had the new title over the old rows (a
    host still UNREACHABLE while connecting: 10 CPU figures, not 11)."""
    m = re.search(r"hosts 12: (\d+) live", "\n".join(lines))
    if m is None or int(m.group(1)) != 11 or len(_rows(lines)) < 11:
        return False
    try:
        return len(_column(lines, "CPU%")) == 11
    except ValueError:  # a cell half drawn
        return False


@pytest.mark.slow
def test_top_in_a_real_terminal(fleet: Path) -> None:
    tty = Tty([FLEETMON, "top", str(fleet), "-d", "0.5", "--no-rules"])
    try:
        lines = tty.wait_for(_live)
        assert lines[0].startswith("fleetmon top - ")
        assert all(len(ln) <= 80 for ln in lines)
        cpu = _column(lines, "CPU%")
        assert len(cpu) == 11
        assert cpu == sorted(cpu, reverse=True)
        by_cpu = [r[0] for r in _rows(lines)]
        # The unreachable host is listed last, with its state and since when.
        assert re.search(r"UNREACHABLE .*refused \(down since 20\d\d-", lines[3 + 12]) or any(
            "UNREACHABLE" in ln and "down since" in ln for ln in lines
        )

        tty.key("M")  # top's memory sort
        lines = tty.wait_for(lambda ls: "by MEM%" in "\n".join(ls) and _live(ls))
        mem = _column(lines, "MEM%")
        assert mem == sorted(mem, reverse=True)
        assert [r[0] for r in _rows(lines)] != by_cpu

        tty.key("/kvm\r")  # filter
        lines = tty.wait_for(lambda ls: "filter: kvm" in "\n".join(ls))
        names = [r[0] for r in _rows(lines)]
        assert names
        assert all("kvm" in n for n in names)

        tty.key("\r")  # drill into the first host (the cursor's)
        lines = tty.wait_for(lambda ls: any(ln.startswith("DISK ") for ln in ls))
        assert any(ln.startswith(names[0]) for ln in lines)
        tty.key("\x1b")  # back
        tty.wait_for(lambda ls: any(ln.startswith("HOST ") for ln in ls))

        tty.key("/\rv")  # filter cleared, VMs view
        lines = tty.wait_for(
            lambda ls: any(ln.startswith("VM ") for ln in ls) and len(_rows(ls)) > 5
        )
        vcpu = _column(lines, "%CPU")
        assert vcpu == sorted(vcpu, reverse=True)
        # Sorting steps right through the columns to virt-top's RXPK, past what 80 columns
        # show: the column sorted by is shown all the same, in order.
        tty.key(">" * 10)
        lines = tty.wait_for(lambda ls: "vms by RXPK desc" in "\n".join(ls) and len(_rows(ls)) > 5)
        assert all(len(ln) <= 80 for ln in lines)
        rxpk = _column(lines, "RXPK")
        assert rxpk == sorted(rxpk, reverse=True)
        assert rxpk[0] > 0  # a KVM guest's packets first; Xen's unknown (-) last
        tty.key("P")

        tty.resize(16, 60)
        lines = tty.wait_for(
            lambda ls: any(ln.startswith("VM ") for ln in ls) and len(_rows(ls)) >= 5
            and "%CPU" in next(ln for ln in ls if ln.startswith("VM "))
        )  # fmt: skip
        assert all(len(ln) <= 60 for ln in lines)
        head = next(ln for ln in lines if ln.startswith("VM ")).split()
        assert {"%CPU", "MEM"} <= set(head)
        assert all(len(cells) == len(head) for cells in _rows(lines))  # no wrapped rows

        tty.key("v")  # the third view: the fleet's containers, as podman stats shows them
        lines = tty.wait_for(
            lambda ls: any(ln.startswith("CONTAINER ") for ln in ls) and len(_rows(ls)) >= 5
        )
        assert all(len(ln) <= 60 for ln in lines)
        assert "containers by CPU% desc" in lines[1]
        head = next(ln for ln in lines if ln.startswith("CONTAINER ")).split()
        assert {"CPU%", "MEM"} <= set(head)
        cpu = _column(lines, "CPU%")
        assert cpu == sorted(cpu, reverse=True)

        tty.key("q")
        assert tty.proc.wait(timeout=15) == 0
        tty.assert_restored()
    finally:
        tty.close()


@pytest.mark.slow
def test_batch_frames_are_plain_text(fleet: Path) -> None:
    cmd = [FLEETMON, "top", str(fleet), "--batch", "-n", "2", "-d", "0.5", "--no-rules"]
    out = subprocess.run(
        cmd, capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "120"}
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "\x1b" not in text
    frames = ["fleetmon top - " + f for f in text.split("fleetmon top - ")[1:]]
    assert len(frames) == 2
    for frame in frames:
        lines = frame.splitlines()
        assert all(len(ln) <= 120 for ln in lines)
        assert "hosts 12: 11 live" in lines[0]
        assert sum(1 for ln in lines if re.match(r"(kvm|xen|linux)\d{4} ", ln)) == 12
        cpu = _column(lines, "CPU%")
        assert cpu == sorted(cpu, reverse=True)
        assert len(cpu) == 11


@pytest.mark.slow
def test_without_a_terminal_top_prints_frames(fleet: Path) -> None:
    """Standard output a pipe, no --batch: plain frames all the same, no escapes."""
    cmd = [FLEETMON, "top", str(fleet), "-n", "1", "-d", "0.5", "--view", "vms", "--no-rules"]
    out = subprocess.run(
        cmd, capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "100"}
    )
    assert out.returncode == 0, out.stderr
    assert b"\x1b" not in out.stdout
    assert out.stdout.decode().count("fleetmon top - ") == 1
    assert re.search(r"^VM +HOST +STATE +%CPU +%VCPU +DELAY%", out.stdout.decode(), re.M)


def _frame_80(fleet: Path, view: str, *sort: str) -> list[str]:
    """One `top --batch` frame of `view` sorted by `sort` (no rules) in an 80-column
    terminal, its lines, each checked to fit."""
    cmd = [FLEETMON, "top", str(fleet), "-b", "-n", "1", "-d", "0.5", "--view", view, *sort,
           "--no-rules"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert all(len(ln) <= 80 for ln in lines)
    return lines


@pytest.mark.slow
def test_batch_vms_sorted_by_packets_in_80_columns(fleet: Path) -> None:
    lines = _frame_80(fleet, "vms", "--sort", "txpk")
    assert "vms by TXPK desc" in lines[1]
    txpk = _column(lines, "TXPK")
    assert txpk == sorted(txpk, reverse=True)
    rows = _rows(lines)
    # KVM guests count packets (virsh domstats net.N.tx.pkts); xentop has none: "-".
    assert all(float(r[-1]) >= 0 for r in rows if r[1].startswith("kvm") and r[2] == "running")
    assert any(float(r[-1]) > 0 for r in rows if r[1].startswith("kvm") and r[2] == "running")
    assert [r[-1] for r in rows if r[1].startswith("xen")] == ["-"] * sum(
        1 for r in rows if r[1].startswith("xen")
    )


@pytest.mark.slow
def test_batch_containers_sorted_by_memory_in_80_columns(fleet: Path) -> None:
    """`podman stats` across the fleet: the simulator's Linux and KVM hosts run two
    containers each (Docker on cgroup v2, Podman on v1); the down host has none."""
    lines = _frame_80(fleet, "containers", "-o", "mem")
    assert "containers by MEM desc" in lines[1]
    assert re.search(r"  VMs \d+  containers \d+$", lines[1])
    rows = _rows(lines)
    hosts = {r[1] for r in rows}
    assert hosts
    assert all(h.startswith(("linux", "kvm")) for h in hosts)
    assert len(rows) == 2 * len(hosts)
    assert {r[2] for r in rows} == {"docker", "podman"}
    assert {r[3] for r in rows} <= {"running", "paused"}
    assert re.match(
        r"^CONTAINER +HOST +RUNTIME +STATE +CPU% ", next(ln for ln in lines if "RUNTIME" in ln)
    )


def test_sort_option_with_an_unknown_column_is_refused(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    h1:\n      ansible_connection: local\n")
    cmd = [FLEETMON, "top", str(inv), "-b", "-n", "1", "--sort", "NOPE"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 4
    assert out.stdout == ""
    assert out.stderr.startswith(
        "fleetmon: error: --sort: the hosts view has no column 'NOPE' (columns: HOST,"
    )
    assert len(out.stderr.splitlines()) == 1


@pytest.mark.slow
def test_live_xen_guests_show_xentop_vbd_oo_sorted(tmp_path: Path) -> None:
    """The streaming loop runs xentop in place of its sleep on Xen: the live VMs view has the
    guests' VBD_OO (the simulator's moves with their writes) and disk rates, sorted by it."""
    with simulated_fleet(tmp_path, hosts=4, kind="xen") as inv:
        cmd = [FLEETMON, "top", str(inv), "-b", "-n", "1", "-d", "1", "--view", "vms",
               "--sort", "vbd_oo", "--no-rules"]  # fmt: skip
        env = {**os.environ, "COLUMNS": "80"}
        out = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert "vms by VBD_OO desc" in lines[1]
    assert all(len(ln) <= 80 for ln in lines)
    oo = _column(lines, "VBD_OO")
    assert len(oo) > 5
    assert oo == sorted(oo, reverse=True)
    assert oo[0] > 0


def test_hosts_past_the_open_file_limit_are_not_watched_and_say_why(tmp_path: Path) -> None:
    """Live hosts hold their descriptors for good: past the limit each connection failed
    with EMFILE surfacing as whatever was being opened ("Unknown local username": the
    passwd file). Now the hosts that fit are watched and the others say why."""
    inv = tmp_path / "inv.yaml"
    hosts = "".join(f"    h{i}:\n      ansible_connection: local\n" for i in range(5))
    inv.write_text(f"all:\n  hosts:\n{hosts}")
    limit = FD_RESERVE + 2 * FDS_PER_LOCAL_HOST  # room for two local hosts

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    out = subprocess.run(
        [FLEETMON, "top", str(inv), "-b", "-n", "3", "-d", "0.5", "--no-rules"],
        capture_output=True, text=True, timeout=120, preexec_fn=low_limit,
        env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    why = f"not watched: the open-file limit ({limit}, ulimit -n) holds 2 of 5 hosts' connections"
    assert f"fleetmon: WARNING fleetmon.collect.stream: 3 hosts {why}" in out.stderr
    last = out.stdout.split("fleetmon top - ")[-1].splitlines()
    assert "hosts 5: 2 live, 3 skipped" in last[0]  # not waiting: they never will be
    rows = {ln.split()[0]: ln for ln in last if re.match(r"h\d ", ln)}
    assert sorted(rows) == ["h0", "h1", "h2", "h3", "h4"]
    assert all(why in rows[h] for h in ("h2", "h3", "h4"))
    assert not any("not watched" in rows[h] for h in ("h0", "h1"))


def test_without_a_terminal_on_stdin_top_prints_frames_not_a_busy_screen(tmp_path: Path) -> None:
    """stdout a terminal, stdin not (`< /dev/null`): curses' getch returned at once and the
    screen redrew in a loop, a whole core. Now plain frames, as `top -b`, at the tick."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [FLEETMON, "top", str(inv), "-d", "1", "--no-rules"], stdin=subprocess.DEVNULL,
        stdout=slave, stderr=subprocess.PIPE, env={**os.environ, "TERM": "xterm"},
    )  # fmt: skip
    raw = b""
    try:
        end = time.monotonic() + 60
        while raw.count(b"fleetmon top - ") < 4 and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                raw += os.read(master, 65536)
        stat = Path(f"/proc/{proc.pid}/stat").read_text().split()
        cpu_s = (int(stat[13]) + int(stat[14])) / os.sysconf("SC_CLK_TCK")
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        os.close(master)
        os.close(slave)
    assert raw.count(b"fleetmon top - ") >= 4, raw
    assert b"\x1b[?1049h" not in raw  # no full screen
    # Four 1 s ticks of one host: start-up and a few analyses, nowhere near a busy core.
    frames = raw.count(b"fleetmon top - ")
    assert cpu_s < 0.5 * frames + 3.0, (cpu_s, frames)


@pytest.mark.parametrize("term", [None, "no-such-terminal", "dumb"])
def test_a_terminal_type_curses_cannot_draw_on_gets_plain_frames(
    tmp_path: Path, term: str | None
) -> None:
    """TERM unset or unknown was an internal error (curses: "setupterm: could not find
    terminal"); dumb drew blanks. Now a warning and plain frames, -n honoured."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    tty = Tty([FLEETMON, "top", str(inv), "-d", "0.5", "-n", "2", "--no-rules"], term=term)
    try:
        assert tty.proc.wait(timeout=60) == 0
        tty.pump(0.5)
        assert tty.proc.stderr is not None
        err = tty.proc.stderr.read().decode()
    finally:
        tty.close()
    said = f"TERM={term} is not a terminal type with cursor movement" if term else "no TERM"
    assert (
        err
        == f"fleetmon: warning: {said}: plain frames as with --batch (set TERM, e.g. TERM=xterm)\n"
    )
    assert bytes(tty.raw).count(b"fleetmon top - ") == 2
    assert b"\x1b[" not in bytes(tty.raw)


@pytest.mark.parametrize("how", ["kill -HUP", "terminal closed"])
def test_a_hang_up_ends_top_cleanly(tmp_path: Path, how: str) -> None:
    """SIGHUP killed top with the terminal left raw (`kill -HUP`); a terminal closed under
    it was an internal error (curses' nocbreak() failing on the way out). Now both end as
    SIGTERM does: exit 129, the terminal's modes restored where it is still there."""
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    tty = Tty([FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"])
    try:
        tty.wait_for(lambda ls: ls[0].startswith("fleetmon top - "))
        if how == "kill -HUP":
            tty.proc.send_signal(signal.SIGHUP)
        else:
            os.close(tty.master)
            tty.master = os.open(os.devnull, os.O_RDONLY)  # for close()
        assert tty.proc.wait(timeout=30) == 129
        assert tty.proc.stderr is not None
        assert tty.proc.stderr.read().decode() == "fleetmon: interrupted (exit 129)\n"
        if how == "kill -HUP":
            tty.assert_restored()
    finally:
        tty.close()


def test_the_filter_takes_a_non_ascii_name(tmp_path: Path) -> None:
    """getch gave a UTF-8 letter as its bytes, which the prompt dropped: `/café` filtered on
    `caf`. get_wch gives the letter."""
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    café:\n      ansible_connection: local\n"
        "    other:\n      ansible_connection: local\n",
        encoding="utf-8",
    )
    tty = Tty([FLEETMON, "top", str(inv), "-d", "0.5", "--no-rules"])
    try:
        tty.wait_for(lambda ls: "hosts 2: 2 live" in ls[0])
        tty.key("/café\r")
        lines = tty.wait_for(lambda ls: "filter: café" in ls[1])
        assert [r[0] for r in _rows(lines)] == ["café"]
        tty.key("q")
        assert tty.proc.wait(timeout=15) == 0
    finally:
        tty.close()
