"""Text tables and lines fitted to a width (pure): columns dropped in a stated order, then the
flexible column shortened with an ellipsis, so no line is wider than the terminal.

Widths are counted in terminal columns after `clean` (what a terminal shows for a host's
text), as tabulate aligns them (wcwidth: a CJK character takes two); tabulate's "simple"
format puts two spaces between columns.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from tabulate import tabulate as _tabulate
from wcwidth import wcswidth, wcwidth

ELLIPSIS = "\u2026"
#: Space tabulate's "simple" format puts between two columns.
GAP = 2
#: A shortened column keeps at least this many characters (a host name stays recognisable).
MIN_FLEX = 8


def escape_char(char: str) -> str:
    """A character as a terminal may show it: itself if printable, else its escape."""
    return char if char.isprintable() else repr(char)[1:-1]


def clean(text: object) -> str:
    """Text from a host made safe for a terminal: every non-printable character shown as an
    escape (`\x1b`, `\u202e`): C0/C1 controls, and the format and separator characters that
    reorder or break lines (bidi overrides U+202A-U+202E/U+2066-U+2069, U+2028/U+2029)."""
    s = str(text)
    if s.isprintable():  # nothing to escape: the common case (300,000 cells)
        return s
    return "".join(map(escape_char, s))


def columns(text: str) -> int:
    """The terminal columns `text` takes (a CJK character two, a combining mark none)."""
    if text.isascii():
        return len(text)  # the common case
    n = wcswidth(text)
    return n if n >= 0 else sum(max(wcwidth(c), 0) for c in text)


def fold(text: str, encoding: str) -> str:
    """`text` as a terminal of `encoding` can show it, in the same columns: a character the
    encoding has no bytes for (any non-ASCII one under LC_ALL=C) becomes a `?` in each
    column it takes, as ls(1) shows such names in the C locale, and the ellipsis of a cut a
    `~`. Written as they are, ncurses put its own guesses there and the rows after a name
    of wide characters went out of line; escapes, wider than the character, would too."""
    if text.isascii():
        return text  # the common case, and every encoding a terminal uses has ASCII
    out = []
    for c in text:
        try:
            c.encode(encoding)
        except UnicodeEncodeError:
            c = "~" if c == ELLIPSIS else "?" * max(wcwidth(c), 0)
        out.append(c)
    return "".join(out)


def _head(text: str, room: int) -> str:
    """The longest start of `text` that fits `room` columns."""
    used = 0
    for i, c in enumerate(text):
        used += max(wcwidth(c), 0)
        if used > room:
            return text[:i]
    return text


def cut(text: str, room: int) -> str:
    """The longest start of `text` that fits `room` columns (no mark of the cut)."""
    if text.isascii():
        return text[: max(0, room)]
    return _head(text, room)


def pad(text: str, width: int, right: bool = False) -> str:
    """`text` padded with spaces to `width` columns (on the left when `right`)."""
    fill = " " * max(0, width - columns(text))
    return fill + text if right else text + fill


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` columns, the cut marked with an ellipsis."""
    if columns(text) <= width:
        return text
    if width <= 0:
        return ""
    return (text[: width - 1] if text.isascii() else _head(text, width - 1)) + ELLIPSIS


def tabulate(rows: list[list[str]], headers: list[str], **kw: str | bool) -> str:
    """tabulate, with every cell cleaned of control characters."""
    return _tabulate([[clean(c) for c in r] for r in rows], headers=headers, **kw)  # type: ignore[arg-type]


def _widths(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[int]:
    # tabulate makes a column at least its heading plus two wide (MIN_PADDING).
    return [max([len(h) + GAP, *(columns(r[i]) for r in rows)]) for i, h in enumerate(headers)]


def fit_table(
    rows: list[list[str]],
    headers: list[str],
    width: int | None,
    drop: Sequence[str] = (),
    flex: Sequence[str] = (),
) -> str:
    """A table no wider than `width` (None: as wide as it comes).

    Columns named in `drop` go first, in that order, while the table is too wide; then the
    `flex` columns (a message, a host name) are shortened, in that order, no shorter than
    MIN_FLEX; any line still too wide is cut.
    """
    cells = [[clean(c) for c in r] for r in rows]
    heads = list(headers)
    if width is not None:
        for name in drop:
            if _total(cells, heads) <= width:
                break
            if name in heads and len(heads) > 1:
                i = heads.index(name)
                del heads[i]
                for r in cells:
                    del r[i]
        for name in flex:
            over = _total(cells, heads) - width
            if over <= 0:
                break
            if name in heads:
                i = heads.index(name)
                room = max(_widths(cells, heads)[i] - over, MIN_FLEX, len(heads[i]) + GAP)
                for r in cells:
                    r[i] = shorten(r[i], room)
    text: str = _tabulate(cells, headers=heads, tablefmt="simple", disable_numparse=True)
    if width is None:
        return text
    return "\n".join(shorten(line, width) for line in text.split("\n"))


def _total(cells: Sequence[Sequence[str]], heads: Sequence[str]) -> int:
    widths = _widths(cells, heads)
    return sum(widths) + GAP * (len(widths) - 1)


def fit_line(line: str, width: int | None, indent: str = "") -> list[str]:
    """A line wrapped at `width` columns (continuation lines indented); as it is when None."""
    if width is None or columns(line) <= width:
        return [line]
    if columns(line) != len(line):
        return _wrap_columns(line, width, indent)
    return textwrap.wrap(
        line,
        width,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=True,
    )


def _wrap_columns(line: str, width: int, indent: str) -> list[str]:
    """textwrap.wrap for text of wide characters (textwrap counts characters): words moved
    whole to the next line, a word wider than a line cut by columns."""
    out: list[str] = []
    current = ""
    for chunk in re.findall(r"\s*\S+", line):  # each word with the spaces before it
        if columns(current + chunk) <= width:
            current += chunk
            continue
        if current.strip():
            out.append(current.rstrip())
            current, chunk = indent, chunk.lstrip()
        while chunk and columns(current + chunk) > width:
            # At least one character a line, as textwrap: an indent as wide as the line
            # leaves the rest to the final cut (render_text).
            head = _head(chunk, width - columns(current)) or chunk[0]
            out.append(current + head)
            current, chunk = indent, chunk[len(head) :]
        current += chunk
    if current.strip():
        out.append(current.rstrip())
    return out
