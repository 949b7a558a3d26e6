"""The catalogue's metrics as other tools name them (pure): Prometheus series and InfluxDB
fields, derived from each MetricDef and its scope, so a new row scope is exported as it is.

Prometheus (https://prometheus.io/docs/practices/naming/): `fleetmon_<scope>_<quantity>`
in base units: a percentage becomes a ratio 0-1 (`_ratio`), milliseconds seconds,
`_per_s` `_per_second`. A catalogue metric is a gauge (a rate or level over the sample
interval), except the few that count since something began (COUNTERS), which are counters
named `..._total`; a gauge never ends in `_total`, `_count`, `_sum` or `_bucket`, which the
format reserves. A `state` is a label of a series worth 1.

InfluxDB keeps the catalogue's own units (percent, as Telegraf does): a measurement per
scope, the metric's name without the scope as the field, typed by its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fleetmon.model.catalog import MetricDef

PREFIX = "fleetmon"

#: Names whose derived form would end in a suffix the exposition formats reserve.
RENAMED = {"cpu.count": "cpus", "hv.vms_total": "hv_vms"}
#: The label naming a row of a scope in the exports, where it is not the scope's name:
#: node_exporter's `mountpoint` for a filesystem, cAdvisor's `container` for a container.
ROW_LABELS = {"fs": "mountpoint", "ctr": "container"}
#: Metrics that count since something began, not over the sample interval: Prometheus
#: counters (METRICS.md: a container's OOM kills are its cgroup's since it was created).
COUNTERS = frozenset({"ctr.oom_kills"})
#: Suffixes a gauge may not end in (promtool check metrics; OpenMetrics).
RESERVED = ("_total", "_count", "_sum", "_bucket", "_created", "_info")


@dataclass(frozen=True, slots=True)
class PromMetric:
    """One catalogue metric as a Prometheus gauge family."""

    source: str  # the catalogue's name: "vm.cpu_pct"
    name: str  # "fleetmon_vm_cpu_ratio"; a counter's samples add `_total`
    help: str
    unit: str  # OpenMetrics `# UNIT`, a suffix of `name`: "ratio", "bytes", "seconds" or ""
    #: The value is the catalogue's times 10**exp10 (-2: percent to ratio, -3: ms to s).
    exp10: int = 0
    #: For a `state` metric: the label that carries the state; the series is worth 1.
    state_label: str | None = None
    #: A bool metric: 1 or 0.
    boolean: bool = False
    kind: str = "gauge"  # or "counter"


#: Catalogue unit -> (the name's suffix in that unit, its base-unit suffix, OpenMetrics
#: unit, power of ten to the base unit).
_UNITS: dict[str, tuple[str, str, str, int]] = {
    "%": ("_pct", "_ratio", "ratio", -2),
    "ms": ("_ms", "_seconds", "seconds", -3),
    "s": ("_s", "_seconds", "seconds", 0),
    "B": ("_bytes", "_bytes", "bytes", 0),
    "ratio": ("_ratio", "_ratio", "ratio", 0),
}
#: What HELP adds where the name alone leaves the unit in doubt.
_UNIT_WORDS = {"%": "as a ratio (100% is 1)", "ms": "in seconds", "s": "in seconds",
               "bool": "1 or 0"}  # fmt: skip


def quantity(m: MetricDef) -> str:
    """The metric's name without its scope, as an identifier: `vm.cpu_pct` -> `cpu_pct`,
    host `cpu.busy_pct` -> `cpu_busy_pct`."""
    name = m.name.removeprefix(f"{m.scope}.")
    return name.replace(".", "_")


@lru_cache(maxsize=1024)
def prom_metric(m: MetricDef) -> PromMetric:
    """The Prometheus family of one catalogue metric."""
    base = RENAMED.get(m.name) or quantity(m)
    unit, exp10 = "", 0
    if m.unit in _UNITS:
        suffix, new, unit, exp10 = _UNITS[m.unit]
        base = (base.removesuffix(suffix) if base.endswith(suffix) else base) + new
    elif m.unit.endswith("/s"):
        base = base.removesuffix("_per_s") + "_per_second"
    for reserved in RESERVED:
        base = base.removesuffix(reserved)
    words = _UNIT_WORDS.get(m.unit)
    what = m.help or m.label
    help_ = f"{what}{f', {words}' if words else ''} (fleetmon {m.name})"
    return PromMetric(
        source=m.name,
        name=f"{PREFIX}_{m.scope}_{base}",
        help=help_,
        unit=unit,
        exp10=exp10,
        state_label=base.rpartition("_")[2] if m.unit == "state" else None,
        boolean=m.unit == "bool",
        kind="counter" if m.name in COUNTERS else "gauge",
    )


def row_label(scope: str) -> str:
    """The Prometheus label and InfluxDB tag naming a row of the scope: `vm`, `disk`..."""
    return ROW_LABELS.get(scope, scope)


def measurement(scope: str) -> str:
    """The InfluxDB measurement of a scope's metrics: `fleetmon_vm`."""
    return f"{PREFIX}_{scope}"


#: InfluxDB field types by catalogue unit (anything else is a float): a field keeps one type
#: for good, so it comes from the catalogue, never from the value at hand.
INFLUX_INTEGER_UNITS = frozenset({"count", "B"})


def influx_kind(m: MetricDef) -> str:
    """The InfluxDB field type of a metric: integer, float, boolean or string."""
    if m.unit in INFLUX_INTEGER_UNITS:
        return "integer"
    return {"bool": "boolean", "state": "string"}.get(m.unit, "float")
