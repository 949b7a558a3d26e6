"""Weeks of runs in seconds (pure): the simulated fleet on a simulated clock, for the history.

One run of the simulated hosts is answered and analysed for real (sim/answer.py, then the
pipeline, as `fleetmon run` would); every run of the period is that report with its figures
moved by the time of day and of the week, and with trends built in, so the history shows
what it is for:

- one host in 10 has its fullest filesystem filling at a steady rate, full a few days after
  the period ends (the forecasts and fs-full-in-3-days);
- one VM in 15 leaks memory: its use rises steadily through the period;
- one host in 13 suffers steal for a few hours each afternoon;
- every host is busier on weekday working hours (UTC) than at night and at weekends.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from fleetmon.model import HostReport, MetricValue, Report, Row

#: Metrics scaled by the time of day and week (the rest are kept or derived).
_BUSY = ("cpu.user_pct", "cpu.system_pct", "cpu.iowait_pct", "cpu.softirq_pct")
_RATES = (
    "disk.reads_per_s", "disk.writes_per_s", "disk.read_bytes_per_s",
    "disk.write_bytes_per_s", "disk.util_pct", "nic.rx_bytes_per_s", "nic.tx_bytes_per_s",
    "nic.rx_packets_per_s", "nic.tx_packets_per_s", "vm.cpu_pct", "vm.cpu_host_pct",
    "vm.disk_read_bytes_per_s", "vm.disk_write_bytes_per_s", "vm.net_rx_bytes_per_s",
    "vm.net_tx_bytes_per_s", "load.1m", "load.5m", "load.15m", "load.per_cpu",
    "cpu.ctxt_per_s", "cpu.intr_per_s",
)  # fmt: skip


def activity(t: float) -> float:
    """How busy the fleet is at Unix time `t` relative to its sampled run: 0.35 at night
    and at weekends, up to 1.4 in the afternoon of a working day."""
    dt = datetime.fromtimestamp(t, UTC)
    hour = dt.hour + dt.minute / 60
    day = max(0.0, math.sin(math.pi * (hour - 7) / 12)) if 7 <= hour <= 19 else 0.0
    weekday = dt.weekday() < 5
    return 0.35 + (1.05 if weekday else 0.3) * day


def _scale(
    metrics: Mapping[str, MetricValue], k: float, cap: float = 100.0
) -> dict[str, MetricValue]:
    out = dict(metrics)
    for name in _RATES:
        v = out.get(name)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[name] = min(v * k, cap) if name.endswith("_pct") else v * k
    return out


def _host_at(h: HostReport, i: int, t: float, frac: float, rng: random.Random) -> HostReport:
    k = activity(t) * rng.uniform(0.85, 1.15)
    m = _scale(h.metrics, k)
    busy = 0.0
    for name in _BUSY:
        v = m.get(name)
        if isinstance(v, int | float):
            m[name] = min(v * k, 60.0)
            busy += m[name]  # type: ignore[operator]
    hour = datetime.fromtimestamp(t, UTC).hour
    steal = 12.0 + 6 * rng.random() if i % 13 == 5 and 13 <= hour < 17 else 0.0
    m["cpu.steal_pct"] = steal
    m["cpu.busy_pct"] = min(100.0, busy + steal)
    m["cpu.idle_pct"] = max(0.0, 100.0 - busy - steal)
    mem = m.get("mem.used_pct")
    if isinstance(mem, int | float):
        m["mem.used_pct"] = min(99.0, mem * (0.9 + 0.15 * activity(t)))
    fss = list(h.rows_of("fs"))
    if i % 10 == 3 and fss:
        # The fullest filesystem fills from 55 % to 94 % over the period: full days later.
        j = max(range(len(fss)), key=lambda n: float(fss[n].metrics.get("fs.used_pct") or 0))
        used = 55.0 + 39.0 * frac
        size = fss[j].metrics.get("fs.free_bytes")
        free = None if not isinstance(size, int) else int(size * (100 - used) / 45)
        fss[j] = dataclasses.replace(fss[j], metrics={**fss[j].metrics, "fs.used_pct": used,
                                                       "fs.free_bytes": free})  # fmt: skip
    vms = []
    for n, vm in enumerate(h.rows_of("vm")):
        vm_m = _scale(vm.metrics, k)
        if (i * 31 + n) % 15 == 7 and vm_m.get("vm.state") == "running":
            vm_m["vm.mem_used_pct"] = 40.0 + 50.0 * frac  # a leak
        vms.append(Row(vm.name, vm_m, vm.labels))
    return dataclasses.replace(
        h,
        metrics=m,
        rows={
            **{
                s: tuple(Row(r.name, _scale(r.metrics, k), r.labels) for r in rs)
                for s, rs in h.rows.items()
            },
            "fs": tuple(fss),
            "vm": tuple(vms),
        },
        counters={},
        findings=(),
    )


def timeline(
    base: Report, start_t: int, runs: int, every_s: int, seed: int = 0
) -> Iterator[Report]:
    """`runs` reports of the fleet in `base`, `every_s` apart from `start_t` (rules not
    applied: the history keeps figures)."""
    for r in range(runs):
        t = start_t + r * every_s
        rng = random.Random(f"{seed}:{r}")
        frac = r / max(1, runs - 1)
        hosts = tuple(
            _host_at(h, i, t, frac, rng) if h.collected else h for i, h in enumerate(base.hosts)
        )
        started = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        run = dataclasses.replace(base.run, started_at=started)
        yield dataclasses.replace(base, run=run, hosts=hosts, findings=())
