"""`virsh domstats` read by its shape (pure): a streamed host's records, tick after tick.

A KVM host's domstats differ from one sample to the next in their digits only, until a VM
starts, stops or changes its devices: the same domains, the same keys in the same order.
parse_domstats() checks and splits every line of every record each time (~0.25 ms for a
host of 11 VMs, the streaming collector's largest parse); a Shape, made from a text it
parsed, reads the next text that has the same layout with a few C-speed passes:

- the text without its ASCII digits (`skeleton`) equals the shape's: the same characters
  but digits, so the same whitespace, `=` and letters in the same order;
- no value is empty (no `=` at a line's end) and the text splits into as many tokens as
  the shape's (splitting at whitespace and `=`): a digit in a run of whitespace would make
  one more, and no token can vanish (keys have a non-digit, values are not empty), so
  token N of the text is token N of the shape's text;
- the key tokens (digits included: `vcpu.1.time` is not `vcpu.0.time`) equal the shape's,
  and every name token still starts and ends with its quote (digits may have come before
  or after it: `Domain: 0'vm2'` is no head to parse_domstats()).

Then a value token is all digits exactly where the shape's was (its non-digit characters
are the shape's), and the records are what parse_domstats() makes of the text: equal
DomainStats (the same fields, ints bounded by MAX_DIGITS, and strings; a record's integer
fields first in its dict, which no reader of a record depends on), the domain names read
from the text. A text of another layout is parsed in full, and its layout gets a shape
when the next sample has it too. A shape is made only of virsh's usual form that reads
back, through it, to parse_domstats()'s own result: no `=` in a value, no name with a
space, no odd whitespace, and no `=-` in its skeleton (a value `-` or `5-` that digits
alone make `-5`, a negative number to the parser). tests/test_domshape.py tries every
single digit put in or taken out, and hypothesis edits of texts and of shapes' texts.
"""

from __future__ import annotations

import re
from itertools import compress
from typing import NamedTuple

from fleetmon.sources import MAX_DIGITS
from fleetmon.sources.virsh import _ODD_ASCII_SPACE, DomainStats, parse_domstats

_NO_DIGITS = str.maketrans("", "", "0123456789")
#: An empty value but the last (`in` is ~2.5x slower than this search over 17 KB).
_EMPTY_VALUE = re.compile("=\n")
_HEAD = "Domain:"


#: A record's string keys and integer keys, in token order.
_Keys = tuple[tuple[str, ...], tuple[str, ...]]


class Shape(NamedTuple):
    """What a parsed text's layout was (module docstring). Its tokens alternate: `Domain:`
    and a name, then key and value, so the even ones are the heads and keys (`keys`), the
    odd ones the names and values, of which the masks (a byte each) pick the names, the
    strings and the integers; and each record's keys of each kind, in token order.
    ~25 KB for the simulator's 11 VMs (17 KB of text), the key strings shared with the
    records read."""

    skeleton: str
    tokens: int
    keys: list[str]
    names: bytes
    strs: bytes
    ints: bytes
    records: tuple[_Keys, ...]


class Unshaped(NamedTuple):
    """A text's layout without a Shape: its skeleton, and whether a shape was tried on it."""

    skeleton: str
    tried: bool


def parse_domstats_shaped(
    text: str, known: Shape | Unshaped | None
) -> tuple[tuple[DomainStats, ...], Shape | Unshaped]:
    """parse_domstats(text), read through `known` when it is a Shape (of the text parsed
    before this one) and the text has its layout; and what is known of this text's layout
    for the next one.

    A shape is made when a layout comes twice running (a host whose layout changes at
    every sample, VMs starting and stopping, costs the skeleton, ~12 us, not a shape, ~0.4
    ms), and once per layout (a text a shape cannot read is not tried again and again)."""
    if isinstance(known, Shape):
        read = _read(text, known)
        if read is not None:
            return read, known
        known = Unshaped(known.skeleton, False)  # the previous text's layout
    domains = parse_domstats(text)
    skeleton = text.translate(_NO_DIGITS)
    if known is None or known.skeleton != skeleton:
        return domains, Unshaped(skeleton, False)
    if known.tried:
        return domains, known
    return domains, shape_of(text, domains, skeleton) or Unshaped(skeleton, True)


