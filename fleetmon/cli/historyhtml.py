"""The history's sparklines and forecasts for the HTML report (I/O edge): which subjects,
which metrics, over which windows; the fits themselves are rules/trends.py's.

Per host: CPU busy, steal, memory, its busiest disk (util) and NIC (rx + tx) over the last
24 h (hourly averages) and 7 d (6-hourly); per host, its 3 busiest VMs (up to 200 hosts) and any VM
with a finding: CPU, vCPU delay and memory over 24 h; each filesystem heading for full: when, in
words, with its fit.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmon.history import query
from fleetmon.history.forrules import subjects_of
from fleetmon.history.sparks import bucketed
from fleetmon.history.store import History
from fleetmon.model import HostReport, Report, Row, Severity, Trend, notable
from fleetmon.model.durations import format_duration
from fleetmon.model.stubs import stub_name
from fleetmon.rules import trends as fits

#: window -> (bucket seconds, buckets)
WINDOWS = {"24h": (3600, 24), "7d": (21_600, 28)}
HOST_METRICS = ("cpu.busy_pct", "cpu.steal_pct", "mem.used_pct")
VM_METRICS = ("vm.cpu_pct", "vm.vcpu_delay_pct", "vm.mem_used_pct")
TOP_VMS = 3
#: Above this many hosts only VMs with a finding get sparklines: the page keeps within its
#: 3 MB at 500 hosts x 20 VMs (benchmarks/history_bench.py measures it).
TOP_VMS_HOSTS = 200
#: Forecasts further out than this are not worth a line.
HORIZON_S = 90 * 86_400
FIT_WINDOW_S = 86_400
#: A forecast needs a fit as good as the shipped `fs-full-in-3-days` rule asks for
#: (history.yaml's min_points and min_r2): a worse one is "no trend", never a date.
MIN_POINTS = 6
MIN_R2 = 0.8


def _num(row: Row, metric: str) -> float:
    v = row.metrics.get(metric)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else -1.0


def _picks(h: HostReport, top_vms: int) -> dict[str, set[str]]:
    """The rows of a host that get sparklines: busiest disk and NIC, top and alerting VMs."""
    out: dict[str, set[str]] = {"disk": set(), "nic": set(), "vm": set()}
    disks, all_nics, vms = h.rows_of("disk"), h.rows_of("nic"), h.rows_of("vm")
    if disks:
        out["disk"].add(max(disks, key=lambda r: _num(r, "disk.util_pct")).name)
    nics = [r for r in all_nics if "vm" not in r.labels] or list(all_nics)  # not a VM's port
    if nics:
        both = lambda r: _num(r, "nic.rx_bytes_per_s") + _num(r, "nic.tx_bytes_per_s")  # noqa: E731
        out["nic"].add(max(nics, key=both).name)
    running = sorted(vms, key=lambda r: -_num(r, "vm.cpu_pct"))
    out["vm"].update(r.name for r in running[:top_vms] if _num(r, "vm.cpu_pct") >= 0)
    bad = {
        f.subject for f in notable(h.findings) if f.scope == "vm" and f.severity is not Severity.OK
    }
    out["vm"].update(r.name for r in vms if stub_name(r) in bad)  # a stub's: "x-dm (stub of x)"
    return out


def _series(
    hist: History,
    hosts: Sequence[HostReport],
    scope: str,
    metrics: Sequence[str],
    windows: Sequence[str],
    wanted: dict[str, set[str]] | None,
    now: int,
) -> list[tuple[str, Trend]]:
    ids = subjects_of(hist, hosts, scope)
    if wanted is not None:
        ids = {e: s for e, s in ids.items() if s[2] in wanted.get(s[1], set())}
    out: list[tuple[str, Trend]] = []
    for window in windows:
        size, n = WINDOWS[window]
        start = now // size * size - (n - 1) * size
        found = bucketed(hist, scope, list(ids), metrics, start, now + 1, size)
        for eid, per in found.items():
            _, host, name = ids[eid]
            buckets = [start + i * size for i in range(n)]
            if scope == "nic":  # one line: received + sent
                rx, tx = per.get("nic.rx_bytes_per_s", {}), per.get("nic.tx_bytes_per_s", {})
                both = tuple(rx[b] + tx[b] if b in rx and b in tx else None for b in buckets)
                out.append((host, Trend(scope, name, "nic.rx_bytes_per_s", window, both, "rx+tx")))
                continue
            for m in metrics:
                values = per.get(m, {})
                out.append(
                    (host, Trend(scope, name, m, window, tuple(values.get(b) for b in buckets)))
                )
    return out


def forecast(mount: str, pts: Sequence[tuple[float, float]], now: int) -> str | None:
    """A filesystem's forecast in words from its points of the last 24 h: when it is full,
    if a fit good enough for the shipped rule says so; "no trend" when a worse fit would;
    None when no line reaches 100 % within HORIZON_S."""
    seconds = fits.time_to(pts, now, 100.0)
    fit = fits.linear_fit(pts, now)
    if seconds is None or fit is None or seconds > HORIZON_S:
        return None
    how = f"fit over {len(pts)} points, R² {fit.r2:.2f}"
    if len(pts) < MIN_POINTS or not fit.r2 >= MIN_R2:
        return (
            f"{mount}: no trend over the last 24 h ({how}; a forecast needs"
            f" {MIN_POINTS} points and R² ≥ {MIN_R2})"
        )
    when = "full now" if seconds == 0 else f"full in {format_duration(seconds)}"
    return f"{mount} {when} at the rate of the last 24 h ({how})"


def _forecasts(hist: History, hosts: Sequence[HostReport], now: int) -> dict[str, tuple[str, ...]]:
    ids = subjects_of(hist, hosts, "fs")
    current = {
        (h.name, r.name): r.metrics.get("fs.used_pct") for h in hosts for r in h.rows_of("fs")
    }
    found = query.numeric_points(
        hist, "raw", "fs", list(ids), ["fs.used_pct"], now - FIT_WINDOW_S, now
    )
    out: dict[str, list[str]] = {}
    for eid, per in found.items():
        _, host, mount = ids[eid]
        pts = per["fs.used_pct"]
        now_v = current.get((host, mount))
        if isinstance(now_v, int | float):
            pts.append((float(now), float(now_v)))
        pts = fits.window(pts, now, FIT_WINDOW_S)
        line = forecast(mount, pts, now)
        if line is not None:
            out.setdefault(host, []).append(line)
    return {h: tuple(v) for h, v in out.items()}


def report_trends(hist: History, report: Report, now: int) -> Report:
    """The report with its hosts' sparklines and forecasts."""
    import dataclasses

    hosts = [h for h in report.hosts if h.collected]
    top = TOP_VMS if len(hosts) <= TOP_VMS_HOSTS else 0
    picks = {h.name: _picks(h, top) for h in hosts}
    found = _series(hist, hosts, "host", HOST_METRICS, ("24h", "7d"), None, now)
    for scope, metrics in (("disk", ("disk.util_pct",)),
                           ("nic", ("nic.rx_bytes_per_s", "nic.tx_bytes_per_s"))):  # fmt: skip
        wanted = {h: p[scope] for h, p in picks.items()}
        found += _series(hist, hosts, scope, metrics, ("24h", "7d"), wanted, now)
    wanted = {h: p["vm"] for h, p in picks.items()}
    found += _series(hist, hosts, "vm", VM_METRICS, ("24h",), wanted, now)
    trends: dict[str, list[Trend]] = {}
    for host, t in found:
        trends.setdefault(host, []).append(t)
    return dataclasses.replace(
        report,
        trends={h: tuple(v) for h, v in trends.items()},
        forecasts=_forecasts(hist, hosts, now),
    )
