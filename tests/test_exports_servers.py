"""The exports against the real servers (tests/promservers.py): promtool on every output,
node_exporter's textfile collector, the Pushgateway, a Prometheus scraping them and a PromQL
query, Alertmanager's v2 API and InfluxDB 1.x, each started here and stopped after."""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promservers as ps
import pytest
import reportfactory as rf
from clirun import ROOT, fleetmon
from livesim import FLEETMON, simulated_fleet
from test_report_golden import RAW

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.export.http import HttpOptions
from fleetmon.export.sinks import influx_write, post_alerts, push
from fleetmon.io.rawstore import load_raw
from fleetmon.model import Severity
from fleetmon.render.alerts import render_alerts
from fleetmon.render.influx import influx_chunks
from fleetmon.render.prom import CONTENT_TYPE_OPENMETRICS, prometheus_chunks, render_prometheus

pytestmark = pytest.mark.slow

FAST = HttpOptions(timeout_s=10, retries=0)
LOCAL = ROOT / "inventories" / "localhost.yaml"


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[ps.Server]:
    with ps.running(ps.pushgateway, tmp_path) as server:
        yield server


@pytest.fixture
def alertmanagers(tmp_path: Path) -> Iterator[list[ps.Server]]:
    """An HA pair (two independent instances: each must get every alert)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with ps.running(ps.alertmanager, a) as one, ps.running(ps.alertmanager, b) as two:
        yield [one, two]


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[ps.Server]:
    with ps.running(ps.influxd, tmp_path) as server:
        status, body = ps.http("POST", f"{server.url}/query?q=CREATE+DATABASE+fleetmon")
        assert status == 200, body
        yield server


def _promtool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ps.require("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _golden_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    r = fleetmon("report", RAW, "--history", "none", "--json", out, *args, "-o", "/dev/null")
    assert r.returncode == 2, r.stderr
    assert r.stderr == ""
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def _top_delays(doc: dict[str, Any], n: int = 10) -> list[tuple[float, str, str]]:
    """The JSON report's n VMs of the largest vCPU delay: (percent, host, VM)."""
    delays = [
        (v["metrics"]["vm.vcpu_delay_pct"], h["name"], v["name"])
        for h in doc["hosts"]
        for v in h["vms"]
        if v["metrics"].get("vm.vcpu_delay_pct") is not None
    ]
    return sorted(delays, reverse=True)[:n]


# --- promtool --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["prometheus", "openmetrics"])
def test_promtool_passes_the_cli_output(fmt: str, tmp_path: Path) -> None:
    r = fleetmon("report", RAW, "--history", "none", "--format", fmt, "--export-groups")
    assert r.returncode == 2, r.stderr
    assert 'fleetmon_vm_cpu_ratio{groups=",kvm,rack01,",host="kvm0007",' in r.stdout
    check = _promtool(r.stdout)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("which", ["hostile", "captured"])
def test_promtool_passes_hostile_and_captured_reports(which: str, openmetrics: bool) -> None:
    report = rf.hostile_report() if which == "hostile" else rf.captured_report()
    text = render_prometheus(report, openmetrics=openmetrics, groups=True)
    check = _promtool(text)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""


def test_promtool_passes_500_hosts_of_20_vms() -> None:
    text = render_prometheus(rf.fleet_report(500, 20))
    assert text.count('fleetmon_vm_cpu_ratio{host="') > 9000
    check = _promtool(text)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""


# --- node_exporter's textfile collector ------------------------------------------------


def test_node_exporter_serves_the_textfile(tmp_path: Path) -> None:
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    prom = textdir / "fleetmon.prom"
    doc = _golden_json(tmp_path, "--prom-textfile", str(prom))
    assert sorted(p.name for p in textdir.iterdir()) == ["fleetmon.prom"]  # no temporary left
    with ps.running(ps.node_exporter, tmp_path, textdir) as node:
        _, body = ps.http("GET", f"{node.url}/metrics")
    text = body.decode()
    assert "node_textfile_scrape_error 0" in text
    assert f'node_textfile_mtime_seconds{{file="{prom}"}}' in text
    vm = doc["hosts"][0]["vms"][0]
    host = doc["hosts"][0]["name"]
    head = f'fleetmon_vm_cpu_ratio{{host="{host}",'
    line = next(x for x in text.splitlines() if x.startswith(head) and vm["name"] in x)
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(vm["metrics"]["vm.cpu_pct"] / 100)


