"""`fleetmon top INVENTORY` (I/O edge): a fleet-wide virt-top over the streaming collector.

Full screen with curses (Python's own binding of ncurses: key input, colours, resizing and
restoring the terminal, with no dependency to add; rich's Live draws but reads no keys, and
textual would bring a whole application framework for one table). The screens themselves
are render/top.py's lines. `--batch`, or a standard output that is not a terminal, prints
plain frames like `top -b`: no escape sequences. On a terminal whose locale has no
character for a name's (LC_ALL=C: ASCII only), both show `?` in its columns; a letter
typed at the `/` filter matches the names as they are (cli/topterm.py's Keys).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import curses
import dataclasses
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

from fleetmon.cli.live import LiveFleet, load_plan, run_live
from fleetmon.cli.runtime import Interrupted, run_async
from fleetmon.cli.sources import warn
from fleetmon.cli.topterm import (
    Keys,
    Resizes,
    addressable,
    encoding_of,
    frame_width,
    locale_encoding,
    resize,
    screen_size_env,
)
from fleetmon.errors import OptionError, did_you_mean
from fleetmon.model import Report, Severity
from fleetmon.render.textfit import clean, cut, fold
from fleetmon.render.top import (
    NAME_HEADS,
    SORT_KEYS,
    VIEWS,
    Line,
    ViewState,
    frame,
    items,
)

HELP = (
    "q quit  P cpu  M mem  < > sort column  R reverse  v hosts/VMs/containers  / filter  "
    "Enter drill in  Esc back  space pause  arrows move"
)


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _ready(fleet: LiveFleet, started: float, grace_s: float) -> bool:
    """Every host has its first pair or a failure (or the grace time is over): a first
    frame of "connecting" rows would tell a script nothing."""
    if time.monotonic() - started > grace_s:
        return True
    return all(
        rep is not None or link.state in ("down", "stopped")
        for rep, link in zip(fleet.latest, fleet.links, strict=True)
    )


#: virt-top's `-o` names (virt-top(1): cpu, mem, name, netrx, nettx, blockrdrq,
#: blockwrrq), the hosts' and the containers' views' by name, as their users type them.
_VIRT_TOP_SORT = {
    "vms": {"name": "VM", "netrx": "RXBY", "nettx": "TXBY", "blockrdrq": "RDRQ",
            "blockwrrq": "WRRQ"},
    "hosts": {"name": "HOST", "iowait": "IOW%", "load": "LOAD/C"},
    "containers": {"name": "CONTAINER", "throttled": "THR%", "blockread": "RDBY",
                   "blockwrite": "WRBY"},
}  # fmt: skip


def _bare(heading: str) -> str:
    """A heading as --sort compares it: lower case, letters, digits and _ only."""
    return "".join(c for c in heading.lower() if c.isalnum() or c == "_")


def first_state(args: argparse.Namespace) -> ViewState:
    """The view and sort the screen starts with: --view, --sort (a column's heading, any
    case, with or without its % and /, or virt-top's -o name) or top's CPU column;
    OptionError for a column the view does not have."""
    sort = SORT_KEYS["P"][args.view]
    if args.sort:
        heads = [c.head for c in ViewState(view=args.view).columns()]
        wanted = _VIRT_TOP_SORT.get(args.view, {}).get(args.sort.lower(), args.sort)
        # The heading as typed first: the containers view has both MEM and MEM%.
        match = [h for h in heads if h.lower() == wanted.lower()]
        match = match or [h for h in heads if _bare(h) == _bare(wanted)]
        if not match:
            raise OptionError(
                f"--sort: the {args.view} view has no column {args.sort!r}"
                f"{did_you_mean(_bare(args.sort), [_bare(h) for h in heads])}"
                f" (columns: {', '.join(heads)})"
            )
        sort = match[0]
    # Names A to Z, as virt-top's -o name; figures the largest first, as top's.
    return ViewState(view=args.view, sort=sort, ascending=sort in NAME_HEADS)


def batch(args: argparse.Namespace, fleet: LiveFleet) -> int:
    """`--batch -n COUNT`: COUNT plain-text frames, one per tick, then exit 0."""
    width = frame_width()  # an unusable $COLUMNS ignored, as curses does
    printed = 0
    started = time.monotonic()
    grace_s = args.connect_timeout + 3 * args.delay
    stop: asyncio.Event | None = None
    # To a terminal, what its locale shows (LC_ALL=C: ASCII), as the screen; to a pipe or a
    # file, UTF-8 (Python's, PEP 540), as fleetmon's other outputs.
    encoding = locale_encoding() if sys.stdout.isatty() else "utf-8"

    def on_tick(report: Report) -> None:
        nonlocal printed
        if not _ready(fleet, started, grace_s):
            return
        state = first_state(args)
        rows = len(items(report, state)) + 2
        lines = frame(report, state, width, rows + 3, _clock())
        text = "\n".join(ln.text.rstrip() for ln in lines)
        sys.stdout.write(fold(text, encoding) + "\n\n")
        sys.stdout.flush()
        printed += 1
        if args.count and printed >= args.count and stop is not None:
            stop.set()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        await run_live(fleet, stop, on_tick)

    run_async(main())
    return 0


class _Loop:
    """The collector's event loop in a thread of its own; the screen reads snapshots."""

    def __init__(self, fleet: LiveFleet) -> None:
        self.fleet = fleet
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="fleetmon-collect", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop = asyncio.Event()
            await run_live(self.fleet, self.stop)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # shown by the screen's thread
            self.error = exc
        finally:
            self.loop.close()

    def __enter__(self) -> _Loop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.fleet.stop_soon()  # at once: the loop's thread may be in a long step
        deadline = time.monotonic() + 5
        while self.stop is None and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=10)


