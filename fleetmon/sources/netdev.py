"""/proc/net/dev parser and per-interface rates (pure).

Two header lines, then "name: 8 receive counters 8 transmit counters" (bytes packets errs
drop fifo frame compressed multicast | bytes packets errs drop fifo colls carrier
compressed). A byte counter wider than its column is glued to the colon (`eth0:68210035552`,
node_exporter 2015) and alias names carry a colon (`ibr10:30`): the name ends at the last
colon. Counters are 64-bit on 64-bit kernels (unsigned long). Byte or packet counters that
went down mean the interface was re-created: METRICS.md says "no rate", but sysstat (which
wins, see METRICS.md) counts from zero then (sa_common.c), and so do we, with a note.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter, sub, truediv
from typing import NamedTuple

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, device_lines, to_ints


class NetDev(NamedTuple):
    """One interface's counters. A NamedTuple rather than a frozen dataclass: one per
    interface per sample (a KVM host has one per VM port), cheaper to build."""

    name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    rx_fifo: int
    rx_frame: int
    rx_compressed: int
    rx_multicast: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int
    tx_fifo: int
    tx_colls: int
    tx_carrier: int
    tx_compressed: int


_RATE_FIELDS = (
    ("nic.rx_bytes_per_s", "rx_bytes"),
    ("nic.tx_bytes_per_s", "tx_bytes"),
    ("nic.rx_packets_per_s", "rx_packets"),
    ("nic.tx_packets_per_s", "tx_packets"),
    ("nic.rx_errors_per_s", "rx_errors"),
    ("nic.tx_errors_per_s", "tx_errors"),
    ("nic.rx_drops_per_s", "rx_drops"),
    ("nic.tx_drops_per_s", "tx_drops"),
)
NIC_METRICS = tuple(name for name, _ in _RATE_FIELDS)


# Memoised for the last two texts: the history's counters (analyse/counters.py) read the
# second sample again after the deltas did; the result is immutable, so it is shared.
@functools.lru_cache(maxsize=2)
def parse_net_dev(text: str) -> tuple[NetDev, ...]:
    """Parse /proc/net/dev, interfaces in file order."""
    lines = [line for line in device_lines("net_dev", text) if "|" not in line]  # 2 headers
    rows = [line.rpartition(":") for line in lines]
    fast = _net_dev_fast(rows)
    return fast if fast is not None else _net_dev_lines(lines)


def _net_dev_fast(rows: list[tuple[str, str, str]]) -> tuple[NetDev, ...] | None:
    """parse_net_dev() of well-formed lines, one check and one int() pass over all their
    counters; None for anything else (the line-by-line parser's, which names the line)."""
    counters = [rest.split() for _, _, rest in rows]
    tokens = list(chain.from_iterable(counters))
    joined = "".join(tokens)
    if (
        any(len(c) != 16 or not colon for c, (_, colon, _) in zip(counters, rows, strict=True))
        or not (joined.isascii() and joined.isdigit())
        or max(map(len, tokens), default=0) >= MAX_DIGITS
    ):
        return None
    names = [name.strip() for name, _, _ in rows]
    if not all(names):
        return None
    values = list(map(int, tokens))
    return tuple(NetDev(name, *values[16 * i : 16 * i + 16]) for i, name in enumerate(names))


def _net_dev_lines(lines: list[str]) -> tuple[NetDev, ...]:
    """parse_net_dev(), one line at a time."""
    out: list[NetDev] = []
    for line in lines:
        name, colon, rest = line.rpartition(":")
        tokens = rest.split()
        if not colon or not name.strip() or len(tokens) != 16:
            raise ProbeParseError("net_dev", f"expected 'name: 16 counters', got {line[:80]!r}")
        name = name.strip()
        nums = to_ints("net_dev", tokens, f"{name} column ")
        out.append(NetDev(name, *nums))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class NicRates:
    """nic.* of one interface; a rate is None when its own counter alone went down."""

    rates: dict[str, float | None]
    #: True when bytes/packets went down and the first sample was taken as zero.
    recreated: bool


def nic_rates(prev: NetDev, cur: NetDev, interval_s: float) -> NicRates:
    """nic.* between two samples (interval_s > 0), sar -n DEV semantics."""
    recreated = (
        cur.rx_bytes < prev.rx_bytes
        or cur.tx_bytes < prev.tx_bytes
        or cur.rx_packets < prev.rx_packets
        or cur.tx_packets < prev.tx_packets
    )
    after = _RATE_GET(cur)
    # Each Δ (a counter that went down gives a negative one: no rate), over the interval.
    deltas = after if recreated else tuple(map(sub, after, _RATE_GET(prev)))
    if min(deltas) >= 0:  # every counter went up or stayed: one division pass
        rates: dict[str, float | None] = dict(
            zip(NIC_METRICS, map(truediv, deltas, repeat(interval_s)), strict=True)
        )
    else:
        rates = {
            m: None if d < 0 else d / interval_s for m, d in zip(NIC_METRICS, deltas, strict=True)
        }
    return NicRates(rates, recreated)


#: The counters of _RATE_FIELDS, in its order, out of a NetDev.
_RATE_GET = itemgetter(*(NetDev._fields.index(f) for _, f in _RATE_FIELDS))
