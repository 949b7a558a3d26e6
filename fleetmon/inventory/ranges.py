"""Inventory stage: host names with ranges (`web[01:20]`, `[a:f]`, `[1:9:2]`) and ports (pure).

Follows Ansible's `expand_hostname_range` and `_expand_hostpattern` (inventory/helpers and
plugins/inventory/__init__.py), but refuses what Ansible silently mangles: an empty range,
multi-letter bounds, a zero step.
"""

from __future__ import annotations

import re
import string

#: Hosts one inventory may have: twice the 50,000-host inventories the project benchmarks,
#: ten times the 10,000 hosts a run is sized for (issue 15). Past it is a typo
#: (`web[1:1000000]`) or a hostile file, refused before a name is built.
#: FLEETMON_MAX_HOSTS sets another number (inventory.load).
MAX_HOSTS = 100_000
RAISE_HINT = "FLEETMON_MAX_HOSTS sets another limit"
_LETTERS = string.ascii_letters  # Ansible's alphabet: a..z then A..Z, so [x:B] is legal
# host:port where the host part has no ':' outside [...] (a bare IPv6 address has several).
_HOST_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])+):(\d+)$")
_BRACKETED_V6 = re.compile(r"^\[([0-9A-Fa-f:.]+(?:%\w+)?)\](?::(\d+))?$")
_MAX_BOUND_DIGITS = 30  # more than any range that fits the limit needs

#: One range: its letters, or its numbers and their zero-padded width.
_Range = str | tuple[range, int]


class RangeError(ValueError):
    """A host pattern that cannot be expanded; the message says why."""


def _fill(beg: str, end: str) -> int:
    """The zero-padding width of a numeric range: `[01:20]` pads to 2, `[1:20]` not at all."""
    if beg.startswith("0") and len(beg) > 1:
        if len(beg) != len(end):
            raise RangeError(f"range [{beg}:{end}] must have equal-length begin and end")
        return len(beg)
    return 0


def _sequence(beg: str, end: str, step_text: str | None) -> _Range:
    try:
        step = int(step_text) if step_text is not None else 1
    except ValueError:
        raise RangeError(f"range step {step_text!r} is not an integer") from None
    if step < 1:
        raise RangeError(f"range step must be at least 1, got {step}")
    if len(beg) == 1 and len(end) == 1 and beg in _LETTERS and end in _LETTERS:
        i_beg, i_end = _LETTERS.index(beg), _LETTERS.index(end)
        if i_beg > i_end:
            raise RangeError(f"range [{beg}:{end}] has begin after end")
        return _LETTERS[i_beg : i_end + 1 : step]
    if not (beg.isdecimal() and end.isdecimal()):
        raise RangeError(f"range [{beg}:{end}] bounds must be integers or single letters")
    if max(len(beg), len(end)) > _MAX_BOUND_DIGITS:
        raise RangeError(f"range [{beg}:{end}] bounds have more than {_MAX_BOUND_DIGITS} digits")
    width = _fill(beg, end)
    numbers = range(int(beg), int(end) + 1, step)
    if not numbers:
        raise RangeError(f"range [{beg}:{end}] is empty")
    return numbers, width


def _size(seq: _Range) -> int:
    if isinstance(seq, str):
        return len(seq)
    numbers = seq[0]
    return (numbers.stop - 1 - numbers.start) // numbers.step + 1  # len() overflows past 2**63


def _parse(pattern: str) -> tuple[list[str], list[_Range]]:
    """The pattern's literal parts and, between them, its ranges (len(parts) = ranges + 1)."""
    parts: list[str] = []
    ranges: list[_Range] = []
    rest = pattern
    while "[" in rest:
        head, _, after = rest.partition("[")
        inner, closed, rest = after.partition("]")
        if "]" in head:
            raise RangeError(f"unbalanced ']' in {pattern!r}")
        if not closed or "[" in inner:
            raise RangeError(f"unbalanced '[' in {pattern!r}")
        bounds = inner.split(":")
        if len(bounds) not in (2, 3):
            raise RangeError(f"range [{inner}] must be [begin:end] or [begin:end:step]")
        beg, end = bounds[0] or "0", bounds[1]  # Ansible: an empty begin means 0
        if not end:
            raise RangeError(f"range [{inner}] has no end")
        parts.append(head)
        ranges.append(_sequence(beg, end, bounds[2] if len(bounds) == 3 else None))
    if "]" in rest:
        raise RangeError(f"unbalanced ']' in {pattern!r}")
    parts.append(rest)
    return parts, ranges


def _names(seq: _Range) -> list[str]:
    if isinstance(seq, str):
        return list(seq)
    numbers, width = seq
    return [str(n).zfill(width) for n in numbers]


def expand_range(pattern: str, limit: int = MAX_HOSTS) -> list[str]:
    """Every name a pattern with `[begin:end(:step)]` ranges stands for, in Ansible's order.

    RangeError, before any name is built, when there would be more than `limit`.
    """
    if "[" not in pattern and "]" not in pattern:
        return [pattern]
    parts, ranges = _parse(pattern)
    count = 1
    for seq in ranges:
        count *= _size(seq)
    if count > limit:
        raise RangeError(
            f"{pattern!r} expands to {count:,} hosts, more than the {limit:,} an inventory may "
            f"have ({RAISE_HINT})"
        )
    # Later ranges are expanded inside each name of the first one, as Ansible does.
    names = [parts[0]]
    for seq, text in zip(ranges, parts[1:], strict=True):
        items = _names(seq)
        names = [f"{name}{item}{text}" for name in names for item in items]
    return names


def split_port(pattern: str) -> tuple[str, int | None]:
    """`host:2222` -> ("host", 2222); a bare IPv6 address or a plain name keeps no port."""
    m = _BRACKETED_V6.match(pattern)
    # A real IPv6 address has '::' or 7 colons; "[1:9:2]" alone is a stepped range.
    if m and ("::" in m.group(1) or m.group(1).count(":") == 7):
        return m.group(1), _port(m.group(2)) if m.group(2) else None
    m = _HOST_PORT.match(pattern)
    if m:
        return m.group(1), _port(m.group(2))
    if pattern.endswith(":"):
        raise RangeError(f"host {pattern!r} ends in ':' (reserved for a port number)")
    return pattern, None


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise RangeError(f"port {port} is not in 1-65535")
    return port


def expand_host_pattern(pattern: str, limit: int = MAX_HOSTS) -> tuple[list[str], int | None]:
    """The host names (at most `limit`) and the optional port of one inventory host entry."""
    if not pattern.strip():
        raise RangeError("empty host name")
    if "[" not in pattern and "]" not in pattern and ":" not in pattern:
        return [pattern], None  # the common case, 50,000 times in a big inventory
    base, port = split_port(pattern)
    return expand_range(base, limit), port
