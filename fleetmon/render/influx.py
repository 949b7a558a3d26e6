"""`--format influx`, `--influx-url` (pure): the report as InfluxDB line protocol, for
Telegraf's `exec` input or InfluxDB's /write and /api/v2/write.

One measurement per scope (`fleetmon_host`, `fleetmon_vm`... from catalog.ROW_SCOPES), the
catalogue's metrics as fields in its own units (percent, as Telegraf's inputs report them),
named without their scope (`cpu_pct`; the host's `cpu_busy_pct`) and typed by their unit,
never by the value at hand (a field keeps its first type in a shard). Tags: `host`, the
row's label (`vm`, `disk`, `nic`, `mountpoint`), the VM a NIC serves, `hypervisor`, `site`
and, when asked, `groups`. Timestamps are nanoseconds of the host's own clock at its second
sample (HostReport.sampled_at_ns), else the run's start. Also `fleetmon_host_up` for every
host and `fleetmon_finding` for each finding that is not OK (with the host's tags, and
`status` or the finding's), and `fleetmon_run`. The run's own points (`fleetmon_run`, the
fleet-scope findings) are tagged with its `inventory` and `limit` (run_tags): the runs of
one inventory's parts (`--limit site_paris`, `--limit site_lyon`), started by cron in the
same second, are points of their own, not one that overwrites the other.

Escaping follows https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/:
commas and spaces in measurements, commas, equals signs and spaces in tag keys, tag values
and field keys, double quotes and backslashes in string fields. A newline or other control
character cannot be written at all: it is shown as an escape (`\\n`, `\\x07`) as in the
text report, and so is a backslash that ends a tag value (InfluxDB 1.x reads it, doubled
or not, as escaping the separator after it: `\\x5c`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence

from fleetmon.model import HostReport, MetricValue, Report, catalog
from fleetmon.model.catalog import MetricDef
from fleetmon.model.series import PREFIX, influx_kind, measurement, quantity
from fleetmon.render.labels import (
    epoch_s,
    host_labels,
    problem_labels,
    row_labels,
    status_labels,
)

# Controls, and the lone surrogates of bytes that are not UTF-8 (model.utf8).
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_NAMES = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})


def _visible(text: str) -> str:
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: _CONTROL_NAMES.get(m[0]) or _escape(ord(m[0])), text)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_tag(text: str) -> str:
    """A tag key, tag value or field key: commas, equals signs and spaces escaped."""
    out = _visible(text).translate(_TAG)
    # InfluxDB reads a final backslash as escaping the separator after it, doubled or not.
    return out[:-1] + "\\x5c" if out.endswith("\\") else out


def escape_measurement(text: str) -> str:
    """A measurement name: commas and spaces escaped."""
    return _visible(text).translate(_MEASUREMENT)


def string_field(text: str) -> str:
    """A string field value in its double quotes (backslash and quote escaped, control
    characters shown as escapes)."""
    return '"' + _visible(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def field_value(v: MetricValue, kind: str) -> str | None:
    """A value written as its field type (None: no field, the value being unknown)."""
    if v is None:
        return None
    if kind == "string":
        return string_field(str(v))
    if kind == "boolean":
        return "true" if v else "false"
    if isinstance(v, str):
        return None
    if kind == "integer":
        return integer_field(v)
    f = float(v)
    if not math.isfinite(f):
        return None  # InfluxDB has no NaN or infinity
    return repr(f)


#: InfluxDB's integer field: int64.
INT64 = range(-(2**63), 2**63)


def integer_field(v: int | float) -> str | None:
    """An integer field's value (`123i`), or None (no field) for a value InfluxDB cannot
    store as one: past int64, or not finite.

    Not a float past int64: a field keeps one type (a shard refuses a float where it holds
    integers, the whole line with it), so the type comes from the unit, never from the
    value. Not every `B` and `count` field a float: that conflicts with the integers already
    stored, and loses the figures' precision past 2**53. Not clamped: no byte count or count
    comes near 2**63 (8 EiB); such a value is a corrupt reading (the probe takes u64
    counters) and a clamped one a false figure, so it is left out, as NaN is. An int is
    written as read, never through float (9007199254740993 stays so).
    """
    if isinstance(v, float) and not math.isfinite(v):
        return None
    n = round(v) if isinstance(v, float) else int(v)
    return f"{n}i" if n in INT64 else None


def _fields(defs: Sequence[tuple[MetricDef, str, str]], metrics: Mapping[str, MetricValue]) -> str:
    parts = []
    for m, key, kind in defs:
        text = field_value(metrics.get(m.name), kind)
        if text is not None:
            parts.append(f"{key}={text}")
    return ",".join(parts)


def _tags(tags: Mapping[str, str]) -> str:
    return "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)


def _defs(metrics: Sequence[MetricDef]) -> list[tuple[MetricDef, str, str]]:
    return [(m, escape_tag(quantity(m)), influx_kind(m)) for m in metrics]


def influx_chunks(report: Report, *, groups: bool = False) -> Iterator[str]:
    """The report's lines, one host at a time, then its findings and the run's line."""
    run_ns = round((epoch_s(report.run.started_at) or 0.0) * 1e9)
    host_defs = _defs(catalog.HOST)
    scopes = [
        (s, escape_measurement(measurement(s.name)), _defs(s.metrics)) for s in catalog.ROW_SCOPES
    ]
    for h in report.hosts:
        yield "".join(host_lines(h, run_ns, host_defs, scopes, groups))
    yield "".join(finding_lines(report, run_ns, groups))
    yield run_line(report, run_ns)


def host_lines(
    h: HostReport,
    run_ns: int,
    host_defs: Sequence[tuple[MetricDef, str, str]],
    scopes: Sequence[tuple[catalog.RowScope, str, Sequence[tuple[MetricDef, str, str]]]],
    groups: bool,
) -> Iterator[str]:
    """One host's lines: its up line, its metrics, its rows scope by scope (`scopes`: each
    with its measurement, escaped, and its fields)."""
    base = host_labels(h, groups=groups)
    ts = h.sampled_at_ns if h.sampled_at_ns is not None else run_ns
    up = f"up={int(h.collected)}i"
    if h.collection_s is not None:
        up += f",collection_seconds={float(h.collection_s)!r}"
    yield f"{PREFIX}_host_up{_tags(status_labels(h, groups=groups))} {up} {ts}\n"
    if not h.collected:
        return
    tags = _tags(base)
    fields = _fields(host_defs, h.metrics)
    if fields:
        yield f"{escape_measurement(measurement('host'))}{tags} {fields} {ts}\n"
    for scope, name, defs in scopes:
        for row in h.rows_of(scope.name):
            fields = _fields(defs, row.metrics)
            if fields:
                tags = _tags(row_labels(scope, base, row))
                yield f"{name}{tags} {fields} {ts}\n"


def finding_lines(report: Report, run_ns: int, groups: bool = False) -> Iterator[str]:
    """`fleetmon_finding` for each finding that is not OK (the fleet's have no host)."""
    fleet = run_tags(report)
    for h, f, tags in problem_labels(report, groups=groups):
        if h is None:
            tags |= fleet
        fields = [f"message={string_field(f.message)}"]
        value = None if isinstance(f.value, str) else field_value(f.value, "float")
        if value is not None:
            fields.append(f"value={value}")
        if f.threshold:
            fields.append(f"threshold={string_field(f.threshold)}")
        ts = h.sampled_at_ns if h is not None and h.sampled_at_ns is not None else run_ns
        yield f"{PREFIX}_finding{_tags(tags)} {','.join(fields)} {ts}\n"


def run_line(report: Report, run_ns: int) -> str:
    """`fleetmon_run`: its hosts, how many were collected, its exit code and duration."""
    collected = sum(1 for h in report.hosts if h.collected)
    fields = [
        f"hosts={len(report.hosts)}i",
        f"collected={collected}i",
        f"failed={len(report.hosts) - collected}i",
        f"exit_code={report.exit_code}i",
    ]
    if report.run.duration_s is not None:
        fields.append(f"duration_seconds={float(report.run.duration_s)!r}")
    return f"{PREFIX}_run{_tags(run_tags(report))} {','.join(fields)} {run_ns}\n"


def run_tags(report: Report) -> dict[str, str]:
    """The tags of the run's own points: its inventory as given and its --limit (none
    without)."""
    return {"inventory": report.run.inventory, "limit": report.run.limit or ""}


def render_influx(report: Report, *, groups: bool = False) -> str:
    """The report as InfluxDB line protocol."""
    return "".join(influx_chunks(report, groups=groups))
