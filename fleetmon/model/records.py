"""Records shared by every pipeline stage (pure): hosts, probe results, metric rows, reports.

Metric names and JSON keys follow ../shared/METRICS.md; units are in the names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, overload

from fleetmon.model.virt import Virt

#: A metric value: counters are int, rates float, states str, unknown None.
MetricValue = float | int | str | bool | None
Metrics = Mapping[str, MetricValue]


#: `fleetmon_hypervisor` values: what the probe looks for on a host.
HYPERVISOR_MODES = ("auto", "kvm", "xen", "none")


class Status(StrEnum):
    """How collection of one host ended (METRICS.md `status`)."""

    OK = "ok"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    HOSTKEY_MISMATCH = "hostkey_mismatch"
    TIMEOUT = "timeout"
    COMMAND_FAILED = "command_failed"
    PARSE_ERROR = "parse_error"
    SKIPPED = "skipped"  # not collected: the inventory says why (connection type, vault...)
    #: `run --cluster`: the shard holding the host failed twice (a worker died, the task
    #: raised, no worker offers its site) or ran past its deadline twice.
    SHARD_FAILED = "shard_failed"
    SHARD_TIMEOUT = "shard_timeout"


class Severity(StrEnum):
    """A finding's severity. `rank` orders them as the exit code does (METRICS.md: 2 if
    anything is critical, else 3 if unknown, else 1 if warning): the one order of the project.
    """

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """How bad: ok 0 < warning 1 < unknown 2 < critical 3 (sort by -rank for worst first)."""
        return _SEVERITY_RANK[self]

    @property
    def listing(self) -> int:
        """Where a list puts it: critical 3 > warning 2 > unknown 1 > ok 0 (sort by -listing).

        Lists read by a person (findings, hosts, Nagios long output) put what can be acted
        on first: a warning is a measured problem, an unknown a figure that could not be
        judged. The exit code and a host's verdict keep `rank` (unknown above warning).
        """
        return _SEVERITY_LISTING[self]


_SEVERITY_RANK = {Severity.OK: 0, Severity.WARNING: 1, Severity.UNKNOWN: 2, Severity.CRITICAL: 3}
_SEVERITY_LISTING = {
    Severity.OK: 0,
    Severity.UNKNOWN: 1,
    Severity.WARNING: 2,
    Severity.CRITICAL: 3,
}
#: Worst first.
SEVERITIES_WORST_FIRST = tuple(sorted(Severity, key=_SEVERITY_RANK.__getitem__, reverse=True))
#: The order of lists read by a person: critical, warning, unknown, ok.
SEVERITIES_LISTED = tuple(sorted(Severity, key=_SEVERITY_LISTING.__getitem__, reverse=True))


def worst(severities: Iterable[Severity]) -> Severity:
    """The worst of some severities by `Severity.rank`; OK when there are none."""
    present = set(severities)  # a host has dozens of findings, a fleet 10,000 hosts of them
    for s in SEVERITIES_WORST_FIRST:
        if s in present:
            return s
    return Severity.OK


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One inventory host, with the connection settings resolved from its variables."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    connection: str = "ssh"  # "ssh" or "local"
    proxy_jump: str | None = None
    become: bool = False
    become_user: str | None = None
    host_key_checking: bool = True
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    #: known_hosts file(s) for this host (whitespace-separated, or "none"), from
    #: `-o UserKnownHostsFile=` in its ssh args; None: the run-wide default.
    known_hosts: str | None = None
    #: The ssh_config file of `-F FILE` in its ssh args (`none`: no file), read instead of
    #: ~/.ssh/config, as ssh does; None: ~/.ssh/config.
    ssh_config: str | None = None
    #: False when no ansible_port gave `port`: ssh_config's `Port` for the host then
    #: decides, as for ssh (Ansible passes a port only when one is set), else 22. How the
    #: port was had, not which: two specs of one port compare equal.
    port_given: bool = field(default=True, compare=False)


@dataclass(frozen=True, slots=True)
class RawResult:
    """What collection got back from one host: the probe's stdout, or why there is none."""

    host: HostSpec
    status: Status
    reason: str | None = None
    stdout: str = ""
    exit_status: int | None = None
    stderr: str = ""
    elapsed_s: float | None = None
    #: The nonce of the probe markers in `stdout` (ProbeOptions.nonce).
    nonce: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a host in a row scope (a disk, a NIC, a filesystem, a VM), with its metrics.

    `labels` carries non-metric facts such as {"vm": "web-3"} on a NIC that is a VM's tap port.
    """

    name: str
    metrics: Metrics
    labels: Mapping[str, str] = field(default_factory=dict)


#: A host's rows by scope name ("disk" -> its disks), each in the order its source found them.
#: The scopes are catalog.ROW_SCOPES; a scope without rows may be absent.
Rows = Mapping[str, tuple[Row, ...]]


@dataclass(frozen=True, slots=True)
class HostMetrics:
    """Everything computed from one host's two samples (deltas stage output)."""

    interval_s: float | None
    metrics: Metrics
    rows: Rows = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: The remote clock at the second sample, Unix nanoseconds: its boot time (btime, whole
    #: seconds) plus its uptime, so within a second of the host's own clock; None unknown.
    sampled_at_ns: int | None = None

    def rows_of(self, scope: str) -> tuple[Row, ...]:
        """The rows of one scope ("disk"), empty when there are none."""
        return self.rows.get(scope, ())


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict for one subject (host, disk, NIC, fs, VM or fleet)."""

    rule: str
    severity: Severity
    scope: str
    subject: str
    metric: str | None
    value: MetricValue
    threshold: str | None
    message: str
    #: Across runs (with a history): pending, firing or resolved, and since when (ISO).
    state: str | None = None
    since: str | None = None
    #: False for an OK that judged nothing: the subject does not offer a metric the rule
    #: needs. Like UNKNOWN, it neither advances nor resets a rule's state across runs.
    judged: bool = True
    #: Firing from this run on: pending or passing at the last run (with a history).
    new: bool = False
    #: The rule's `apply:` as the expression judged (`time_to(fs.used_pct, 100, "24h")`):
    #: `value` is that function's, not the metric's (seconds there). None: the metric's.
    apply: str | None = None


class Pass(Protocol):
    """What keeps a plain pass packed (rules.judge.Judge): its Finding, made when read."""

    def passed(self, host: str, subject: str, value: MetricValue) -> Finding:
        """The OK finding of `subject` with its default message."""
        ...


class Findings(Sequence[Finding]):
    """A host's findings in rule order, as a tuple of them reads.

    Most are plain passes (an OK with its default message: ~80 a host, against a handful of
    anything else). Those are kept packed, three slots of one flat tuple (the Pass that made
    it, subject, value) instead of a Finding and its message (230 bytes), and made again only
    when read: by JUnit's passed cases, or by whoever iterates. `notable()` skips them unmade.
    Every other finding is kept as it is. Pickles as a plain tuple.
    """

    __slots__ = ("_host", "_items", "_len", "_stored")

    def __init__(self, host: str, items: Sequence[object]) -> None:
        # items: Finding objects, and for each packed pass its Pass, subject and value.
        self._host = host
        self._items = tuple(items)
        # Read by every renderer and verdict (notable): found once, an empty tuple for most.
        self._stored = tuple([x for x in self._items if x.__class__ is Finding])
        self._len = len(self._stored) + (len(self._items) - len(self._stored)) // 3

    @property
    def items(self) -> tuple[object, ...]:
        """The flat tuple: Finding objects, and (Pass, subject, value) runs for passes."""
        return self._items

    @property
    def host(self) -> str:
        return self._host

    def stored(self) -> tuple[Finding, ...]:
        """The findings kept whole (every one but the plain passes), in order."""
        return self._stored

    def __iter__(self) -> Iterator[Finding]:
        items, host = self._items, self._host
        i, n = 0, len(items)
        while i < n:
            x = items[i]
            if x.__class__ is Finding:
                yield x
                i += 1
            else:
                yield x.passed(host, items[i + 1], items[i + 2])  # type: ignore[attr-defined]
                i += 3

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> Finding: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Finding, ...]: ...
    def __getitem__(self, index: int | slice) -> Finding | tuple[Finding, ...]:
        return tuple(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Findings | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __reduce__(self) -> tuple[type[tuple[Finding, ...]], tuple[tuple[Finding, ...]]]:
        # Its passes refer to the run's rules (compiled templates): a copy is the findings.
        return tuple, (tuple(self),)


def notable(findings: Iterable[Finding]) -> Iterator[Finding]:
    """The findings worth reading, in order: not OK, or OK with a state (pending, resolved).
    A Findings' plain passes are skipped without being made."""
    source = findings.stored() if isinstance(findings, Findings) else findings
    return (f for f in source if f.severity is not Severity.OK or f.state is not None)


def checks_passed(findings: Sequence[Finding], unheld: int = 0) -> int:
    """How many of the checks passed: all but the notable ones that are not OK, and the
    `unheld` passes of a merged host's own run."""
    return (
        len(findings) - sum(1 for f in notable(findings) if f.severity is not Severity.OK) + unheld
    )


@dataclass(frozen=True, slots=True)
class HostReport:
    """One host in the report: identity, status and, when collected, its metrics."""

    name: str
    address: str
    groups: tuple[str, ...]
    status: Status
    error: str | None
    interval_s: float | None = None
    metrics: Metrics = field(default_factory=dict)
    rows: Rows = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: The rules' verdicts (a Findings after the rules, passes packed; a tuple before).
    findings: Sequence[Finding] = ()
    #: What the probe found or the inventory declared: kvm, xen or none.
    hypervisor: str = "none"
    #: The second sample's cumulative counters by (scope, row name), the host's under
    #: ("host", ""), each as compact JSON: what the history keeps to average the gap to the
    #: next run (text: a tenth of the memory of dicts of ints, 5 KB a host, not 23).
    counters: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: Averages over the whole gap since the last run (with a history), by (scope, name).
    since_last: Mapping[tuple[str, str], Metrics] = field(default_factory=dict)
    since_last_s: float | None = None
    #: The machine's SMBIOS system UUID (/sys/class/dmi/id/product_uuid, lowercase): for a
    #: libvirt guest, its domain's UUID; else a Xen guest's /sys/hypervisor/uuid (a PV
    #: guest has no SMBIOS). None when unreadable (root only) or absent.
    product_uuid: str | None = None
    #: The inventory's `fleetmon_vm_of: hypervisor/domain`, when set.
    vm_of: str | None = None
    #: What the host runs on (sources/virt.py); None: not read (not collected, older probe).
    virt: Virt | None = None
    #: Checks that passed in the run a merged host was read from: its JSON report lists
    #: only the others, and gives their count (`checks_passed`): counted, not held.
    passed_unheld: int = 0
    #: Seconds the host took to collect (connect, probe, answer), when it was tried: how the
    #: run went, not what the host is, so two reports of one host compare equal without it.
    collection_s: float | None = field(default=None, compare=False)
    #: The remote clock at the second sample, Unix nanoseconds (HostMetrics.sampled_at_ns).
    sampled_at_ns: int | None = None
    #: The inventory's `fleetmon_site`, when set: the exports' `site` label (render.labels).
    site: str | None = None
    #: `run --cluster`: the Dask worker that collected the host, as `address (name on
    #: machine)` (cluster/task.py worker_label); None in a local run. How the run went, as
    #: collection_s: two reports of one host compare equal without it.
    collected_by: str | None = field(default=None, compare=False)

    @property
    def collected(self) -> bool:
        return self.status is Status.OK

    def rows_of(self, scope: str) -> tuple[Row, ...]:
        """The rows of one scope ("disk"), empty when there are none."""
        return self.rows.get(scope, ())


@dataclass(frozen=True, slots=True)
class FleetStat:
    """One metric across the fleet (METRICS.md scope `fleet`)."""

    count: int
    min: float
    median: float
    p95: float
    max: float
    mean: float
    stddev: float
    outliers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Facts about the run shown at the top of every report."""

    fleetmon_version: str
    started_at: str  # ISO 8601 UTC, "2026-11-26T03:00:00Z"
    interval_s: float
    inventory: str
    rule_files: tuple[str, ...] = ()
    limit: str | None = None
    #: Host-key policy in words when relaxed (e.g. "host key checking off for 3 hosts").
    host_key_notes: tuple[str, ...] = ()
    #: Facts about the run itself (the history file's journal, its upgrade...).
    notes: tuple[str, ...] = ()
    #: Seconds from the run's start until its last host was collected and analysed.
    duration_s: float | None = None
    #: When the history's last run before this one started (None: no history, or this is
    #: its first run): what "new since the last run" is new against.
    previous_run_at: str | None = None


@dataclass(frozen=True, slots=True)
class Trend:
    """One metric of one subject over a window, as bucket averages oldest first (None: no
    value recorded then): a sparkline of the HTML report."""

    scope: str
    subject: str
    metric: str
    window: str  # "24h" or "7d"
    values: tuple[float | None, ...]
    label: str = ""  # when not the metric's own ("rx+tx")


@dataclass(frozen=True, slots=True)
class Report:
    """The consolidated report every renderer turns into text."""

    run: RunInfo
    hosts: tuple[HostReport, ...]
    fleet: Mapping[str, FleetStat]
    exit_code: int
    findings: tuple[Finding, ...] = ()  # fleet-scope findings (host ones live on the host)
    #: From the history, by host name: sparklines, and forecasts in words.
    trends: Mapping[str, tuple[Trend, ...]] = field(default_factory=dict)
    forecasts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
