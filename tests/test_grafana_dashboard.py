"""contrib/grafana/fleetmon.json, the Grafana dashboard: sound as a dashboard (ids, grid,
targets, variables, the datasource an import input), naming only series fleetmon exports, and
every query valid PromQL that a real Prometheus scraping `fleetmon serve --export-groups` of a
simulated fleet (KVM, Xen and Linux hosts with containers, one host unreachable, two sites
whose `site` label is fleetmon's own, no scrape-config label) answers with data."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from clirun import ROOT
from prometheus_client.parser import text_string_to_metric_families

from fleetmon.model import catalog
from fleetmon.model.series import prom_metric
from tests import promservers as ps
from tests.livesim import FLEETMON, simulated_fleet

DASHBOARD = ROOT / "contrib" / "grafana" / "fleetmon.json"
DOC = json.loads(DASHBOARD.read_text())
#: The variables Grafana itself defines that the queries use, and what the test gives them.
BUILTINS = {"__rate_interval": "30s"}
#: The datasource every panel and query names: the dashboard's variable, set at import.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Rows whose every query must return data from the simulated fleet.
MUST_ANSWER = ("Hosts", "Hypervisors", "VMs (virt-top)", "Guests (both sides)", "Containers")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"label_values\((.+), *(\w+)\)")
#: --kind mixed, seed 5: kvm0002..0003, linux0001 (a guest of kvm0002), xen0004, kvm0005
#: unreachable; --sites lab,dc2 deals the first three to lab, the last two to dc2.
HOSTS = 5
SITES = {"kvm0002": "lab", "kvm0003": "lab", "linux0001": "lab", "xen0004": "dc2",
         "kvm0005": "dc2"}  # fmt: skip
RULE = "kvm-host-present"


@dataclass(frozen=True)
class Query:
    """One target of a panel, with the row it sits in."""

    row: str
    panel: str
    ref: str
    expr: str
    legend: str
    instant: bool


def _panels() -> list[dict[str, Any]]:
    return [p for p in DOC["panels"] if p["type"] != "row"]


def _queries() -> list[Query]:
    out, row = [], ""
    for p in DOC["panels"]:
        if p["type"] == "row":
            row = p["title"]
            continue
        for t in p.get("targets", []):
            out.append(Query(row, p["title"], t.get("refId", ""), t.get("expr", ""),
                             t.get("legendFormat", ""), bool(t.get("instant"))))  # fmt: skip
    return out


def _variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in DOC["templating"]["list"]}


def _used_variables(text: str) -> set[str]:
    return {a or b or c for a, b, c in VARIABLE.findall(text)}


def _substitute(expr: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: values[m.group(1) or m.group(2) or m.group(3)], expr)


# --- (1) structure ---------------------------------------------------------------------


def test_every_panel_has_a_unique_id_and_a_place_on_the_grid() -> None:
    ids = [p["id"] for p in DOC["panels"]]
    assert len(ids) == len(set(ids)), ids
    taken: dict[tuple[int, int], str] = {}
    for p in DOC["panels"]:
        g = p["gridPos"]
        assert min(g["w"], g["h"]) >= 1, p["title"]
        assert min(g["x"], g["y"]) >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{p['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = p["title"]


def test_every_target_has_an_expr_and_a_unique_ref_id() -> None:
    for p in _panels():
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"], p["title"]
        assert len(refs) == len(set(refs)), p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]


def test_every_variable_used_is_defined() -> None:
    defined = set(_variables()) | set(BUILTINS)
    texts = [q.expr for q in _queries()] + [v["definition"] for v in _variables().values()
                                            if v["type"] == "query"]  # fmt: skip
    used = set().union(*(_used_variables(t) for t in texts))
    assert used <= defined, used - defined
    # The filters the dashboard promises are all in use.
    assert {"site", "hypervisor", "host", "__rate_interval"} <= used


def test_every_table_names_its_columns() -> None:
    """A table's queries are merged on their labels (not their `__name__`); each value
    column, which Grafana calls `Value #<refId>` (`Value` for a lone query), is renamed to
    its header."""
    tables = [p for p in _panels() if p["type"] == "table"]
    assert len(tables) == 7
    for p in tables:
        refs = [t["refId"] for t in p["targets"]]
        assert all(t["format"] == "table" and t["instant"] for t in p["targets"]), p["title"]
        names = [f"Value #{r}" for r in refs] if len(refs) > 1 else ["Value"]
        *first, merge, organize = p["transformations"]
        # Several queries: `__name__` goes before the merge, which would key rows on it.
        drop = {"id": "organize", "options": {"excludeByName": {"__name__": True},
                                              "indexByName": {}, "renameByName": {}}}  # fmt: skip
        assert first == ([drop] if len(refs) > 1 else []), p["title"]
        assert merge["id"] == "merge", p["title"]
        assert sorted(organize["options"]["renameByName"]) == sorted(names), p["title"]


def test_the_variables_are_label_values_grafana_9_reads() -> None:
    for v in _variables().values():
        if v["type"] == "query":
            # A string, not Grafana 10's {query, refId}: 9.x reads only that, 10 migrates it.
            assert v["query"] == v["definition"], v["name"]
            assert LABEL_VALUES.fullmatch(v["query"]), v["name"]


def test_the_datasource_is_an_import_input() -> None:
    (source,) = DOC["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "prometheus")
    variable = _variables()["datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    assert variable["current"]["value"] == "${" + source["name"] + "}"
    for p in _panels():
        assert p["datasource"] == DATASOURCE, p["title"]
        assert all(t["datasource"] == DATASOURCE for t in p["targets"]), p["title"]
    for v in _variables().values():
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE, v["name"]
    # The input is named nowhere else: an import replaces it in that one place.
    assert json.dumps(DOC).count("${" + source["name"] + "}") == 1


# --- (3) a real Prometheus answers every query -----------------------------------------


@dataclass(frozen=True)
class Served:
    """`fleetmon serve` scraped by Prometheus: its /metrics text, /api/report and the
    Prometheus's URL."""

    metrics: str
    report: dict[str, Any]
    prom: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("grafana")
    extra = ("--containers", "2", "--guests", "1", "--faults", "unreachable=1",
             "--sites", "lab,dc2")  # fmt: skip
    # One rule that is critical on every KVM host: the findings panels have rows to show.
    rules = tmp / "rules.yaml"
    rules.write_text(f"- name: test\n  hosts: kvm\n  rules:\n    - name: {RULE}\n"
                     "      metric: cpu.count\n      critical: '> 0'\n")  # fmt: skip
    with simulated_fleet(tmp, hosts=HOSTS, kind="mixed", extra=extra) as inv:
        port = ps.free_port()
        argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "1",
                "--connect-timeout", "2", "--no-default-rules", "-r", str(rules),
                "--export-groups"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            report = ps.wait_for("fleetmon serve", lambda: _report(port), timeout_s=90)
            # No target label: the site is the exported one (fleetmon_site).
            with ps.running(ps.prometheus, tmp, {"fleetmon": f"127.0.0.1:{port}"}) as prom:
                # increase(...[30s]) needs two scrapes of the counter; a few more for margin.
                ps.wait_for("Prometheus has a few scrapes", lambda: _scrapes(prom.url) >= 4,
                            timeout_s=60)  # fmt: skip
                _, metrics = ps.http("GET", f"http://127.0.0.1:{port}/metrics")
                yield Served(metrics.decode(), report, prom.url)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err.decode()