def test_a_textfile_that_is_not_prom_is_refused(tmp_path: Path) -> None:
    r = fleetmon("report", RAW, "--history", "none", "--prom-textfile", tmp_path / "x.txt")
    assert r.returncode == 4
    assert "--prom-textfile: node_exporter's textfile collector reads *.prom files only" in (
        r.stderr
    )


# --- the Pushgateway and a Prometheus scraping it ---------------------------------------


def _pushed(pg: ps.Server) -> str:
    return ps.http("GET", f"{pg.url}/metrics")[1].decode()


def test_a_second_push_replaces_the_first(pushgateway: ps.Server) -> None:
    report = rf.sample_report()
    grouping = {"inventory": "inventories/prod.yaml"}
    push(pushgateway.url, list(prometheus_chunks(report)), job="fleetmon", grouping=grouping,
         options=FAST)  # fmt: skip
    first = _pushed(pushgateway)
    assert re.search(r'fleetmon_vm_cpu_ratio\{host="kvm01",.*vm="vm2"', first)
    assert 'inventory="inventories/prod.yaml",job="fleetmon"' in first
    kvm01 = report.hosts[0]
    fewer = tuple(v for v in kvm01.rows_of("vm") if v.name != "vm2")
    smaller = dataclasses.replace(
        report,
        hosts=(
            dataclasses.replace(kvm01, rows={**kvm01.rows, "vm": fewer}),
            *report.hosts[1:],
        ),
    )
    push(pushgateway.url, list(prometheus_chunks(smaller)), job="fleetmon", grouping=grouping,
         options=FAST)  # fmt: skip
    second = _pushed(pushgateway)
    assert re.search(r'fleetmon_vm_cpu_ratio\{host="kvm01",.*vm="vm1"', second)
    assert not re.search(r'fleetmon_vm_\w+\{host="kvm01",.*vm="vm2"', second)


def test_prometheus_scrapes_the_push_and_promql_gives_the_json_figures(
    tmp_path: Path, pushgateway: ps.Server
) -> None:
    doc = _golden_json(tmp_path, "--push", pushgateway.url)
    target = pushgateway.url.removeprefix("http://")
    with ps.running(ps.prometheus, tmp_path, {"pushgateway": target}) as prom:

        def query() -> list[dict[str, Any]]:
            got = ps.get_json(f"{prom.url}/api/v1/query", query="fleetmon_vm_cpu_ratio")
            result: list[dict[str, Any]] = got["data"]["result"]
            return result

        result = ps.wait_for("fleetmon_vm_cpu_ratio in Prometheus", query)
        # The README's "top 10 VMs by vCPU delay".
        top = ps.get_json(
            f"{prom.url}/api/v1/query", query="topk(10, fleetmon_vm_vcpu_delay_ratio)"
        )
    got_top = [(r["metric"]["host"], r["metric"]["vm"], float(r["value"][1]))
               for r in top["data"]["result"]]  # fmt: skip
    got_top.sort(key=lambda x: -x[2])
    want_top = _top_delays(doc)
    assert [(h, v) for h, v, _ in got_top] == [(h, v) for _, h, v in want_top]
    assert [d for _, _, d in got_top] == pytest.approx([d / 100 for d, _, _ in want_top])
    got = {(r["metric"]["host"], r["metric"]["vm"]): float(r["value"][1]) for r in result}
    want = {
        (h["name"], v["name"]): v["metrics"]["vm.cpu_pct"] / 100
        for h in doc["hosts"]
        for v in h["vms"]
        if v["metrics"].get("vm.cpu_pct") is not None
    }
    assert want
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    labels = result[0]["metric"]
    assert labels["job"] == "fleetmon"
    assert labels["inventory"] == doc["inventory"]


