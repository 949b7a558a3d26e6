"""Parsers of the probe's sections, one module per source (pure: text in, frozen records out).

Each module keeps the parser beside the delta maths of its source; helpers here turn a bad
token into ProbeParseError naming the section, so no IndexError/ValueError escapes.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmon.errors import ProbeParseError

#: Counters the kernel prints as 32-bit (diskstats ms fields) wrap at this modulus.
WRAP_32 = 1 << 32

#: Kernel and libvirt counters are u64 at most (2**64 - 1 has 20 digits): a longer token is
#: not a counter, and an int of hundreds of digits overflows float maths and renderers.
MAX_COUNTER = (1 << 64) - 1
MAX_DIGITS = 20

#: Bound of a float token's magnitude (loadavg, uptime, PSI averages): 2**64 as well.
MAX_FLOAT = float(1 << 64)


def check_magnitude(section: str, value: int, what: str) -> int:
    """`value` when |value| <= MAX_COUNTER, else ProbeParseError naming the section and field."""
    if -MAX_COUNTER <= value <= MAX_COUNTER:
        return value
    raise ProbeParseError(section, f"{what}: {len(str(abs(value)))}-digit value exceeds 2**64")


def bounded_int(section: str, digits: str, what: str) -> int:
    """An unsigned decimal token already checked as digits, bounded to a u64."""
    if len(digits) > MAX_DIGITS:
        raise ProbeParseError(
            section, f"{what}: {len(digits)}-digit value exceeds 2**64 (not a counter)"
        )
    return check_magnitude(section, int(digits), what)


def to_int(section: str, token: str, what: str) -> int:
    """`token` as a non-negative int, or ProbeParseError naming the section and field."""
    if len(token) < MAX_DIGITS and token.isascii() and token.isdigit():
        return int(token)  # the usual case, without a call more
    if not token.isascii() or not token.isdigit():
        raise ProbeParseError(section, f"{what}: expected an unsigned integer, got {token[:40]!r}")
    return bounded_int(section, token, what)


def to_ints(section: str, tokens: Sequence[str], prefix: str, first: int = 1) -> list[int]:
    """Every token as a non-negative int; ProbeParseError names the first bad one as
    `{prefix}{position}` (positions counted from `first`)."""
    # One check over the joined tokens instead of one call per token: 10,000 hosts parse
    # about two million of them. An empty token would hide in the join, hence the test.
    joined = "".join(tokens)
    if (
        joined.isascii()
        and joined.isdigit()
        and "" not in tokens
        and max(map(len, tokens), default=0) < MAX_DIGITS
    ):
        return list(map(int, tokens))
    return [to_int(section, tok, f"{prefix}{i + first}") for i, tok in enumerate(tokens)]


def to_float(section: str, token: str, what: str) -> float:
    """`token` as a finite float, or ProbeParseError."""
    try:
        value = float(token)
    except ValueError:
        raise ProbeParseError(section, f"{what}: expected a number, got {token[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ProbeParseError(section, f"{what}: expected a finite number, got {token[:40]!r}")
    if abs(value) > MAX_FLOAT:
        raise ProbeParseError(section, f"{what}: {token[:40]!r} exceeds 2**64")
    return value


#: Device lines read from one section (diskstats, net_dev): a few thousand on the largest
#: SAN hosts; more is a host that prints to exhaust the collector, refused before parsing
#: so that the largest output under the cap costs well under its 2 s (issue 16).
MAX_DEVICE_LINES = 32768


def device_lines(section: str, text: str, limit: int = MAX_DEVICE_LINES) -> list[str]:
    """lines_of(text), or ProbeParseError when it has more than `limit` lines (counted
    before anything is split: one C-speed pass)."""
    count = text.count("\n")
    if count > limit:
        raise ProbeParseError(
            section, f"{count} lines, more than the {limit} devices fleetmon reads from it"
        )
    return lines_of(text)


def lines_of(text: str) -> list[str]:
    """Non-blank lines, CRLF tolerated (a committed capture may carry it; /proc never does)."""
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def rate(delta: int | float | None, interval_s: float | None) -> float | None:
    """delta/interval, or None when either is unknown (interval already checked > 0)."""
    if delta is None or interval_s is None:
        return None
    return delta / interval_s
