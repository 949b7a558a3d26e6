"""The terminal around `fleetmon top`'s screen (I/O edge): whether curses can draw on it,
the size it says it has and its resizes, the encoding its locale gives the text, and the
keys typed at it."""

from __future__ import annotations

import codecs
import contextlib
import curses
import locale
import os
import signal
import sys
from typing import Any

from fleetmon.cli.common import env_size


def addressable() -> bool:
    """Whether $TERM names a terminal curses can draw a screen on (moving the cursor): an
    unset or unknown TERM made curses fail ("setupterm: could not find terminal"), and a
    dumb one draws nothing useful."""
    try:
        curses.setupterm(fd=sys.stdout.fileno())
    except curses.error:
        return False
    return curses.tigetstr("cup") is not None


def screen_size_env() -> None:
    """$COLUMNS and $LINES for the screen: one that is not a size (`abc`, `-5`, `0`) is
    removed, as curses would ignore it; one larger than the terminal (which says its size)
    is removed too: a screen larger than the window cannot be shown, and ncurses could
    not even allocate one of 99999 x 99999 cells (it exited, "Error opening terminal")."""
    try:
        real = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        real = os.terminal_size((0, 0))
    for name, have in (("COLUMNS", real.columns), ("LINES", real.lines)):
        value = env_size(name)
        if name in os.environ and (value is None or 0 < have < value):
            del os.environ[name]


def frame_width() -> int:
    """The width of a plain frame (`--batch`, and the screen's fallbacks: a window under 5
    rows, a TERM without cursor movement): $COLUMNS; else the terminal's own when standard
    output is one (the fallbacks printed 160 columns into a 60-column window, every line
    wrapped); else (a pipe, a file, a new pty that says 0 columns) 160, as top -b's."""
    asked = env_size("COLUMNS")
    if asked is not None:
        return asked
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 160
    except OSError:
        return 160


def _known(name: str) -> str:
    """Python's name for an encoding; one it does not know taken as ASCII, which every
    terminal shows."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "ascii"


def locale_encoding() -> str:
    """The encoding of the locale's characters (LC_CTYPE, which Python sets from the
    environment at start-up): ANSI_X3.4-1968, ASCII, under LC_ALL=C or POSIX; a bare
    LANG=C is coerced to UTF-8 (PEP 538)."""
    return _known(locale.nl_langinfo(locale.CODESET))


def encoding_of(stdscr: Any) -> str:
    """The encoding curses writes the screen's text in: the locale's (locale_encoding)."""
    return _known(getattr(stdscr, "encoding", "utf-8"))


class Resizes:
    """SIGWINCH noted for the screen's loop, in place of ncurses' handler: that one resized
    only to a size other than the last it had seen, so a burst of resizes that ended there
    (shrunk to a row and back, the terminal's cells lost) was never drawn whole again.

    A count, not a threading.Event: the handler runs in the main thread between two of its
    bytecodes, and Event.set waited for ever on the lock an Event.clear there held."""

    def __init__(self) -> None:
        self.count = 0
        self.seen = 0
        signal.signal(signal.SIGWINCH, self._note)

    def _note(self, signum: int, frame: object) -> None:
        self.count += 1

    def taken(self) -> bool:
        """Whether the terminal was resized since the last call (none lost in between)."""
        if self.seen == self.count:
            return False
        self.seen = self.count
        return True


def resize(stdscr: Any) -> None:
    """The screen at the window's size now (its own, as a resize is the window's), every
    cell to be drawn again at the next refresh."""
    with contextlib.suppress(OSError, curses.error):
        size = os.get_terminal_size(sys.stdout.fileno())
        curses.resizeterm(size.lines, size.columns)
    stdscr.clear()


class Keys:
    """The keys typed, as get_wch gives them: a character (str) or a curses key code (int);
    None when none came within the screen's timeout.

    Under an ASCII-only locale (LC_ALL=C) ncurses' get_wch took a byte over 127 (the UTF-8
    of an "é" typed at the filter) as the start of a character that never completed: every
    key after it was lost, q included. There the keys are read as bytes (getch) and the
    ones over 127 decoded as UTF-8, which terminals send whatever the locale says; bytes
    that are not UTF-8 (a Latin-1 terminal's) are dropped."""

    def __init__(self, stdscr: Any, encoding: str) -> None:
        self.scr = stdscr
        self.as_bytes = encoding == "ascii"
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def read(self) -> int | str | None:
        if not self.as_bytes:
            try:
                got: int | str = self.scr.get_wch()
            except curses.error:
                return None  # no key within the timeout
            return got
        for _ in range(4):  # the bytes of one character, at most four
            key: int = self.scr.getch()
            if not 0x80 <= key <= 0xFF:
                self.utf8.reset()  # a character left incomplete is dropped
                return None if key == -1 else key
            char = self.utf8.decode(bytes([key]))
            if char:
                return char
        return None