_COLOURS = {Severity.CRITICAL: 1, Severity.WARNING: 2, Severity.UNKNOWN: 3}


def _attr(line: Line) -> int:
    attr = curses.A_NORMAL
    if line.severity is not None and curses.has_colors():
        attr |= curses.color_pair(_COLOURS.get(line.severity, 0))
    if line.severity is Severity.CRITICAL:
        attr |= curses.A_BOLD
    if line.kind == "head":
        attr |= curses.A_REVERSE if line.kind == "head" else 0
    if line.kind == "cursor":
        attr |= curses.A_REVERSE | curses.A_BOLD
    return attr


class Screen:
    """The curses front end: keys change a ViewState, each tick or key redraws."""

    def __init__(self, stdscr: Any, fleet: LiveFleet, state: ViewState) -> None:
        self.scr = stdscr
        self.fleet = fleet
        self.state = state
        self.report: Report | None = None
        self.prompt: str | None = None  # the filter being typed
        self.help = False
        self.encoding = encoding_of(stdscr)
        self.resizes = Resizes()
        self.keys = Keys(stdscr, self.encoding)

    def _put(self, y: int, text: str, width: int, attr: int = curses.A_NORMAL) -> None:
        """One line, cut to `width` terminal columns: addnstr counts characters, and a
        CJK character takes two columns (past the last cell, ncurses returns ERR). A cell
        ncurses counts wider than wcwidth does is given up, not an error. Folded to what the
        locale's encoding has (LC_ALL=C: ASCII), in the same columns."""
        with contextlib.suppress(curses.error):
            self.scr.addnstr(y, 0, fold(cut(text, width), self.encoding), width, attr)

    def draw(self) -> None:
        height, width = self.scr.getmaxyx()
        self.scr.erase()
        if self.report is None:
            self._put(0, f"fleetmon top - {_clock()}  connecting...", width - 1)
        else:
            for y, line in enumerate(
                frame(self.report, self.state, width - 1, height - 1, _clock())
            ):
                self._put(y, line.text, width - 1, _attr(line))
        bottom = HELP if self.help else "h help"
        if self.prompt is not None:
            bottom = f"filter: {clean(self.prompt)}"
        self._put(height - 1, bottom, width - 1, curses.A_DIM)
        self.scr.refresh()

    def _rows(self) -> int:
        return len(items(self.report, self.state)) if self.report is not None else 0

    def _move(self, delta: int) -> None:
        height, _ = self.scr.getmaxyx()
        visible = max(1, height - 5)
        cursor = max(0, min(self._rows() - 1, self.state.cursor + delta))
        offset = self.state.offset
        if cursor < offset:
            offset = cursor
        elif cursor >= offset + visible:
            offset = cursor - visible + 1
        self.state = dataclasses.replace(self.state, cursor=cursor, offset=offset)

    def _sort_step(self, step: int) -> None:
        heads = [c.head for c in self.state.columns()]
        i = heads.index(self.state.sort) if self.state.sort in heads else 0
        self.state = dataclasses.replace(self.state, sort=heads[(i + step) % len(heads)])

    def _drill(self) -> None:
        if self.report is None:
            return
        rows = items(self.report, self.state)
        if rows and 0 <= self.state.cursor < len(rows):
            self.state = dataclasses.replace(self.state, host=rows[self.state.cursor].host.name)

    def _typed(self, key: int) -> None:
        assert self.prompt is not None
        if key in (10, 13, curses.KEY_ENTER):
            self.state = dataclasses.replace(self.state, pattern=self.prompt, cursor=0, offset=0)
            self.prompt = None
        elif key == 27:
            self.prompt = None
        elif key in (curses.KEY_BACKSPACE, 127, 8):
            self.prompt = self.prompt[:-1]
        elif 32 <= key < 127:
            self.prompt += chr(key)

    def key(self, key: int) -> bool:
        """Apply one key; False to quit."""
        if self.prompt is not None:
            self._typed(key)
            return True
        ch = chr(key) if 0 <= key < 256 else ""
        s = self.state
        if ch == "q":
            return False
        if ch in SORT_KEYS:
            self.state = dataclasses.replace(s, sort=SORT_KEYS[ch][s.view], ascending=False)
        elif ch == "<":
            self._sort_step(-1)
        elif ch == ">":
            self._sort_step(1)
        elif ch == "R":
            self.state = dataclasses.replace(s, ascending=not s.ascending)
        elif ch in ("v", "\t"):
            view = VIEWS[(VIEWS.index(s.view) + 1) % len(VIEWS)]
            self.state = ViewState(view=view, sort=SORT_KEYS["P"][view], pattern=s.pattern)
        elif ch == "/":
            self.prompt = ""
        elif ch == " ":
            self.state = dataclasses.replace(s, paused=not s.paused)
        elif ch in ("h", "?"):
            self.help = not self.help
        elif key in (10, 13, curses.KEY_ENTER, curses.KEY_RIGHT):
            self._drill()
        elif key in (27, curses.KEY_LEFT, curses.KEY_BACKSPACE, 127):
            self.state = dataclasses.replace(s, host=None)
        elif key == curses.KEY_DOWN:
            self._move(1)
        elif key == curses.KEY_UP:
            self._move(-1)
        elif key == curses.KEY_NPAGE:
            self._move(10)
        elif key == curses.KEY_PPAGE:
            self._move(-10)
        return True

    def run(self, loop: _Loop) -> None:
        taken = 0.0
        while loop.thread.is_alive() or loop.error is None:
            if loop.error is not None:
                raise loop.error
            if self.resizes.taken():
                resize(self.scr)
            now = time.monotonic()
            if not self.state.paused and now - taken >= self.fleet.args.delay:
                taken = now
                self.report = self.fleet.snapshot()
            self.draw()
            got = self.keys.read()  # waits up to the timeout set in _curses
            if got is None:
                continue
            if isinstance(got, str):
                if self.prompt is not None and ord(got) >= 160 and got.isprintable():
                    self.prompt += got  # a name's non-ASCII letter (getch gave its bytes)
                    continue
                got = ord(got) if ord(got) < 256 else -1
            if got == -1 or got == curses.KEY_RESIZE:
                continue
            if not self.key(got):
                return


