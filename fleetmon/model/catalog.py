"""The metric catalogue of ../shared/METRICS.md as data (pure): names, scopes, units, and the
row scopes that the JSON writer, the rules and every renderer iterate instead of naming kinds
of row (a new kind, such as containers, is an entry in ROW_SCOPES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetmon.errors import did_you_mean
from fleetmon.model.metricdefs import ALL, CTR, DISK, FS, GUEST, HOST, NIC, VM, MetricDef

__all__ = [
    "ALL",
    "CTR",
    "DISK",
    "FLEET_STATS",
    "FS",
    "GUEST",
    "HOST",
    "NIC",
    "ROW_SCOPE",
    "ROW_SCOPES",
    "SCOPES",
    "STATE_WORDS",
    "VM",
    "Column",
    "MetricDef",
    "Ranking",
    "RowScope",
    "names",
    "outlier_min_diff",
    "scope_of",
    "state_problem",
]


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table of rows: one metric, or the sum of several (rx + tx), in `unit`."""

    label: str
    metrics: tuple[str, ...]
    unit: str
    digits: int = 1  # decimals of a figure shown as a plain number (text)


@dataclass(frozen=True, slots=True)
class Ranking:
    """Rows across the fleet, the largest `by` first: a top table of the text report."""

    title: str
    by: Column


@dataclass(frozen=True, slots=True)
class RowScope:
    """A kind of row a host has: what the stages after the sources need to carry, judge and
    show its rows without naming it.

    The rules take `name` as a rule's scope; the JSON report lists the rows under `key` (in
    ROW_SCOPES order); the text report has its `rankings`' top tables of `columns` and a
    `busiest` column in its hosts table; the HTML report gives each host a `title` table
    and its fleet table the same `busiest` column.
    """

    name: str  # the rules' scope and the metrics' prefix: "disk"
    key: str  # the JSON report's list of the rows: "disks"
    title: str  # a host's table of them: "Disks"
    noun: str  # one row, heading the text tables' name column: "disk"
    name_label: str  # what a row's name is, heading the HTML tables' name column: "device"
    metrics: tuple[MetricDef, ...]
    #: The top tables across the fleet; the first also picks a host's busiest row.
    rankings: tuple[Ranking, ...]
    #: The top tables' columns: a terminal is narrow, so a few, summed where they pair up.
    columns: tuple[Column, ...]
    #: Heading of the hosts tables' column naming each host's busiest row; None: no column.
    busiest: str | None = None
    #: A host's table of its rows (HTML): () is every metric any row has; named columns make
    #: a compact table instead, sorted by the first ranking, its top rows marked.
    detail: tuple[Column, ...] = ()
    #: The top tables lead with the row's name, then its host (a VM is known by its name).
    name_first: bool = False
    #: The row scope whose figures a row repeats when it carries that scope's name as a label
    #: (a VM's tap port, {"vm": "web-3"}): named beside the row, and passed over in a host's
    #: busiest pick and table unless it errs or drops (`echo_note` counts those left out).
    echo: str | None = None
    echo_note: str = ""
    #: Labels of `columns` a narrow terminal drops first, in this order (never the column a
    #: top table is ranked by).
    narrow: tuple[str, ...] = ()


#: The smallest difference from its group's median that makes a host a fleet outlier, by
#: unit: a robust z-score of 3.5 over a spread of near-identical values (PSI cpu between 0
#: and 0.039 %) would otherwise flag noise. Percentages are in points.
_OUTLIER_MIN_BY_UNIT: dict[str, float] = {
    "%": 5.0, "load": 1.0, "/s": 100.0, "pages/s": 100.0, "count": 1.0, "ratio": 0.5,
    "B": 1024.0**3, "B/s": 1024.0**2, "ms": 10.0, "req": 1.0, "s": 86400.0,
}  # fmt: skip
#: Where a metric's own scale differs from its unit's.
_OUTLIER_MIN_BY_METRIC: dict[str, float] = {
    "load.per_cpu": 0.5, "cpu.ctxt_per_s": 10000.0, "cpu.intr_per_s": 10000.0,
    "cpu.forks_per_s": 20.0, "procs.running": 2.0,
}  # fmt: skip


def outlier_min_diff(metric: str) -> float:
    """The least distance from its group's median that makes a value an outlier (0: any)."""
    if metric in _OUTLIER_MIN_BY_METRIC:
        return _OUTLIER_MIN_BY_METRIC[metric]
    m = ALL.get(metric)
    return _OUTLIER_MIN_BY_UNIT.get(m.unit, 0.0) if m is not None else 0.0