class _OpenMetrics(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_OPENMETRICS)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_prometheus_parses_openmetrics_with_hostile_names(tmp_path: Path) -> None:
    """Prometheus's own OpenMetrics parser reads the hostile report (scrape up = 1)."""
    report = rf.hostile_report()
    handler = type(
        "H", (_OpenMetrics,), {"body": render_prometheus(report, openmetrics=True).encode()}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        with ps.running(ps.prometheus, tmp_path, {"om": target}) as prom:

            def query() -> list[dict[str, Any]]:
                q = 'fleetmon_vm_cpu_ratio{vm="a\\"b\\nc}"}'
                got = ps.get_json(f"{prom.url}/api/v1/query", query=q)
                result: list[dict[str, Any]] = got["data"]["result"]
                return result

            result = ps.wait_for("the hostile VM in Prometheus", query)
            up = ps.get_json(f"{prom.url}/api/v1/query", query='up{job="om"}')
    finally:
        server.shutdown()
        server.server_close()
    assert up["data"]["result"][0]["value"][1] == "1"
    assert [r["metric"]["host"] for r in result] == [rf.HOSTILE_COMMA]
    assert float(result[0]["value"][1]) == 0.412


def test_an_unreachable_pushgateway_loses_no_other_output(tmp_path: Path) -> None:
    port = ps.free_port()
    out, json_out = tmp_path / "report.txt", tmp_path / "report.json"
    r = fleetmon("report", RAW, "--history", "none", "-o", out, "--json", json_out,
                 "--prom-textfile", tmp_path / "f.prom", "--push", f"http://127.0.0.1:{port}",
                 "--export-retries", "1", "--export-timeout", "2")  # fmt: skip
    assert r.returncode == 4
    assert r.stderr.startswith(
        f"fleetmon: error: Pushgateway http://127.0.0.1:{port}/metrics/job/fleetmon/"
        "inventory/inv.yaml: cannot connect: "
    )
    assert "cannot connect" in r.stderr
    assert "(after 2 attempts)" in r.stderr
    assert out.read_text().startswith("fleetmon")
    assert json.loads(json_out.read_text())["exit_code"] == 2
    assert "fleetmon_host_up" in (tmp_path / "f.prom").read_text()


# --- Alertmanager --------------------------------------------------------------------------


def _alerts(am: ps.Server) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = ps.get_json(f"{am.url}/api/v2/alerts")
    return got


def test_alertmanager_gets_the_findings_with_their_labels(
    tmp_path: Path, alertmanagers: list[ps.Server]
) -> None:
    urls = [arg for am in alertmanagers for arg in ("--alertmanager", am.url)]
    doc = _golden_json(tmp_path, *urls)
    want = sorted(
        (f["rule"], h["name"], f["subject"], f["severity"])
        for h in doc["hosts"]
        for f in h["findings"]
        if f["severity"] in ("warning", "critical")
    )
    assert want
    for am in alertmanagers:
        alerts = ps.wait_for("alerts", lambda am=am: _alerts(am))
        got = sorted((a["labels"]["alertname"], a["labels"]["host"], a["labels"]["subject"],
                      a["labels"]["severity"]) for a in alerts)  # fmt: skip
        assert got == want
        assert {a["status"]["state"] for a in alerts} == {"active"}
        first = next(a for a in alerts if a["labels"]["severity"] == "critical")
        assert first["annotations"]["message"]
        assert first["annotations"]["source"]  # the shipped rules cite theirs


def test_a_resolved_finding_ends_its_alert(alertmanagers: list[ps.Server]) -> None:
    am = alertmanagers[0]
    report = rf.hostile_report()
    evil = report.hosts[-2]
    assert evil.name == rf.HOSTILE_COMMA
    now = time.time()
    body = render_alerts(report, None, now_s=now, ttl_s=900)
    post_alerts(am.url, body, options=FAST)
    alerts = ps.wait_for("alerts", lambda: _alerts(am))
    hostile = [a for a in alerts if a["labels"].get("host") == rf.HOSTILE_COMMA]
    assert sorted(a["labels"]["subject"] for a in hostile) == [rf.HOSTILE_QUOTE, rf.HOSTILE_COMMA]
    assert {a["labels"]["alertname"] for a in alerts} == {
        "vm-cpu-saturated", "fs-full", "host-steal", "vm-cpu", "fleet-busy"
    }  # fmt: skip
    # The next run: the VM's CPU finding resolved (the history's state), the others gone.
    vm_cpu = next(f for f in evil.findings if f.rule == "vm-cpu")
    now_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    resolved = dataclasses.replace(vm_cpu, severity=Severity.OK, state="resolved", since=now_iso)
    later = dataclasses.replace(report, hosts=(dataclasses.replace(evil, findings=(resolved,)),),
                                findings=())  # fmt: skip
    post_alerts(am.url, render_alerts(later, None, now_s=time.time(), ttl_s=900), options=FAST)
    left = {(a["labels"]["alertname"], a["labels"]["subject"]) for a in _alerts(am)}
    assert ("vm-cpu", rf.HOSTILE_QUOTE) not in left
    assert ("fs-full", rf.HOSTILE_COMMA) in left  # not resolved: it lasts until its endsAt


def test_an_unreachable_alertmanager_is_an_error_the_other_gets_its_alerts(
    tmp_path: Path, alertmanagers: list[ps.Server]
) -> None:
    port = ps.free_port()
    out = tmp_path / "report.txt"
    r = fleetmon("report", RAW, "--history", "none", "-o", out,
                 "--alertmanager", f"http://127.0.0.1:{port}",
                 "--alertmanager", alertmanagers[0].url, "--export-retries", "0")  # fmt: skip
    assert r.returncode == 4
    assert f"fleetmon: error: Alertmanager http://127.0.0.1:{port}/api/v2/alerts: cannot" in (
        r.stderr
    )
    assert out.exists()
    assert _alerts(alertmanagers[0])


# --- InfluxDB 1.x --------------------------------------------------------------------------


def _influx_query(db: ps.Server, q: str) -> list[dict[str, Any]]:
    got = ps.get_json(f"{db.url}/query", db="fleetmon", q=q, epoch="ns")
    series: list[dict[str, Any]] = got["results"][0].get("series", [])
    return series


def _rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**s.get("tags", {}), **dict(zip(s["columns"], values, strict=True))}
        for s in series
        for values in s["values"]
    ]


