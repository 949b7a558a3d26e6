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

from fleetmon.errors import ProbeParseError
from fleetmon.sources import device_lines, to_ints


@dataclass(frozen=True, slots=True)
class NetDev:
    """One interface's counters."""

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
    out: list[NetDev] = []
    for line in device_lines("net_dev", text):
        if "|" in line:
            continue  # the two header lines
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
    main = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
    recreated = any(getattr(cur, f) < getattr(prev, f) for f in main)
    rates: dict[str, float | None] = {}
    for metric, f in _RATE_FIELDS:
        before = 0 if recreated else getattr(prev, f)
        delta = getattr(cur, f) - before
        rates[metric] = None if delta < 0 else delta / interval_s
    return NicRates(rates, recreated)
