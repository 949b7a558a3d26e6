"""What one rule judgement may spend (pure): operations and cells, counted, never timed.

A `when:`/`expr:` expression or a `message:` runs with a Meter. Each loop step, call, filter
and operator is an operation; each string or list it builds, converts or compares is charged
its size in cells (a character, an item, a decimal digit) before the work is done. Past either
limit the judgement stops with BudgetExceeded, and the run goes on without it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from jinja2.runtime import Undefined

#: Operations a judgement may make: loop steps, calls, filters, operators. A shipped rule
#: makes fewer than 20; a loop over a host's 1,000 VM rows a few thousand.
MAX_OPS = 10_000
#: Cells a judgement may build, convert or compare: ~1 MB of text, bounded memory.
MAX_CELLS = 1_000_000
#: A message is one line for a person (and a Nagios status line): 4 KiB is plenty.
MAX_MESSAGE_CHARS = 4096
#: The longest `when:`/`expr:` or `message:` written (the shipped ones: under 200 characters).
#: Compiling costs some 15 µs a character, and a 500 KB message took 600 MB and 7 s.
MAX_SOURCE_CHARS = 16_384
#: Python's own limit for int <-> text conversion (sys.int_info.default_max_str_digits).
MAX_INT_DIGITS = 4300
MAX_INT_BITS = int(MAX_INT_DIGITS / 0.30103)
MAX_EXPONENT = 1000
#: The context key of the Meter. User code cannot name it: `_` names are refused.
METER = "_fleetmon_meter"

_LOG10_2 = 0.30103
_TEXT = frozenset({str})
_PRINTF = re.compile(r"%(?:\([^)]*\))?([#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d*))?)[hlL]?(.)", re.S)
_DIGITS = re.compile(r"\d+")


class BudgetExceeded(Exception):
    """A judgement went past its budget; the message says which part."""

    def __init__(self, what: str) -> None:
        super().__init__(f"expression exceeded its budget ({what})")


def too_many_cells() -> BudgetExceeded:
    """The error for a judgement past MAX_CELLS."""
    return BudgetExceeded(f"more than {MAX_CELLS:,} characters or items")


def too_many_digits() -> BudgetExceeded:
    """The error for a number past MAX_INT_DIGITS (arithmetic on it is quadratic or worse)."""
    return BudgetExceeded(f"a number of more than {MAX_INT_DIGITS:,} digits")


def check_int(value: object) -> None:
    """BudgetExceeded when value is an int of more than MAX_INT_DIGITS digits."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise too_many_digits()


def digits_of_bits(bits: int) -> int:
    """About how many decimal digits a number of `bits` bits has."""
    return int(bits * _LOG10_2) + 1


def too_long(operator: str, left: object, right: object) -> bool:
    """Whether int `left operator right` ("*" or "**") would pass MAX_INT_DIGITS digits."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return False
    if operator == "**":
        bits = left.bit_length() * right if right > 0 else 0
    else:
        bits = left.bit_length() + right.bit_length()
    return digits_of_bits(bits) > MAX_INT_DIGITS


def repeated_size(left: object, right: object) -> int:
    """The length of `text * n` or `list * n` (in either order), else 0."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            return len(seq) * max(count, 0)
    return 0


def printf_widths(fmt: str) -> int:
    """The sum of the widths and precisions in a %-format (`%10s`, `%.3f`).

    ValueError for a `*` width, which takes its size from the data.
    """
    total = 0
    for m in _PRINTF.finditer(fmt):
        if "*" in m.group(1):
            raise ValueError("'*' widths in % formats are not allowed in rules")
        total += sum(int(d) for d in _DIGITS.findall(m.group(1)))
    return total


def spec_widths(spec: str) -> int:
    """The sum of the numbers in a str.format spec (`>10`, `.3f`, `0>8,`): its widths."""
    return sum(int(d) for d in _DIGITS.findall(spec))


class Meter:
    """The budget of one judgement: operations and cells left, and the sizes seen so far."""

    __slots__ = ("_sizes", "cells", "ops")

    def __init__(self) -> None:
        self.ops = MAX_OPS
        self.cells = MAX_CELLS
        # id -> (value, weight): an alias bomb built of shared lists is measured once per
        # list, and the value is kept so its id cannot be reused during the judgement.
        self._sizes: dict[int, tuple[object, int]] = {}

    def step(self, n: int = 1) -> None:
        """Count `n` operations."""
        self.ops -= n
        if self.ops < 0:
            raise BudgetExceeded(f"more than {MAX_OPS:,} operations")

    def take(self, cells: int) -> None:
        """Charge `cells` before building (or converting, comparing) that much."""
        self.cells -= cells
        if self.cells < 0:
            raise too_many_cells()

    def charge(self, value: object) -> None:
        """Charge the weight of a value about to be converted to text or compared."""
        self.take(self.weight(value))

    def weight(self, value: object) -> int:
        """About how many cells a value takes as text: characters, items, digits.

        Shared sublists count every time they appear, as `str()` would print them; each
        distinct list is walked once. BudgetExceeded as soon as the weight is over what is
        left, so the walk itself is bounded.
        """
        if isinstance(value, str | bytes):
            return len(value)
        if value is None or isinstance(value, bool | float):
            return 1
        if isinstance(value, int):
            return digits_of_bits(value.bit_length())
        if isinstance(value, Undefined) or not isinstance(value, list | tuple | dict | Collection):
            return 1  # a loop object, or an Undefined that raises its own error when used
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        total = 1 + len(value)
        if isinstance(value, list | tuple) and set(map(type, value)) <= _TEXT:
            total += sum(map(len, value))  # a list of names (`groups['all']`) at C speed
        else:
            self._sizes[id(value)] = (value, 1)  # a list inside itself counts once
            items = value.items() if isinstance(value, Mapping) else ((x,) for x in value)
            for pair in items:
                for item in pair:
                    total += self.weight(item)
                if total > self.cells:
                    raise too_many_cells()
        if total > self.cells:
            raise too_many_cells()
        self._sizes[id(value)] = (value, total)
        return total