def test_influxdb_gives_back_the_values_tags_and_timestamps(
    tmp_path: Path, influxdb: ps.Server
) -> None:
    doc = _golden_json(tmp_path, "--influx-url", f"{influxdb.url}/write?db=fleetmon")
    _run, raws = load_raw(str(RAW))
    sampled = {r.host.name: analyse_host(r).sampled_at_ns for r in raws}
    rows = _rows(_influx_query(influxdb, "SELECT * FROM fleetmon_vm GROUP BY *"))
    got = {(r["host"], r["vm"]): r for r in rows}
    want = {(h["name"], v["name"]): (h, v) for h in doc["hosts"] for v in h["vms"]}
    assert got.keys() == want.keys()
    for key, (h, v) in want.items():
        row = got[key]
        assert row["time"] == sampled[h["name"]]
        assert row["hypervisor"] == h["hypervisor"]
        assert row["state"] == v["metrics"]["vm.state"]
        for name in ("cpu_pct", "vcpu_delay_pct", "mem_current_bytes", "vcpus"):
            assert row.get(name) == v["metrics"].get(f"vm.{name}"), (key, name)
    host_rows = _rows(_influx_query(influxdb, "SELECT * FROM fleetmon_host GROUP BY *"))
    collected = [h for h in doc["hosts"] if h["status"] == "ok"]
    assert sorted(r["host"] for r in host_rows) == sorted(h["name"] for h in collected)
    busy = {r["host"]: r["cpu_busy_pct"] for r in host_rows}
    assert busy == {h["name"]: h["metrics"]["cpu.busy_pct"] for h in collected}
    # The README's "top 10 VMs by vCPU delay".
    q = 'SELECT top("vcpu_delay_pct", "host", "vm", 10) FROM "fleetmon_vm" WHERE time > 0'
    (top,) = _influx_query(influxdb, q)
    got_top = sorted(((row[1], row[2], row[3]) for row in top["values"]), reverse=True)
    assert got_top == _top_delays(doc)
    up = _rows(_influx_query(influxdb, "SELECT * FROM fleetmon_host_up GROUP BY *"))
    assert {(r["host"], r["status"], r["up"]) for r in up} == {
        (h["name"], h["status"], int(h["status"] == "ok")) for h in doc["hosts"]
    }


