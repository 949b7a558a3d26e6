"""The JSON report's indenting writer (render/json.py _indented): a dict or list of scalars
only is written by one C encoding (_flat), byte for byte what the writer wrote it as an item
at a time, and as json.dumps(indent=2) writes it, on awkward values."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
import reportfactory as rf

from fleetmon.model import Finding, Row, Severity
from fleetmon.render import json as json_mod
from fleetmon.render.json import _encode, _indented, render_json

#: Values a report can hold: non-ASCII and lone surrogates (names that came as bytes),
#: control characters, quotes, huge and negative integers, booleans, null, floats at
#: their edges (their shortest repr), the empty string.
AWKWARD: list[Any] = [
    "é naïve ☃ 𝄞",
    "web\udcff1",
    "\ud800",
    'a "quoted", \\ back\nline\t\x00\x1f\x7f',
    "",
    2**63,
    -(2**64) - 1,
    10**300,
    0,
    -0.0,
    True,
    False,
    None,
    1e-310,
    1.7976931348623157e308,
    0.1 + 0.2,
    -5e-324,
    12345678901234567.0,
]


def _item_at_a_time(value: Any, pad: str = "") -> str:
    """The writer as it was: each item of a dict or list on its own, by _encode."""
    inner = pad + "  "
    if isinstance(value, dict) and value:
        items = (f"{inner}{_encode(k)}: {_item_at_a_time(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and value:
        return "[\n" + ",\n".join(inner + _item_at_a_time(v, inner) for v in value) + f"\n{pad}]"
    return _encode(value)


DOCS: list[Any] = [
    {f"k{i}": v for i, v in enumerate(AWKWARD)},
    AWKWARD,
    {"nested": {"a": AWKWARD, "b": {"c": {"d": 1.5, "é": "\udcff"}}, "e": []}, "f": {}},
    [[1, 2], [], [{}], [{"x": None}], "s"],
    {"ключ": 1, "\udcff": 2, "a\nb": 3, "": 4},
    {"single": 1},
    [None],
]


@pytest.mark.parametrize("doc", DOCS)
def test_flat_containers_are_written_as_item_at_a_time(doc: Any) -> None:
    text = _indented(doc)
    assert text == _item_at_a_time(doc)
    assert text == json.dumps(doc, indent=2, allow_nan=False)
    assert _indented(doc, "    ") == _item_at_a_time(doc, "    ")


def test_only_scalars_and_string_keys_take_the_c_path() -> None:
    assert json_mod._flat({"a": 1, "b": "x"}, "") is not None
    assert json_mod._flat([1, "x", None], "  ") is not None
    assert json_mod._flat({"a": [1]}, "") is None  # a container inside: item at a time
    assert json_mod._flat([{"a": 1}], "") is None
    assert json_mod._flat({1: "x"}, "") is None  # a non-string key: as _encode writes it
    assert json_mod._flat((1, 2), "") is None  # only dict and list
    assert _indented({1: "x"}) == _item_at_a_time({1: "x"})

    class Sub(str):
        pass

    assert json_mod._flat({"a": Sub("x")}, "") is None  # a str subclass: _encode's path
    assert _indented({"a": Sub("x")}) == _item_at_a_time({"a": Sub("x")})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_as_before(bad: float) -> None:
    # The report cleans them first (_value); what is left the encoder refuses, both ways.
    for doc in ({"a": 1, "b": bad}, [1, bad]):
        with pytest.raises(ValueError, match="not JSON compliant"):
            _item_at_a_time(doc)
        with pytest.raises(ValueError, match="not JSON compliant"):
            _indented(doc)


def test_huge_int_past_str_digits_is_refused_as_before() -> None:
    huge = 10**5000  # past sys.int_info.default_max_str_digits
    with pytest.raises(ValueError, match="digits"):
        _item_at_a_time({"a": huge})
    with pytest.raises(ValueError, match="digits"):
        _indented({"a": huge})


def test_a_whole_report_is_unchanged() -> None:
    """A small report (indented throughout) with awkward names, labels, metric values
    and findings: the same text as the item-at-a-time writer gives for everything but the
    rows (each on one line, written by _Line's own path either way)."""
    fleet = rf.fleet_report(3, 2, seed=11)
    host = fleet.hosts[0]
    metrics = dict(host.metrics)
    metrics.update({"cpu.busy_pct": math.nan, "mem.used_bytes": 2**70, "x.é": "\udcff"})
    row = Row("sd\udcff", {"disk.util_pct": math.inf, "disk.r_await_ms": -0.0}, {"é": "☃"})
    bad = Finding(
        "r\udcff", Severity.WARNING, "host", host.name, "cpu.busy_pct", math.nan, "> 1",
        'über "x"\n', None, None, True,
    )  # fmt: skip
    host = dataclasses.replace(
        host,
        name="hôst\udcff",
        metrics=metrics,
        rows={**host.rows, "disk": (*host.rows_of("disk"), row)},
        notes=(*host.notes, "nöte \udcff"),
        findings=(*host.findings, bad),
    )
    report = dataclasses.replace(fleet, hosts=(host, *fleet.hosts[1:]))
    doc = json_mod._doc(report, [json_mod._host(h, raw_rows=True) for h in report.hosts])

    def old(value: Any, pad: str = "") -> str:
        if isinstance(value, json_mod._Line):
            return _indented(value, pad)
        inner = pad + "  "
        if type(value) is json_mod._Rows and len(value) > 1:
            text = json_mod._rows_text(value, pad)
            if text is not None:
                return text
        if isinstance(value, dict) and value:
            items = (f"{inner}{_encode(k)}: {old(v, inner)}" for k, v in value.items())
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, (list, tuple)) and value:
            return "[\n" + ",\n".join(inner + old(v, inner) for v in value) + f"\n{pad}]"
        return _encode(value)

    text = render_json(report)
    assert text == old(doc) + "\n"
    assert '"x.\\u00e9": "\\udcff"' in text
    assert '"cpu.busy_pct": null' in text