#: Decimals of a plain figure by unit, where one is not enough.
_DIGITS = {"ms": 2, "req": 2}


def _col(*metrics: str, label: str | None = None, digits: int | None = None) -> Column:
    """A column of catalogue metrics (summed if several): their unit, the first's label."""
    first = ALL[metrics[0]]
    if any(ALL[m].unit != first.unit for m in metrics):
        raise ValueError(f"{metrics}: a column sums metrics of one unit")
    places = _DIGITS.get(first.unit, 1) if digits is None else digits
    return Column(label or first.label, metrics, first.unit, places)


#: Every kind of row, in the JSON report's order (do not reorder: readers rely on it).
ROW_SCOPES: tuple[RowScope, ...] = (
    RowScope(
        "disk", "disks", "Disks", "disk", "device", DISK,
        rankings=(Ranking("Busiest disks", _col("disk.util_pct")),),
        columns=(
            _col("disk.util_pct"), _col("disk.reads_per_s"), _col("disk.writes_per_s"),
            _col("disk.read_bytes_per_s"), _col("disk.write_bytes_per_s"),
            _col("disk.r_await_ms"), _col("disk.w_await_ms"), _col("disk.queue_depth"),
        ),
        busiest="busiest disk",
        narrow=("aqu-sz", "r/s", "w/s", "r_await", "w_await"),
    ),
    RowScope(
        "nic", "nics", "Network interfaces", "NIC", "interface", NIC,
        rankings=(
            Ranking("Busiest NICs", _col("nic.rx_bytes_per_s", "nic.tx_bytes_per_s")),
        ),
        columns=(
            _col("nic.rx_bytes_per_s"), _col("nic.tx_bytes_per_s"),
            _col("nic.rx_packets_per_s"), _col("nic.tx_packets_per_s"),
            _col("nic.rx_errors_per_s", "nic.tx_errors_per_s", label="err/s"),
            _col("nic.rx_drops_per_s", "nic.tx_drops_per_s", label="drop/s"),
        ),
        busiest="busiest NIC",
        narrow=("rx pkt/s", "tx pkt/s", "err/s"),
        echo="vm",
        echo_note="{n} VM ports without drops or errors: see the VM table.",
    ),
    RowScope(
        "fs", "filesystems", "Filesystems", "mount", "mount", FS,
        rankings=(Ranking("Fullest filesystems", _col("fs.used_pct")),),
        columns=(
            _col("fs.used_pct", digits=0),
            _col("fs.inodes_used_pct", label="inodes", digits=0),
            _col("fs.free_bytes"),
        ),
        busiest="fullest fs",
    ),
    RowScope(
        "vm", "vms", "Virtual machines", "VM", "VM", VM,
        rankings=(
            Ranking("Top VMs by CPU (per vCPU)", _col("vm.cpu_pct", label="%CPU/vCPU")),
            Ranking("Top VMs by vCPU delay (steal)", _col("vm.vcpu_delay_pct")),
            Ranking(
                "Top VMs by disk", _col("vm.disk_read_bytes_per_s", "vm.disk_write_bytes_per_s")
            ),
            Ranking("Top VMs by network", _col("vm.net_rx_bytes_per_s", "vm.net_tx_bytes_per_s")),
        ),
        columns=(
            # virt-top's %CPU is of the host; ours is per vCPU, so both are labelled.
            _col("vm.state"), _col("vm.vcpus"), _col("vm.cpu_pct", label="%CPU/vCPU"),
            _col("vm.cpu_host_pct", label="%host"),
            _col("vm.vcpu_delay_pct", label="delay"),
            _col("vm.mem_current_bytes", label="mem"),
            _col("vm.disk_read_bytes_per_s", "vm.disk_write_bytes_per_s", label="disk"),
            _col("vm.net_rx_bytes_per_s", "vm.net_tx_bytes_per_s", label="net"),
        ),
        detail=(
            _col("vm.vcpus"), _col("vm.cpu_pct", label="CPU/vCPU"),
            _col("vm.cpu_host_pct", label="CPU of host"), _col("vm.vcpu_delay_pct"),
            _col("vm.mem_current_bytes", label="memory"), _col("vm.mem_used_pct"),
            _col("vm.disk_read_bytes_per_s"), _col("vm.disk_write_bytes_per_s"),
            _col("vm.net_rx_bytes_per_s"), _col("vm.net_tx_bytes_per_s"),
        ),
        name_first=True,
        narrow=("state", "%host", "delay", "mem", "vcpus"),
    ),
    RowScope(
        "ctr", "containers", "Containers", "container", "container", CTR,
        rankings=(
            Ranking("Top containers by CPU", _col("ctr.cpu_pct")),
            Ranking("Containers nearest their memory limit", _col("ctr.mem_limit_pct")),
        ),
        columns=(
            _col("ctr.state"), _col("ctr.cpu_pct"), _col("ctr.cpu_throttled_pct"),
            _col("ctr.mem_bytes", label="mem"), _col("ctr.mem_limit_pct", digits=0),
            _col("ctr.disk_read_bytes_per_s", "ctr.disk_write_bytes_per_s", label="disk"),
            _col("ctr.pids"),
        ),
        detail=(
            _col("ctr.cpu_pct"), _col("ctr.cpu_throttled_pct"), _col("ctr.mem_bytes"),
            _col("ctr.mem_limit_bytes"), _col("ctr.mem_limit_pct"), _col("ctr.oom_kills"),
            _col("ctr.disk_read_bytes_per_s"), _col("ctr.disk_write_bytes_per_s"),
            _col("ctr.psi_cpu_some_pct"), _col("ctr.psi_memory_some_pct"), _col("ctr.pids"),
        ),
        name_first=True,
    ),
    RowScope(
        "guest", "guests", "Guests seen from both sides", "guest", "hypervisor/VM", GUEST,
        rankings=(
            Ranking("Guests seen from both sides, by steal", _col("guest.steal_pct")),
        ),
        columns=(
            _col("guest.steal_pct", label="steal"),
            _col("guest.vcpu_delay_pct", label="delay"),
            _col("guest.busy_pct", label="busy"), _col("guest.vm_cpu_pct", label="vCPU"),
            _col("guest.mem_available_bytes", label="avail"),
            _col("guest.balloon_bytes", label="balloon"),
            _col("guest.host_rss_bytes", label="RSS"),
        ),
        name_first=True,
    ),
)  # fmt: skip
ROW_SCOPE: dict[str, RowScope] = {s.name: s for s in ROW_SCOPES}