def _read(text: str, shape: Shape) -> tuple[DomainStats, ...] | None:
    if (
        text.translate(_NO_DIGITS) != shape.skeleton
        or _EMPTY_VALUE.search(text)
        or text[-1:] == "="
    ):
        return None
    tokens = text.replace("=", " ").split()
    if len(tokens) != shape.tokens or tokens[::2] != shape.keys:
        return None
    values = tokens[1::2]
    digits = list(compress(values, shape.ints))
    if digits and max(map(len, digits)) >= MAX_DIGITS:
        return None
    # One pass each over every record's integers and strings; zip takes a record's share
    # of each (keys first: zip stops at a record's last key, taking no value more).
    ints = iter(list(map(int, digits)))
    strs = compress(values, shape.strs)
    domains: dict[str, DomainStats] = {}
    for (str_keys, int_keys), quoted in zip(
        shape.records, compress(values, shape.names), strict=True
    ):
        if quoted[0] != "'" or quoted[-1] != "'":  # digits before or after the quotes
            return None
        fields: dict[str, int | str] = dict(zip(int_keys, ints, strict=False))
        fields.update(zip(str_keys, strs, strict=False))
        name = quoted[1:-1]
        domains[name] = DomainStats(name, fields)
    return tuple(domains.values())


def shape_of(
    text: str, domains: tuple[DomainStats, ...], skeleton: str | None = None
) -> Shape | None:
    """The shape of `text` (of this `skeleton`, when known), whose parse_domstats() is
    `domains`; None when the text is not one a shape can read (module docstring)."""
    if not domains or not text.isascii() or _EMPTY_VALUE.search(text) or text[-1:] == "=":
        return None
    # Only virsh's usual form (as _domstats_fast reads it): no value that digits could
    # make `-5`, a number to the parser (`-`, `5-`: `=-` in the skeleton), and no odd
    # whitespace, which the parser splits lines at its own way.
    skeleton = text.translate(_NO_DIGITS) if skeleton is None else skeleton
    if "=-" in skeleton or any(c in text for c in _ODD_ASCII_SPACE):
        return None
    tokens = text.replace("=", " ").split()
    walked = _walk(tokens)
    if walked is None:
        return None
    names_at, strs_at, ints_at, records = walked
    if text.count("=") != len(strs_at) + len(ints_at):  # a value holding `=`: no shape
        return None

    def mask(positions: list[int]) -> bytes:
        picked = bytearray(len(tokens) // 2)  # one a name or value: tokens 1, 3, 5...
        for p in positions:
            picked[p] = 1
        return bytes(picked)

    shape = Shape(
        skeleton,
        len(tokens),
        tokens[::2],
        mask(names_at),
        mask(strs_at),
        mask(ints_at),
        tuple(records),
    )
    # Read back through the shape: it is kept only where it gives the parser's own result.
    return shape if _read(text, shape) == domains else None


_Walked = tuple[list[int], list[int], list[int], list[_Keys]]


def _walk(tokens: list[str]) -> _Walked | None:
    """Where the names, the string values and the integer values are among the odd tokens
    (token 2k + 1 is odd token k), and each record's string keys and integer keys; None for
    tokens that are not `Domain: 'name'` then `key value` pairs (a key of digits alone
    included: a vanished value could take its place)."""
    names_at: list[int] = []
    strs_at: list[int] = []
    ints_at: list[int] = []
    records: list[_Keys] = []
    i, n = 0, len(tokens)
    while i < n:
        name = tokens[i + 1] if i + 1 < n else ""
        if tokens[i] != _HEAD or len(name) < 2 or name[0] != "'" or name[-1] != "'":
            return None
        names_at.append(i // 2)
        strs: list[str] = []
        ints: list[str] = []
        i += 2
        while i < n and tokens[i] != _HEAD:
            if i + 1 >= n or tokens[i].isdigit():
                return None
            if tokens[i + 1].isdigit():
                ints_at.append(i // 2)
                ints.append(tokens[i])
            else:
                strs_at.append(i // 2)
                strs.append(tokens[i])
            i += 2
        if len(set(strs + ints)) != len(strs) + len(ints):  # the parser keeps a twice-given
            return None  # key's last value
        records.append((tuple(strs), tuple(ints)))
    return names_at, strs_at, ints_at, records
