"""/proc/net/dev parser and per-interface rates (pure).

Two header lines, then "name: 8 receive counters 8 transmit counters" (bytes packets errs
drop fifo frame compressed multicast | bytes packets errs drop fifo colls carrier
compressed). A byte counter wider than its column is glued to the colon (`eth0:68210035552`,
node_exporter 2015) and alias names carry a colon (`ibr10:30`): the name ends at the last
colon. Counters are 64-bit on 64-bit kernels (unsigned long); one that went down means the
interface was re-created, so it gets no rate that run (METRICS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetmon.errors import ProbeParseError
from fleetmon.sources import lines_of, to_int


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


def parse_net_dev(text: str) -> tuple[NetDev, ...]:
    """Parse /proc/net/dev, interfaces in file order."""
    out: list[NetDev] = []
    for line in lines_of(text):
        if "|" in line:
            continue  # the two header lines
        name, colon, rest = line.rpartition(":")
        tokens = rest.split()
        if not colon or not name.strip() or len(tokens) != 16:
            raise ProbeParseError("net_dev", f"expected 'name: 16 counters', got {line[:80]!r}")
        name = name.strip()
        nums = [to_int("net_dev", tok, f"{name} column {i + 1}") for i, tok in enumerate(tokens)]
        out.append(NetDev(name, *nums))
    return tuple(out)


def nic_rates(prev: NetDev, cur: NetDev, interval_s: float) -> dict[str, float] | None:
    """nic.* between two samples (interval_s > 0); None when a counter went down."""
    deltas = [(metric, getattr(cur, f) - getattr(prev, f)) for metric, f in _RATE_FIELDS]
    if any(d < 0 for _, d in deltas):
        return None
    return {metric: d / interval_s for metric, d in deltas}