def _curses(stdscr: Any, fleet: LiveFleet, state: ViewState) -> None:
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    if curses.has_colors():
        curses.use_default_colors()
        curses.init_pair(1, curses.COLOR_RED, -1)
        curses.init_pair(2, curses.COLOR_YELLOW, -1)
        curses.init_pair(3, curses.COLOR_MAGENTA, -1)
    stdscr.keypad(True)
    stdscr.timeout(250)
    # Esc is a key of its own here: no waiting a second for an escape sequence after it.
    with contextlib.suppress(AttributeError):
        curses.set_escdelay(25)
    with _Loop(fleet) as loop:
        Screen(stdscr, fleet, state).run(loop)


def command(args: argparse.Namespace) -> int:
    """`fleetmon top INVENTORY`: the live screen, or --batch frames."""
    state = first_state(args)  # a wrong --sort before any host is contacted
    fleet = LiveFleet(args, load_plan(args))
    # Keys come from standard input: without a terminal there (`< /dev/null`, cron, a
    # pipe), curses' getch returned at once and the screen redrew in a busy loop.
    if args.batch or not sys.stdout.isatty() or not sys.stdin.isatty():
        return batch(args, fleet)
    if not addressable():
        term = os.environ.get("TERM")
        what = f"TERM={term} is not a terminal type with cursor movement" if term else "no TERM"
        warn(f"{what}: plain frames as with --batch (set TERM, e.g. TERM=xterm)")
        return batch(args, fleet)
    screen_size_env()
    if shutil.get_terminal_size().lines < 5:
        args.count = args.count or 1
        return batch(args, fleet)
    # A hang-up (the terminal closed, `kill -HUP`) ends it as SIGTERM does: the terminal's
    # modes restored on the way out, not left raw.
    signal.signal(signal.SIGHUP, _hang_up)
    try:
        curses.wrapper(_curses, fleet, state)
    except curses.error:
        if not _hung_up.is_set():
            raise
        # The terminal is gone: restoring its modes failed (nocbreak() returned ERR).
        raise Interrupted(128 + signal.SIGHUP) from None
    return 0


#: Set by SIGHUP: a curses error on the way out is then the terminal gone.
_hung_up = threading.Event()


def _hang_up(signum: int, frame: object) -> None:
    _hung_up.set()
    raise Interrupted(128 + signal.SIGHUP)
