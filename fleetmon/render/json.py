"""The JSON report, schema `fleetmon.report/1` of ../shared/METRICS.md (pure).

The shape only grows by adding keys: other tools and CI jobs read it.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fleetmon.model import (
    Finding,
    HostReport,
    MetricValue,
    Report,
    Row,
    Severity,
    catalog,
    checks_passed,
    notable,
)
from fleetmon.model.times import ns_text
from fleetmon.rules.verdict import summary

SCHEMA = "fleetmon.report/1"


def _value(v: MetricValue) -> MetricValue:
    # JSON has no NaN or infinity: an unknown figure is null.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class _Line(dict[str, Any]):
    """A row: written on one line of the indented report by json's C encoder. Indented one
    value a line, 200 containers' rows were most of a host's JSON and, through the
    encoder's pure-Python indenting path, the client's largest cost per host. `row`: the
    row, to clean when the encoder refuses its metrics as they are."""

    row: Row | None = None


class _Rows(list[dict[str, Any]]):
    """A scope's rows (_raw_row): written by _indented with one encoding of them all."""


#: Put between the rows encoded at once, then cut at: `, "\u0000row\u0000", ` can only be
#: this element (inside a JSON string `"` is escaped; a row holds no list of strings).
_CUT = "\x00row\x00"


def _row(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = _Line(
        {
            "name": row.name,
            "metrics": {k: _value(v) for k, v in row.metrics.items()},
        }
    )
    if row.labels:
        out["labels"] = dict(row.labels)
    return out


def _raw_row(row: Row) -> dict[str, Any]:
    out = _Line({"name": row.name, "metrics": row.metrics})
    if row.labels:
        out["labels"] = row.labels
    out.row = row
    return out


def finding_dict(f: Finding) -> dict[str, Any]:
    """One finding as METRICS.md shows it (plus its threshold text)."""
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "scope": f.scope,
        "subject": f.subject,
        "metric": f.metric,
        "apply": f.apply,
        "value": _value(f.value),
        "threshold": f.threshold,
        "message": f.message,
        "state": f.state,
        "since": f.since,
        "new": f.new,
    }


def _virt(h: HostReport) -> dict[str, str | None]:
    v = h.virt
    return {
        "virtualization_type": None if v is None else v.type,
        "virtualization_role": None if v is None else v.role,
        "virtualization": None if v is None else v.words(h.hypervisor),
        "virtualization_product": None if v is None else v.product,
    }


def _host(h: HostReport, clean: bool = True, raw_rows: bool = False) -> dict[str, Any]:
    # clean=False leaves the metric mappings as they are, for the encoder to refuse (NaN,
    # infinity, a non-dict mapping) before the host is done again the careful way;
    # raw_rows=True only the rows' (_indented cleans a row the encoder refuses).
    rows: Callable[[Row], dict[str, Any]] = _row if clean and not raw_rows else _raw_row
    out: dict[str, Any] = {
        "name": h.name,
        "address": h.address,
        "groups": list(h.groups),
        "status": h.status.value,
        "error": h.error,
        "hypervisor": h.hypervisor,
        "site": h.site,  # the inventory's fleetmon_site, or null
        "product_uuid": h.product_uuid,
        # What the host runs on, as Ansible's ansible_virtualization_type/_role (ids of
        # systemd-detect-virt), its words, and its DMI vendor and product; null: not read.
        **_virt(h),
        "vm_of": h.vm_of,  # the inventory's fleetmon_vm_of, or null: merge pairs by it too
        "interval_s": h.interval_s,
        # The host's clock at its second sample, to the nanosecond (what Influx stamps its
        # points with), and how long collecting it took. Null for a host not collected
        # (METRICS.md), though merge gives one its report's start for Influx to stamp.
        "sampled_at": None
        if h.sampled_at_ns is None or not h.collected
        else ns_text(h.sampled_at_ns),
        "collection_s": _value(h.collection_s),
        "collected_by": h.collected_by,  # run --cluster: the worker's label, else null
        "metrics": {k: _value(v) for k, v in h.metrics.items()} if clean else h.metrics,
    }
    for scope in catalog.ROW_SCOPES:  # "disks", "nics", "filesystems", "vms", in this order
        found = [rows(r) for r in h.rows_of(scope.name)]
        out[scope.key] = found if rows is _row else _Rows(found)
    out["notes"] = list(h.notes)
    out["since_last_run"] = _since_last(h)
    # OK verdicts are kept in the model for JUnit's passed test cases; the report lists what
    # is wrong or unknown.
    out["findings"] = [finding_dict(f) for f in notable(h.findings)]
    # ...and counts the passes it leaves out (a merge of this report counts them again).
    out["checks_passed"] = checks_passed(h.findings, h.passed_unheld)
    return out