class _Sub(str):
    pass


@pytest.mark.parametrize(
    "doc",
    [
        *DOCS,
        # Strings repeated as keys and values, as rows repeat them; a str subclass; keys
        # the encoder converts (int, float, bool, None) to the strings it then looks up.
        [{"é": "é", "a": {"é": ["é", "a", _Sub("a")]}}, "é", _Sub("é"), "\udcff", "\udcff"],
        {7: "7", "7": 7, 2.5: "2.5", True: "true", None: "null", "true": None},
        [{"name": f"c{i % 3}", "metrics": {"m": i / 7, "n": None}, "labels": {"id": "x"}}
         for i in range(10)],
    ],
)  # fmt: skip
def test_strings_encoded_once_write_what_encode_writes(doc: Any) -> None:
    assert json_mod._encode_repeating(doc) == _encode(doc)
    assert json_mod._encode_repeating(doc) == json.dumps(doc, allow_nan=False)


def test_strings_encoded_once_refuse_what_encode_refuses() -> None:
    for bad in ({"a": math.nan}, [1, math.inf], {"a": object()}, {(1, 2): "x"}):
        with pytest.raises((ValueError, TypeError)) as old:
            _encode(bad)
        with pytest.raises(old.type):
            json_mod._encode_repeating(bad)


def test_rows_of_repeated_keys_are_each_row_encoded() -> None:
    """_rows_text (one encoding of all the rows, past REPEATING_ROWS each distinct
    string encoded once): each row as _encode writes it alone, one a line, awkward names
    and labels included, below and past the threshold."""
    specs = [
        ("web", 0.1 + 0.2, {"id": "a" * 64, "runtime": "docker"}),
        ("wéb\udcff", -0.0, {"id": "b" * 64, "runtime": "docker"}),
        ('a "quoted", name', 1e-310, {}),
        ("web", 12345678901234567.0, {"runtime": "docker", "é": "☃"}),
    ]
    for n in (1, json_mod.REPEATING_ROWS // 4 + 1):
        rows = json_mod._Rows(
            json_mod._raw_row(Row(name, {"ctr.cpu_pct": v, "ctr.pids": 3, "ctr.x": None}, lb))
            for name, v, lb in specs * n
        )
        text = json_mod._rows_text(rows, "  ")
        assert text == "[\n" + ",\n".join("    " + _encode(r) for r in rows) + "\n  ]"
    assert len(rows) > json_mod.REPEATING_ROWS


def test_a_host_of_many_rows_is_the_same_text_either_way() -> None:
    """Past INDENT_MAX_HOSTS, a host of more than REPEATING_ROWS rows is encoded with each
    string once (_encode_repeating), a smaller one as before: the same text, NaN cleaned."""
    host = rf.fleet_report(1, 2, seed=5).hosts[0]
    rows = tuple(
        Row(f"c{i}\udcff", {"ctr.cpu_pct": i / 3, "ctr.pids": i, "ctr.x": None}, {"id": "é"})
        for i in range(json_mod.REPEATING_ROWS + 1)
    )
    many = dataclasses.replace(host, rows={**host.rows, "ctr": rows})
    assert sum(map(len, many.rows.values())) > json_mod.REPEATING_ROWS
    for h in (host, many):
        assert json_mod._encode_host(h) == json.dumps(json_mod._host(h), allow_nan=False)
    nan = dataclasses.replace(many, rows={"ctr": (Row("c", {"ctr.cpu_pct": math.nan}), *rows)})
    assert '{"name": "c", "metrics": {"ctr.cpu_pct": null}}' in json_mod._encode_host(nan)