def test_influxdb_keeps_hostile_names(influxdb: ps.Server) -> None:
    report = rf.hostile_report()
    url = f"{influxdb.url}/write?db=fleetmon"
    assert influx_write(url, influx_chunks(report, groups=True), token=None, options=FAST) == 1
    rows = _rows(_influx_query(influxdb, "SELECT cpu_pct FROM fleetmon_vm GROUP BY *"))
    evil = {r["vm"]: r for r in rows if r["host"] == rf.HOSTILE_COMMA}
    # A newline cannot be written in a tag: it is shown as an escape, as in the text report.
    assert sorted(evil) == sorted(['a"b\\nc}', rf.HOSTILE_COMMA, "back slash\\x5c"])
    assert evil['a"b\\nc}']["cpu_pct"] == 41.2
    assert evil['a"b\\nc}']["groups"] == ',kvm,a"b\\nc},'
    fs = _rows(_influx_query(influxdb, "SELECT used_pct FROM fleetmon_fs GROUP BY *"))
    assert {r["mountpoint"] for r in fs if r["host"] == rf.HOSTILE_COMMA} >= {rf.HOSTILE_COMMA}
    findings = _rows(_influx_query(influxdb, "SELECT * FROM fleetmon_finding GROUP BY *"))
    messages = {r["subject"]: r["message"] for r in findings if r["host"] == rf.HOSTILE_COMMA}
    assert messages[rf.HOSTILE_COMMA] == f"{rf.HOSTILE_COMMA} fs.used_pct 99.0"


def test_influxdb_refusing_a_write_is_an_error(influxdb: ps.Server, tmp_path: Path) -> None:
    r = fleetmon("report", RAW, "--history", "none", "-o", tmp_path / "r.txt",
                 "--influx-url", f"{influxdb.url}/write?db=nosuchdb")  # fmt: skip
    assert r.returncode == 4
    assert f"InfluxDB {influxdb.url}/write: HTTP 404: " in r.stderr
    assert "database not found" in r.stderr
    assert (tmp_path / "r.txt").exists()


# --- a real run ------------------------------------------------------------------------------