def _report(port: int) -> dict[str, Any] | None:
    """The served report once every host has had its first collection (one fails) and the
    guest is paired with its VM."""
    try:
        status, body = ps.http("GET", f"http://127.0.0.1:{port}/api/report")
    except OSError:
        return None
    if status != 200:
        return None
    doc: dict[str, Any] = json.loads(body)
    states = [h["status"] for h in doc["hosts"]]
    done = states.count("ok") == HOSTS - 1 and len(states) == HOSTS
    rows = {k for h in doc["hosts"] for k in ("containers", "guests") if h[k]}
    return doc if done and rows == {"containers", "guests"} else None


def _scrapes(prom: str) -> int:
    doc = ps.get_json(f"{prom}/api/v1/query",
                      query="min(count_over_time(fleetmon_ctr_oom_kills_total[1m]))")  # fmt: skip
    result = doc["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def _ask(prom: str, q: Query, values: dict[str, str]) -> list[dict[str, Any]]:
    """What Prometheus answers the target with the variables given these values, as Grafana
    asks it: an instant query, or a range over the last 20 s."""
    expr = _substitute(q.expr, values)
    if q.instant:
        url = f"{prom}/api/v1/query?" + urlencode({"query": expr})
    else:
        end = time.time()
        span = {"start": f"{end - 20:.3f}", "end": f"{end:.3f}", "step": "2"}
        url = f"{prom}/api/v1/query_range?" + urlencode({"query": expr, **span})
    status, body = ps.http("GET", url)
    assert status == 200, (q.panel, q.ref, expr, body[:500])
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def _all() -> dict[str, str]:
    """Every variable at All (`.*`, their allValue), Grafana's own at the test's values."""
    for v in _variables().values():
        assert v["type"] != "query" or v["allValue"] == ".*", v["name"]
    return {**BUILTINS, **{n: ".*" for n, v in _variables().items() if v["type"] == "query"}}


# --- (2) the names are fleetmon's -------------------------------------------------------


def _catalogue_names() -> set[str]:
    metrics = [*catalog.HOST, *(m for s in catalog.ROW_SCOPES for m in s.metrics)]
    return {
        (p.name + "_total" if p.kind == "counter" else p.name)
        for p in (prom_metric(m) for m in metrics)
    }


def _exposed_names(text: str) -> set[str]:
    """Every family in an exposition (its `# TYPE` line; a counter's in its samples' name)."""
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def test_the_dashboard_names_only_fleetmon_series(served: Served) -> None:
    exported = _exposed_names(served.metrics) | _catalogue_names()
    assert {"fleetmon_finding", "fleetmon_vm_vcpu_delay_ratio"} <= exported
    used: set[str] = set()
    for q in _queries():
        names = set(re.findall(r"\bfleetmon_\w+", q.expr))
        assert names, q
        # No other series (`up{...}`, node_exporter's): what a selector names is fleetmon's.
        others = [n for n in re.findall(r"\b([a-zA-Z_:][\w:]*)\s*\{", q.expr)
                  if not n.startswith("fleetmon_")]  # fmt: skip
        assert not others, q
        used |= names
    for v in _variables().values():
        if v["type"] == "query":
            used |= set(re.findall(r"\bfleetmon_\w+", v["definition"]))
    assert used - exported == set()


def test_the_simulated_fleet_has_what_the_dashboard_shows(served: Served) -> None:
    hvs = {h["hypervisor"] for h in served.report["hosts"] if h["status"] == "ok"}
    assert hvs == {"kvm", "xen", "none"}
    assert [h["name"] for h in served.report["hosts"] if h["status"] != "ok"] == ["kvm0005"]
    assert sum(len(h["containers"]) for h in served.report["hosts"]) >= 2
    guests = [(h["name"], g["name"]) for h in served.report["hosts"] for g in h["guests"]]
    assert guests == [("linux0001", "kvm0002/db-0002-1")]


@pytest.mark.parametrize("q", _queries(), ids=lambda q: f"{q.panel}/{q.ref}")
def test_every_query_is_promql_that_prometheus_answers(served: Served, q: Query) -> None:
    result = _ask(served.prom, q, _all())
    if q.row in MUST_ANSWER:
        assert result, (q.panel, q.expr)
    # The legend's labels are the series': a typo would show `{{hots}}` as is.
    for label in re.findall(r"\{\{ *(\w+) *\}\}", q.legend):
        assert all(label in r["metric"] for r in result), (q.panel, label, result[:2])


def test_the_health_row_shows_the_unreachable_host(served: Served) -> None:
    by_title = {q.panel: q for q in _queries()}
    (down,) = _ask(served.prom, by_title["Why hosts were not collected"], _all())
    assert (down["metric"]["host"], down["metric"]["status"]) == ("kvm0005", "unreachable")
    (collected,) = _ask(served.prom, by_title["Hosts collected"], _all())
    assert float(collected["value"][1]) == HOSTS - 1
    (critical,) = _ask(served.prom, by_title["Critical findings"], _all())
    assert float(critical["value"][1]) == 2  # kvm0002, kvm0003
    findings = _ask(served.prom, by_title["Findings"], _all())
    got = {(f["metric"]["host"], f["metric"]["rule"], f["metric"]["severity"]) for f in findings}
    assert got == {("kvm0002", RULE, "critical"), ("kvm0003", RULE, "critical")}
    (code,) = _ask(served.prom, by_title["Run exit code"], _all())
    assert float(code["value"][1]) == 2


def _table_rows(prom: str, panel: dict[str, Any]) -> list[dict[str, str]]:
    """The rows a table panel shows, as Grafana 9/10 builds them from the real answers:
    each target a frame of `Time`, one column per label (its `__name__` too) and `Value #ref`
    (public/app/plugins/datasource/prometheus/result_transformer.ts, transformDFToTable);
    the panel's `organize` steps before the merge drop their excluded columns; the merge
    (packages/grafana-data/src/transformations/transformers/merge.ts) joins rows whose
    values agree in every column all frames share, which includes every such label."""
    at = f"{time.time():.3f}"
    frames: list[list[dict[str, str]]] = []
    for t in panel["targets"]:
        expr = _substitute(t["expr"], _all())
        doc = ps.get_json(f"{prom}/api/v1/query", query=expr, time=at)
        series = [r["metric"] for r in doc["data"]["result"]]
        names = sorted({k for m in series for k in m})
        frames.append([{"Time": at, **{k: m.get(k, "") for k in names},
                        f"Value #{t['refId']}": "v"} for m in series])  # fmt: skip
    steps = [x["id"] for x in panel["transformations"]]
    before = panel["transformations"][: steps.index("merge")]
    assert all(x["id"] == "organize" for x in before), steps
    dropped = {n for x in before for n, on in x["options"]["excludeByName"].items() if on}
    frames = [[{k: v for k, v in row.items() if k not in dropped} for row in f] for f in frames]
    shared = set.intersection(*(set(f[0]) for f in frames if f))
    merged: dict[tuple[str, ...], dict[str, str]] = {}
    for f in frames:
        for row in f:
            merged.setdefault(tuple(row[k] for k in sorted(shared)), {}).update(row)
    return list(merged.values())


def test_a_table_shows_one_row_per_host_vm_guest_container(served: Served) -> None:
    """Its targets' values side by side: one row per host (per VM...), each of its columns
    filled where the series exists. The merge keyed rows on `__name__` too, which differs
    from one target to the next: each host was as many rows as the table has columns, each
    with one value in it (Host overview: 40 rows of 4 hosts)."""
    tables = [p for p in _panels() if p["type"] == "table" and len(p["targets"]) > 1]
    assert [p["title"] for p in tables] == ["Host overview", "Hypervisor hosts", "VMs",
                                            "Guests", "Containers"]  # fmt: skip
    for p in tables:
        rows = _table_rows(served.prom, p)
        label = {"Host overview": "host", "Hypervisor hosts": "host", "VMs": "vm",
                 "Guests": "guest", "Containers": "container"}[p["title"]]  # fmt: skip
        keys = [(r["host"], r[label]) for r in rows]
        assert len(keys) == len(set(keys)), (p["title"], len(rows), sorted(keys)[:4])
        # The first column's series (CPU busy, VMs running, %CPU...) each fills its row.
        first = f"Value #{p['targets'][0]['refId']}"
        assert sum(first in r for r in rows) == len(rows), p["title"]


def test_the_host_variable_narrows_every_host_query(served: Served) -> None:
    """With one host chosen, no query shows another: every selector carries the filter."""
    one = {**_all(), "host": "kvm0002"}
    for q in _queries():
        narrowed = _ask(served.prom, q, one)
        for r in narrowed:
            assert r["metric"].get("host", "kvm0002") == "kvm0002", (q.panel, r["metric"])
        # A misspelt filter (`hots=~"$host"`) matches everything with `.*`, nothing here.
        everyone = _ask(served.prom, q, _all())
        if q.row in MUST_ANSWER and any(r["metric"].get("host") == "kvm0002" for r in everyone):
            assert narrowed, (q.panel, q.ref)


def test_the_variables_list_the_fleet(served: Served) -> None:
    """Each variable's label_values(...) as Grafana asks it: the series' values of the label."""
    got: dict[str, set[str]] = {}
    for name, v in _variables().items():
        if v["type"] != "query":
            continue
        match = LABEL_VALUES.fullmatch(v["definition"])
        assert match, v["definition"]
        selector = _substitute(match.group(1), _all())
        doc = ps.get_json(f"{served.prom}/api/v1/series", **{"match[]": selector})
        got[name] = {s[match.group(2)] for s in doc["data"] if match.group(2) in s}
    collected = {h["name"] for h in served.report["hosts"] if h["status"] == "ok"}
    assert got == {"site": {"lab", "dc2"}, "hypervisor": {"kvm", "xen"}, "host": collected}


def test_the_site_variable_narrows_every_host_query(served: Served) -> None:
    """With one site chosen, no query shows another site's host: the exported `site` label
    is on every host's series, its host_up and findings included."""
    dc2 = {**_all(), "site": "dc2"}
    for q in _queries():
        for r in _ask(served.prom, q, dc2):
            host = r["metric"].get("host")
            assert host is None or SITES[host] == "dc2", (q.panel, r["metric"])
            assert r["metric"].get("site", "dc2") == "dc2", (q.panel, r["metric"])
    by_title = {q.panel: q for q in _queries()}
    (down,) = _ask(served.prom, by_title["Why hosts were not collected"], dc2)
    assert (down["metric"]["host"], down["metric"]["site"]) == ("kvm0005", "dc2")
    (collected,) = _ask(served.prom, by_title["Hosts collected"], dc2)
    assert float(collected["value"][1]) == 1  # xen0004
    (critical,) = _ask(served.prom, by_title["Critical findings"], {**_all(), "site": "lab"})
    assert float(critical["value"][1]) == 2  # kvm0002, kvm0003
    (critical,) = _ask(served.prom, by_title["Critical findings"], dc2)
    assert float(critical["value"][1]) == 0  # kvm0005 is not collected: no finding


def test_serve_labels_every_host_series_with_its_site_and_groups(served: Served) -> None:
    """`serve --export-groups`, as run's: every series of a host (host_up and findings
    too) carries its inventory groups and its site, the same for all of them."""
    groups = {h["name"]: ",".join(["", *h["groups"], ""]) for h in served.report["hosts"]}
    hypervisors = {h["name"]: h["hypervisor"] for h in served.report["hosts"]}
    seen: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(served.metrics):
        for sample in fam.samples:
            host = sample.labels.get("host")
            if host is None:
                continue
            assert sample.labels["groups"] == groups[host], sample
            assert sample.labels["site"] == SITES[host], sample
            hv = hypervisors[host]
            assert sample.labels.get("hypervisor", "none") == hv, sample
            seen.setdefault(host, set()).add(sample.name)
    assert set(seen) == set(SITES)
    assert "fleetmon_finding" in seen["kvm0002"]
    assert "fleetmon_host_up" in seen["kvm0005"]  # not collected: up 0, labelled all the same


def test_the_readme_describes_every_row() -> None:
    readme = (DASHBOARD.parent / "README.md").read_text()
    rows = [p["title"] for p in DOC["panels"] if p["type"] == "row"]
    assert rows == ["Fleet health", *MUST_ANSWER]
    for title in rows:
        assert f"**{title}**" in readme, title


def test_the_dashboard_is_referenced_where_the_exports_are() -> None:
    for doc in (ROOT / "README.md", ROOT / "docs" / "METRICS.md"):
        assert "contrib/grafana" in doc.read_text(), doc


def test_the_dashboard_file_is_as_formatted() -> None:
    """Two-space JSON, keys as written, one final newline: a diff of an edit stays small."""
    text = DASHBOARD.read_text()
    assert text == json.dumps(DOC, indent=2, ensure_ascii=False) + "\n"
