"""`fleetmon top`'s columns (pure): the hosts view's, the VMs view's (virt-top's and
xentop's) and the containers view's (`podman stats`'), each with the figure it shows and
the number it sorts by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleetmon.model import HostReport, MetricValue, Row, Severity, catalog
from fleetmon.model.stubs import stub_name
from fleetmon.render.text import clean, human_bytes, num
from fleetmon.render.texttables import vm_counts
from fleetmon.rules.verdict import host_verdict


@dataclass(frozen=True, slots=True)
class Item:
    """One table row: a host, or a VM or container with its host."""

    host: HostReport
    row: Row | None = None

    @property
    def name(self) -> str:
        return self.row.name if self.row is not None else self.host.name

    def get(self, metric: str) -> MetricValue:
        if self.row is not None:
            return self.row.metrics.get(metric)
        return self.host.metrics.get(metric)


@dataclass(frozen=True, slots=True)
class TopColumn:
    """A column: its heading, width, the figure it shows and the number it sorts by."""

    head: str
    width: int
    text: Callable[[Item], str]
    key: Callable[[Item], float | str | None]
    #: Lower is dropped first when the terminal is narrow; 0 never.
    keep: int = 1


def _metric(name: str, digits: int = 1) -> tuple[Callable[[Item], str], Callable[[Item], float]]:
    def text(it: Item) -> str:
        return num(it.get(name), digits)

    def key(it: Item) -> float:
        v = it.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else -1.0

    return text, key


def _bytes(*names: str) -> tuple[Callable[[Item], str], Callable[[Item], float]]:
    def total(it: Item) -> float | None:
        vals = [it.get(n) for n in names]
        nums = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        return sum(nums) if nums else None

    def text(it: Item) -> str:
        t = total(it)
        return "-" if t is None else human_bytes(t).replace(" ", "")

    def key(it: Item) -> float:
        t = total(it)
        return -1.0 if t is None else t

    return text, key


def _col(head: str, width: int, pair: tuple[Callable[[Item], str], Callable[[Item], float]],
         keep: int = 1) -> TopColumn:  # fmt: skip
    return TopColumn(head, width, pair[0], pair[1], keep)


def _busiest(scope: str) -> tuple[Callable[[Item], str], Callable[[Item], float]]:
    ranking = catalog.ROW_SCOPE[scope].rankings[0].by

    def score(r: Row) -> float | None:
        vals = [r.metrics.get(m) for m in ranking.metrics]
        nums = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        return sum(nums) if nums else None

    def best(it: Item) -> tuple[str, float] | None:
        scored = [(r.name, s) for r in it.host.rows_of(scope) if (s := score(r)) is not None]
        return max(scored, key=lambda t: t[1]) if scored else None

    def text(it: Item) -> str:
        b = best(it)
        if b is None:
            return "-"
        fig = f"{b[1]:.0f}%" if ranking.unit == "%" else human_bytes(b[1]).replace(" ", "")
        return f"{clean(b[0])} {fig}"

    def key(it: Item) -> float:
        b = best(it)
        return -1.0 if b is None else b[1]

    return text, key


def _verdict(it: Item) -> str:
    h = it.host
    if not h.collected:
        return h.status.value.upper()
    v = host_verdict(h)
    return "-" if v is Severity.OK else v.value.upper()


def vms_of(it: Item) -> str:
    """The VMS column: running/total VMs of the row's host."""
    return vm_counts(it.host.metrics)


def _ctr_count(it: Item) -> str:
    """The host's containers (the containers view lists them)."""
    return str(len(it.host.rows_of("ctr"))) if it.host.collected else "-"


def _vm_count(it: Item) -> float:
    v = it.host.metrics.get("hv.vms_running")
    return float(v) if isinstance(v, int | float) else -1.0


def _vm_name(it: Item) -> str:
    return stub_name(it.row) if it.row is not None else it.name


HOST_COLUMNS: tuple[TopColumn, ...] = (
    TopColumn("HOST", 18, lambda it: clean(it.host.name), lambda it: it.host.name, keep=0),
    TopColumn("HEALTH", 8, _verdict, lambda it: float(host_verdict(it.host).rank), keep=0),
    _col("CPU%", 6, _metric("cpu.busy_pct"), keep=0),
    _col("STEAL%", 6, _metric("cpu.steal_pct"), keep=5),
    _col("IOW%", 6, _metric("cpu.iowait_pct"), keep=4),
    _col("MEM%", 6, _metric("mem.used_pct"), keep=0),
    _col("LOAD/C", 6, _metric("load.per_cpu", 2), keep=3),
    TopColumn("VMS", 7, vms_of, _vm_count, keep=2),
    _col("DISK", 14, _busiest("disk"), keep=1),
    _col("NIC", 16, _busiest("nic"), keep=1),
    TopColumn("CTRS", 5, _ctr_count, lambda it: len(it.host.rows_of("ctr")), keep=1),
)

