"""Renderers on big fleets: the JSON layout past 100 hosts and the lean HTML past 2000 hosts."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import reportfactory as rf
from test_html import Page

from fleetmon.model import Report, Row, catalog
from fleetmon.render import html as html_mod
from fleetmon.render import json as json_mod
from fleetmon.render.html import render_html
from fleetmon.render.htmlfmt import anchors
from fleetmon.render.json import json_chunks, render_json, report_dict
from fleetmon.render.text import clean
from fleetmon.rules.verdict import host_verdict


@pytest.fixture(scope="module")
def fleet() -> Report:
    return rf.fleet_report(120, 3, seed=7)


def test_big_json_is_the_same_document_one_host_per_line(fleet: Report) -> None:
    assert len(fleet.hosts) > json_mod.INDENT_MAX_HOSTS
    text = render_json(fleet)
    assert json.loads(text) == report_dict(fleet)
    lines = text.splitlines()
    hosts = [ln for ln in lines if ln.startswith('{"name": ')]
    assert len(hosts) == len(fleet.hosts)
    assert lines[0] == "{"
    assert lines[-1] == "}"
    assert text.endswith("}\n")
    chunks = list(json_chunks(fleet))
    assert "".join(chunks) == text
    assert len(chunks) > len(fleet.hosts)  # written as they come, never one 100 MB string
    small = Report(fleet.run, fleet.hosts[:3], fleet.fleet, fleet.exit_code)
    assert json.loads(render_json(small)) == report_dict(small)


def test_small_json_is_indented_with_each_row_on_one_line(fleet: Report) -> None:
    small = Report(fleet.run, fleet.hosts[:3], fleet.fleet, fleet.exit_code)
    text = render_json(small)
    doc = report_dict(small)
    assert json.loads(text) == doc
    rows = [r for h in doc["hosts"] for s in catalog.ROW_SCOPES for r in h[s.key]]
    assert len(rows) > 10
    lines = set(text.splitlines())
    for row in rows:  # one line each, in its list of a host (3 levels in)
        assert f"        {json.dumps(row)}" in lines or f"        {json.dumps(row)}," in lines
    assert '  "hosts": [' in lines  # the rest indented as json.dumps(indent=2) writes it
    assert '      "status": "ok",' in lines
    # A row the encoder refuses as it is (NaN) is cleaned: null, on its line all the same.
    bad = small.hosts[0]
    row = Row("sdz", {"disk.util_pct": math.nan, "disk.r_await_ms": 1.5})
    bad = dataclasses.replace(bad, rows={**bad.rows, "disk": (*bad.rows_of("disk"), row)})
    text = render_json(dataclasses.replace(small, hosts=(bad, *small.hosts[1:])))
    assert (
        '        {"name": "sdz", "metrics": {"disk.util_pct": null, "disk.r_await_ms": 1.5}}'
        in (text.splitlines())
    )


def test_rows_written_at_once_cut_where_each_row_ends(fleet: Report) -> None:
    """A scope's rows are encoded together and cut at a separator string: names and labels
    holding that string, quotes and commas come out as each row encoded alone."""
    small = dataclasses.replace(fleet, hosts=fleet.hosts[:3])
    names = ["\x00row\x00", 'a", "\x00row\x00", "b', "\\u0000row\\u0000", ", ", '"', "x"]
    rows = tuple(
        Row(n, {"ctr.cpu_pct": 1.5, "ctr.pids": i}, {"id": n, "runtime": "docker"})
        for i, n in enumerate(names)
    )
    bad = dataclasses.replace(small.hosts[0], rows={**small.hosts[0].rows, "ctr": rows})
    text = render_json(dataclasses.replace(small, hosts=(bad, *small.hosts[1:])))
    lines = text.splitlines()
    start = lines.index('      "containers": [')
    want = [
        json.dumps({"name": r.name, "metrics": dict(r.metrics), "labels": dict(r.labels)})
        for r in rows
    ]
    assert lines[start + 1 : start + 1 + len(rows)] == [f"        {w}," for w in want[:-1]] + [
        f"        {want[-1]}"
    ]
    assert json.loads(text)["hosts"][0]["containers"][1]["name"] == names[1]


def test_big_json_turns_nan_and_infinity_into_null(fleet: Report) -> None:
    bad = fleet.hosts[5]
    row = Row("sdz", {"disk.util_pct": math.nan, "disk.r_await_ms": 1.5})
    rows = {**bad.rows, "disk": (*bad.rows_of("disk"), row)}
    bad = dataclasses.replace(bad, metrics={**bad.metrics, "cpu.busy_pct": math.inf}, rows=rows)
    report = dataclasses.replace(fleet, hosts=(*fleet.hosts[:5], bad, *fleet.hosts[6:]))
    doc = json.loads(render_json(report))  # json.loads would accept NaN: check the values
    host = doc["hosts"][5]
    assert host["metrics"]["cpu.busy_pct"] is None
    assert host["disks"][-1]["metrics"] == {"disk.util_pct": None, "disk.r_await_ms": 1.5}
    assert "NaN" not in render_json(report)
    assert "Infinity" not in render_json(report)


def test_lean_page_details_only_hosts_with_a_problem(
    fleet: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = render_html(fleet)
    monkeypatch.setattr(html_mod, "LEAN_HOSTS", 100)
    lean = render_html(fleet)
    verdicts = {h.name: host_verdict(h) for h in fleet.hosts if h.collected}
    ok = [n for n, v in verdicts.items() if v == "ok"]
    bad = [h.name for h in fleet.hosts if verdicts.get(h.name, "failed") != "ok"]
    assert ok
    assert bad
    ids = anchors(h.name for h in fleet.hosts)
    page = Page(lean)
    assert {ids[n] for n in bad} <= page.ids
    assert not {ids[n] for n in ok} & page.ids
    # Every remaining link still lands on the page; OK hosts keep a fleet row, unlinked.
    assert {a["href"][1:] for a in page.tags("a")} <= page.ids
    for name in ok:
        assert f"<th>{name}<td" in lean
    assert (
        f"{len(ok)} hosts whose every check passed are not detailed on a page for more "
        "than 100 hosts" in lean
    )
    assert len(lean) < len(full) / 2
    assert "not detailed" not in full


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("web-01 /var 93%", "web-01 /var 93%"),
        ("evil\x1b[2Jname\x85", "evil\\x1b[2Jname\\x85"),
        # Line separator and bidi override break or reorder a terminal's lines (issue 16).
        ("sep\u2028arated \u202e\u00e9", "sep\\u2028arated \\u202e\u00e9"),
        (3.5, "3.5"),
    ],
)
def test_text_cells_escape_unprintable_characters_only(text: object, shown: str) -> None:
    assert clean(text) == shown