SCOPES = ("host", *ROW_SCOPE, "fleet")

#: Statistics computed per host metric for scope `fleet` (`fleet.cpu.busy_pct.p95`).
FLEET_STATS = ("min", "median", "p95", "max", "mean", "stddev")


def scope_of(metric: str) -> str | None:
    """The scope of a metric name (`fleet.cpu.busy_pct.p95` -> fleet), or None if unknown."""
    if metric.startswith("fleet."):
        base, _, stat = metric[len("fleet.") :].rpartition(".")
        known = base in ALL and ALL[base].scope == "host" and stat in FLEET_STATS
        return "fleet" if known else None
    m = ALL.get(metric)
    return m.scope if m else None


#: What a metric of unit `state` (vm.state) can be: libvirt's virDomainState as
#: sources/virsh.py names it (`state-N` for a code past them), and Xen's words (sources/xen.py).
STATE_WORDS = frozenset(
    {"nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended"}
    | {"dying"}
)
_STATE_CODE = re.compile(r"state-[0-9]+")


def state_problem(metric: str, word: str) -> str | None:
    """Why a state metric can never be `word` (a rule comparing them never holds), or None."""
    if word in STATE_WORDS or _STATE_CODE.fullmatch(word):
        return None
    hint = did_you_mean(word, sorted(STATE_WORDS)) or f" ({', '.join(sorted(STATE_WORDS))})"
    return f"'{word}' is not a state {metric} takes{hint}"


def names() -> list[str]:
    """Every valid metric name, fleet statistics included (for typo suggestions)."""
    fleet = [f"fleet.{m.name}.{s}" for m in HOST for s in FLEET_STATS]
    return [*ALL, *fleet]


def kin(name: str) -> list[str]:
    """The metrics a misspelt `name` is offered from (errors.did_you_mean): those of the scope
    its first part names (`vm.cpu_busy_pct`: vm.*, not the host's cpu.busy_pct, which a rule
    would take on as a host rule), or every metric when it names none."""
    head = name.split(".", 1)[0]
    every = names()
    scope = (
        head
        if head in SCOPES
        else next((scope_of(m) for m in ALL if m.startswith(head + ".")), None)
    )
    return [m for m in every if scope_of(m) == scope] if scope is not None else every