def _since_last(h: HostReport) -> dict[str, Any] | None:
    """Averages over the whole gap since the last run (with a history): the host's metrics,
    and its rows' by scope and name."""
    if h.since_last_s is None:
        return None
    rows: dict[str, dict[str, Any]] = {}
    for (scope, name), metrics in h.since_last.items():
        if scope != "host":
            rows.setdefault(scope, {})[name] = {k: _value(v) for k, v in metrics.items()}
    host = h.since_last.get(("host", ""), {})
    return {
        "interval_s": h.since_last_s,
        "metrics": {k: _value(v) for k, v in host.items()},
        "rows": rows,
    }


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data."""
    return _doc(report, [_host(h) for h in report.hosts])


def _doc(report: Report, hosts: list[dict[str, Any]] | None) -> dict[str, Any]:
    run = report.run
    fleet_metrics = {
        name: {
            "count": s.count,
            "min": s.min,
            "median": s.median,
            "p95": s.p95,
            "max": s.max,
            "mean": s.mean,
            "stddev": s.stddev,
            "outliers": list(s.outliers),
        }
        for name, s in report.fleet.items()
    }
    return {
        "schema": SCHEMA,
        "fleetmon_version": run.fleetmon_version,
        "started_at": run.started_at,
        "previous_run_at": run.previous_run_at,
        "interval_s": run.interval_s,
        "exit_code": report.exit_code,
        "inventory": run.inventory,
        "limit": run.limit,
        "rule_files": list(run.rule_files),
        "host_key_notes": list(run.host_key_notes),
        "notes": list(run.notes),
        "summary": summary(report),
        "hosts": hosts,
        "fleet": {
            "metrics": fleet_metrics,
            "findings": [finding_dict(f) for f in report.findings if f.severity is not Severity.OK],
        },
    }


#: Reports of up to this many hosts are indented throughout, for people reading them.
INDENT_MAX_HOSTS = 100
#: json's C encoder runs only without `indent`: 5x faster on 10,000 hosts (150 MB).
_ENCODER = json.JSONEncoder(allow_nan=False)
#: That C encoder made once (JSONEncoder.encode makes one per call: a microsecond, as much
#: as a container's row costs to write), without the circular-reference check (a report's
#: values are plain trees); what JSONEncoder.encode writes, byte for byte.
_C_ENCODER: Callable[[object, int], Iterable[str]] | None = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
        False, False, False,
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)  # fmt: skip


def _encode(value: object) -> str:
    """json.dumps(value, allow_nan=False), by the C encoder made once."""
    if type(value) is str:
        return json.encoder.encode_basestring_ascii(value)
    if _C_ENCODER is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODER(value, 0))


#: The types _indented writes as they are: a container of these only (and string keys) is
#: a leaf, written by the C encoder at once (_flat).
_SCALARS = frozenset({str, int, float, bool, type(None)})
#: Per indentation: a C encoder putting ",\n" and that indentation between items.
_FLAT_ENCODERS: dict[str, Callable[[object, int], Iterable[str]]] = {}


def _flat(value: dict[str, Any] | list[Any], pad: str) -> str | None:
    """_indented's text of a non-empty dict or list of scalars only (string keys): what it
    writes an item at a time (a host's metrics, a finding: ~800 encoder calls a host), by
    one C encoding with ",\n" and the indentation as its item separator. None when the
    value holds anything else, or without the C encoder."""
    if _C_ENCODER is None:
        return None
    scalars = _SCALARS
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str or type(v) not in scalars:
                return None
        opening, closing = "{", "}"
    elif type(value) is list:
        for v in value:
            if type(v) not in scalars:
                return None
        opening, closing = "[", "]"
    else:
        return None
    inner = pad + "  "
    encoder = _FLAT_ENCODERS.get(inner)
    if encoder is None:
        encoder = _FLAT_ENCODERS[inner] = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
            None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ": ",
            ",\n" + inner, False, False, False,
        )  # fmt: skip
    text = "".join(encoder(value, 0))
    return f"{opening}\n{inner}{text[1:-1]}\n{pad}{closing}"


#: A host (past INDENT_MAX_HOSTS) or a scope's rows (below it) of more rows than this
#: (containers, VMs) has each distinct string of its JSON encoded once (_encode_repeating):
#: 200 containers' 1.5M fewer instructions a host, where a host of 10 rows would pay 0.12M
#: more for the look-ups of strings met once.
REPEATING_ROWS = 50


def _encode_host(h: HostReport) -> str:
    """One host's JSON: its metric dicts as they are (2.7 million values for 10,000 hosts),
    or, when the encoder refuses them (NaN, infinity), cleaned to null first."""
    many = sum(map(len, h.rows.values())) > REPEATING_ROWS
    try:
        return (_encode_repeating if many else _encode)(_host(h, clean=False))
    except (ValueError, TypeError):
        return _encode(_host(h))


def _indented(value: Any, pad: str = "") -> str:
    """json.dumps(value, indent=2) but for rows (_Line), each written on one line."""
    if isinstance(value, _Line):
        try:
            return _encode(value)
        except (ValueError, TypeError):
            if value.row is None:
                raise
            return _encode(_row(value.row))
    inner = pad + "  "
    if type(value) is _Rows and len(value) > 1:
        text = _rows_text(value, pad)
        if text is not None:
            return text
    if value and type(value) in (dict, list):
        text = _flat(value, pad)
        if text is not None:
            return text
    if isinstance(value, dict) and value:
        items = (f"{inner}{_encode(k)}: {_indented(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and value:
        return "[\n" + ",\n".join(inner + _indented(v, inner) for v in value) + f"\n{pad}]"
    return _encode(value)


class _Strings(dict[str, str]):
    """Each string met and its JSON text, made when first met: the string encoder of one
    encoding of many rows, whose keys repeat in every row (200 containers: 3,400 metric
    keys and 1,000 other strings, ~440 of them distinct), each encoded once instead of at
    each row (the C encoder keeps no such memo). The text is encode_basestring_ascii's, as
    _C_ENCODER writes it: only how often it is computed changes."""

    def __missing__(self, text: str) -> str:
        found = self[text] = json.encoder.encode_basestring_ascii(text)
        return found


def _encode_repeating(value: object) -> str:
    """_encode(value), each distinct string of it encoded once (_Strings)."""
    if _C_ENCODER is None:
        return _encode(value)
    strings = _Strings()
    encoder = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, strings.__getitem__, None, ": ", ", ", False, False, False,
    )  # fmt: skip
    return "".join(encoder(value, 0))


def _rows_text(rows: _Rows, pad: str) -> str | None:
    """The rows as _indented writes them (one a line), from one encoding of them all, _CUT
    between them (200 containers: a call each was a fifth of their cost), each distinct
    string encoded once past REPEATING_ROWS rows (_encode_repeating); None when the
    encoder refuses one (NaN, infinity: each is then written alone, cleaned)."""
    mixed: list[object] = [_CUT] * (2 * len(rows) - 1)
    mixed[0::2] = rows
    try:
        encode = _encode_repeating if len(rows) > REPEATING_ROWS else _encode
        parts = encode(mixed)[1:-1].split(f", {_encode(_CUT)}, ")
    except (ValueError, TypeError):
        return None
    if len(parts) != len(rows):  # a row the cut would misread: none can be
        return None
    inner = pad + "  "
    return "[\n" + inner + f",\n{inner}".join(parts) + f"\n{pad}]"


def json_chunks(report: Report) -> Iterator[str]:
    """render_json's text in pieces (one per host past 100 hosts), to write as they come:
    the whole text of 10,000 hosts is 100 MB."""
    if len(report.hosts) <= INDENT_MAX_HOSTS:
        yield _indented(_doc(report, [_host(h, raw_rows=True) for h in report.hosts])) + "\n"
        return
    yield "{\n"
    for n, (key, value) in enumerate(_doc(report, None).items()):
        head = (",\n" if n else "") + f"{_encode(key)}: "
        if key != "hosts":
            yield head + _encode(value)
            continue
        yield head + "[\n"
        for i, h in enumerate(report.hosts):
            yield (",\n" if i else "") + _encode_host(h)
        yield "\n]"
    yield "\n}\n"


def render_json(report: Report) -> str:
    """The JSON report text (final newline): indented when small, else one host per line."""
    return "".join(json_chunks(report))