VM_COLUMNS: tuple[TopColumn, ...] = (
    # A Xen stub domain as "hvm1-dm (stub of hvm1)" (sorted by its own name).
    TopColumn("VM", 18, lambda it: clean(_vm_name(it)), lambda it: it.name, keep=0),
    TopColumn("HOST", 12, lambda it: clean(it.host.name), lambda it: it.host.name, keep=0),
    TopColumn(
        "STATE",
        8,
        lambda it: clean(it.get("vm.state") or "-"),
        lambda it: str(it.get("vm.state") or ""),
        keep=3,
    ),
    _col("%CPU", 6, _metric("vm.cpu_host_pct"), keep=0),
    _col("%VCPU", 6, _metric("vm.cpu_pct"), keep=0),
    _col("DELAY%", 6, _metric("vm.vcpu_delay_pct"), keep=0),
    _col("MEM", 9, _bytes("vm.mem_current_bytes"), keep=0),
    _col("RDRQ", 7, _metric("vm.disk_reads_per_s", 0), keep=1),
    _col("WRRQ", 7, _metric("vm.disk_writes_per_s", 0), keep=1),
    _col("RDBY", 9, _bytes("vm.disk_read_bytes_per_s"), keep=2),
    _col("WRBY", 9, _bytes("vm.disk_write_bytes_per_s"), keep=2),
    _col("RXBY", 9, _bytes("vm.net_rx_bytes_per_s"), keep=2),
    _col("TXBY", 9, _bytes("vm.net_tx_bytes_per_s"), keep=2),
    # virt-top's packet counts (KVM; xentop has none) and xentop's VBD_OO (Xen only).
    _col("RXPK", 7, _metric("vm.net_rx_packets_per_s", 0), keep=1),
    _col("TXPK", 7, _metric("vm.net_tx_packets_per_s", 0), keep=1),
    _col("VBD_OO", 6, _metric("vm.disk_oo_per_s"), keep=1),
)


def _label(key: str) -> Callable[[Item], str]:
    return lambda it: clean(it.row.labels.get(key, "-")) if it.row is not None else "-"


#: `podman stats`' and `docker stats`' columns (CPU % of one CPU, memory as the working set,
#: its limit, block I/O, PIDs) with cAdvisor's throttling and the cgroup's OOM kills; no
#: network: a container's traffic is not in its cgroup. STATE as `podman ps` says it
#: (running, paused), as the VMs' view has virt-top's.
CTR_COLUMNS: tuple[TopColumn, ...] = (
    TopColumn("CONTAINER", 24, lambda it: clean(it.name), lambda it: it.name, keep=0),
    TopColumn("HOST", 12, lambda it: clean(it.host.name), lambda it: it.host.name, keep=0),
    TopColumn("RUNTIME", 10, _label("runtime"), _label("runtime"), keep=2),
    TopColumn(
        "STATE",
        7,
        lambda it: clean(it.get("ctr.state") or "-"),
        lambda it: str(it.get("ctr.state") or ""),
        keep=3,
    ),
    _col("CPU%", 6, _metric("ctr.cpu_pct"), keep=0),
    _col("THR%", 5, _metric("ctr.cpu_throttled_pct"), keep=3),
    _col("MEM", 9, _bytes("ctr.mem_bytes"), keep=0),
    _col("LIMIT", 9, _bytes("ctr.mem_limit_bytes"), keep=2),
    _col("MEM%", 6, _metric("ctr.mem_limit_pct"), keep=1),
    _col("RDBY", 9, _bytes("ctr.disk_read_bytes_per_s"), keep=2),
    _col("WRBY", 9, _bytes("ctr.disk_write_bytes_per_s"), keep=2),
    _col("PIDS", 5, _metric("ctr.pids", 0), keep=1),
    _col("OOM", 4, _metric("ctr.oom_kills", 0), keep=3),
)

#: Each view's columns, in the order `v` (or Tab) steps through them.
COLUMNS = {"hosts": HOST_COLUMNS, "vms": VM_COLUMNS, "containers": CTR_COLUMNS}
VIEWS = tuple(COLUMNS)
#: The row scope each view but the hosts' lists.
VIEW_SCOPES = {"vms": "vm", "containers": "ctr"}
#: Columns of names and words: sorted A to Z first (as virt-top's -o name).
NAME_HEADS = frozenset(("HOST", "VM", "CONTAINER", "RUNTIME", "STATE"))
#: Left-aligned columns: those, and the ones of a word before their figure.
TEXT_HEADS = NAME_HEADS | {"HEALTH", "DISK", "NIC"}

#: top's own keys: P sorts by CPU, M by memory (in every view).
SORT_KEYS = {
    "P": {"hosts": "CPU%", "vms": "%CPU", "containers": "CPU%"},
    "M": {"hosts": "MEM%", "vms": "MEM", "containers": "MEM"},
}
