"""Text tables and lines fitted to a width (pure): columns dropped in a stated order, then the
flexible column shortened with an ellipsis, so no line is wider than the terminal.

Widths are counted in characters after `clean` (what a terminal shows for a host's text);
tabulate's "simple" format puts two spaces between columns.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from tabulate import tabulate as _tabulate

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


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, the cut marked with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def tabulate(rows: list[list[str]], headers: list[str], **kw: str | bool) -> str:
    """tabulate, with every cell cleaned of control characters."""
    return _tabulate([[clean(c) for c in r] for r in rows], headers=headers, **kw)  # type: ignore[arg-type]


def _widths(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[int]:
    # tabulate makes a column at least its heading plus two wide (MIN_PADDING).
    return [max([len(h) + GAP, *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]


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
    """A line wrapped at `width` (continuation lines indented); as it is when None."""
    if width is None or len(line) <= width:
        return [line]
    return textwrap.wrap(
        line,
        width,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=True,
    )