def test_a_local_run_exports_its_times(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    started = time.time()
    r = fleetmon("run", LOCAL, "-i", "0.1", "-q", "--history", "none", "--save-raw", raw,
                 "--format", "prometheus", "--no-rules")  # fmt: skip
    assert r.returncode == 0, r.stderr
    check = _promtool(r.stdout)
    assert check.returncode == 0, check.stdout + check.stderr
    (duration,) = re.findall(r"^fleetmon_run_duration_seconds (\S+)$", r.stdout, re.M)
    assert 0.1 < float(duration) < 60
    (took,) = re.findall(r'^fleetmon_host_collection_seconds\{host="localhost"\} (\S+)$',
                         r.stdout, re.M)  # fmt: skip
    assert 0.1 < float(took) <= float(duration)
    # `report DIR` shows the run's own duration, and the host's clock at its second sample.
    again = fleetmon("report", raw, "--history", "none", "--format", "prometheus", "--no-rules")
    assert f"\nfleetmon_run_duration_seconds {duration}\n" in again.stdout
    influx = fleetmon("report", raw, "--history", "none", "--format", "influx", "--no-rules")
    line = next(x for x in influx.stdout.splitlines() if x.startswith("fleetmon_host,"))
    sampled_s = int(line.rsplit(" ", 1)[1]) / 1e9
    assert started - 2 < sampled_s < time.time() + 2  # btime is whole seconds


def test_a_finding_that_resolves_ends_its_alert(
    tmp_path: Path, alertmanagers: list[ps.Server]
) -> None:
    """Two runs with a history: the finding fires, then resolves; Alertmanager follows."""
    am = alertmanagers[0]
    hist = tmp_path / "history.sqlite"
    rules = {}
    for name, threshold in (("fires", "> 0"), ("passes", "> 100000")):
        rules[name] = tmp_path / f"{name}.yaml"
        rules[name].write_text(
            "- name: test\n  hosts: all\n  rules:\n    - name: cpus-present\n"
            f"      metric: cpu.count\n      warning: '{threshold}'\n",
            encoding="utf-8",
        )
    args = ("run", LOCAL, "-i", "0.1", "-q", "--history", hist, "--alertmanager", am.url,
            "--format", "json", "--no-default-rules")  # fmt: skip
    first = fleetmon(*args, "-r", rules["fires"])
    assert first.returncode == 1, first.stderr
    (finding,) = json.loads(first.stdout)["hosts"][0]["findings"]
    assert (finding["state"], finding["severity"]) == ("firing", "warning")
    (alert,) = ps.wait_for("the alert", lambda: _alerts(am))
    assert alert["labels"] == {"alertname": "cpus-present", "host": "localhost",
                               "subject": "localhost", "severity": "warning"}  # fmt: skip
    assert alert["startsAt"].startswith(finding["since"].removesuffix("Z"))
    time.sleep(1.1)  # a run in the same second would replace the first in the history
    second = fleetmon(*args, "-r", rules["passes"])
    assert second.returncode == 0, second.stderr
    (finding,) = json.loads(second.stdout)["hosts"][0]["findings"]
    assert finding["state"] == "resolved"
    assert _alerts(am) == []


# --- fleetmon serve (issue 17) -----------------------------------------------------------------


def test_serve_metrics_is_the_exposition_and_prometheus_scrapes_it(tmp_path: Path) -> None:
    """`fleetmon serve`'s /metrics is render.prom of its latest tick: promtool passes it,
    OpenMetrics on request, and a real Prometheus scrapes the VM figures from it."""
    with simulated_fleet(tmp_path, hosts=3, kind="kvm", faults="unreachable=1") as inv:
        port = ps.free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "0.5"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:

            def ready() -> str:
                try:
                    status, body = ps.http("GET", f"{url}/metrics")
                except OSError:
                    return ""
                text = body.decode() if status == 200 else ""
                return text if text.count('fleetmon_host_up{host="') == 3 and (
                    "fleetmon_vm_cpu_ratio{" in text) else ""  # fmt: skip

            text = ps.wait_for("serve's /metrics", ready, timeout_s=60)
            check = _promtool(text)
            assert check.returncode == 0, check.stdout + check.stderr
            status, body = ps.http("GET", f"{url}/metrics",
                                   headers={"Accept": "application/openmetrics-text"})  # fmt: skip
            assert status == 200
            assert body.endswith(b"\n# EOF\n")
            with ps.running(ps.prometheus, tmp_path, {"serve": f"127.0.0.1:{port}"}) as prom:

                def query() -> list[dict[str, Any]]:
                    got = ps.get_json(f"{prom.url}/api/v1/query", query="fleetmon_vm_cpu_ratio")
                    result: list[dict[str, Any]] = got["data"]["result"]
                    return result

                result = ps.wait_for("fleetmon_vm_cpu_ratio from serve", query)
                up = ps.get_json(f"{prom.url}/api/v1/query", query="sum(fleetmon_host_up)")
        finally:
            proc.terminate()
            proc.communicate(timeout=20)
    assert {r["metric"]["job"] for r in result} == {"serve"}
    assert all(0 <= float(r["value"][1]) <= 1.5 for r in result)
    assert float(up["data"]["result"][0]["value"][1]) == 2  # one of three is unreachable
