"""The Prometheus exports against the real servers (tests/promservers.py): promtool on every
output (a 500-host fleet too), node_exporter's textfile collector, the Pushgateway, a real
Prometheus scraping it (and `fleetmon serve`) answering PromQL with the JSON report's figures,
its OpenMetrics parser on hostile names."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
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

from fleetmon.export.sinks import push
from fleetmon.render.prom import CONTENT_TYPE_OPENMETRICS, prometheus_chunks, render_prometheus

pytestmark = pytest.mark.slow


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[ps.Server]:
    with ps.running(ps.pushgateway, tmp_path) as server:
        yield server


# --- promtool --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["prometheus", "openmetrics"])
def test_promtool_passes_the_cli_output(fmt: str, tmp_path: Path) -> None:
    r = fleetmon("report", RAW, "--history", "none", "--format", fmt, "--export-groups")
    assert r.returncode == 2, r.stderr
    assert 'fleetmon_vm_cpu_ratio{groups=",kvm,rack01,",host="kvm0007",' in r.stdout
    assert ps.promtool(r.stdout, openmetrics=fmt == "openmetrics") == []


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("which", ["hostile", "captured"])
def test_promtool_passes_hostile_and_captured_reports(which: str, openmetrics: bool) -> None:
    report = rf.hostile_report() if which == "hostile" else rf.captured_report()
    text = render_prometheus(report, openmetrics=openmetrics, groups=True)
    assert ps.promtool(text, openmetrics=openmetrics) == []


def test_promtool_passes_500_hosts_of_20_vms() -> None:
    text = render_prometheus(rf.fleet_report(500, 20))
    assert text.count('fleetmon_vm_cpu_ratio{host="') > 9000
    assert ps.promtool(text) == []


# --- node_exporter's textfile collector ------------------------------------------------


def test_node_exporter_serves_the_textfile(tmp_path: Path) -> None:
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    prom = textdir / "fleetmon.prom"
    doc = ps.golden_json(tmp_path, "--prom-textfile", str(prom))
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
         options=ps.FAST)  # fmt: skip
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
         options=ps.FAST)  # fmt: skip
    second = _pushed(pushgateway)
    assert re.search(r'fleetmon_vm_cpu_ratio\{host="kvm01",.*vm="vm1"', second)
    assert not re.search(r'fleetmon_vm_\w+\{host="kvm01",.*vm="vm2"', second)


def test_an_inventory_named_dot_or_dotdot_is_its_own_group(pushgateway: ps.Server) -> None:
    """`fleetmon run . --push`: `.` was a path segment httpx removed (HTTP 400), `..` took
    the job's group away."""
    chunks = list(prometheus_chunks(rf.sample_report()))
    for name in (".", ".."):
        push(pushgateway.url, chunks, job="fleetmon", grouping={"inventory": name},
             options=ps.FAST)  # fmt: skip
    pushed = _pushed(pushgateway)
    group = r'push_time_seconds\{instance="",(inventory="[^"]*"),job="fleetmon"\}'
    groups = set(re.findall(group, pushed))
    assert groups == {'inventory="."', 'inventory=".."'}


#: --limit patterns a path's percent-encoding or base64 must carry whole to the Pushgateway.
_AWKWARD_LIMITS = ["web 1?#x", "a%2Fb", "50%", "é,ü", "web[1:3]:&db", "x@base64", "/abs/p",
                   "a\\b", "line\nbreak", "=="]  # fmt: skip


def test_awkward_limits_are_each_their_own_group(pushgateway: ps.Server) -> None:
    """Already right, kept so: a group's label value with `/`, `%`, `?`, `#`, `@base64`, a
    newline or no ASCII reaches the real Pushgateway as it was (its API's labels)."""
    chunks = list(prometheus_chunks(rf.sample_report()))
    for limit in _AWKWARD_LIMITS:
        push(pushgateway.url, chunks, job="fleetmon", grouping={"inventory": "i", "limit": limit},
             options=ps.FAST)  # fmt: skip
    groups = ps.get_json(f"{pushgateway.url}/api/v1/metrics")["data"]
    assert sorted(g["labels"]["limit"] for g in groups) == sorted(_AWKWARD_LIMITS)


def test_limited_runs_of_one_inventory_keep_their_own_groups(
    tmp_path: Path, pushgateway: ps.Server
) -> None:
    """The group was the inventory's path as typed: each site's `run inv --limit SITE
    --push` (the README's multi-site recipe) wiped the other sites' series, and the same
    inventory by another path was another group, every series twice."""
    inv = tmp_path / "hosts.ini"
    inv.write_text("[site_a]\nh1\n[site_b]\nh2\nh3\n[all:vars]\nansible_connection=local\n")
    relative = os.path.relpath(inv, ROOT)  # fleetmon runs in ROOT
    for path, limit in ((inv, "site_a"), (inv, "site_b"), (relative, "site_b")):
        r = fleetmon("run", path, "-l", limit, "--interval", "0.1", "-q", "--history", "none",
                     "-o", "/dev/null", "--push", pushgateway.url)  # fmt: skip
        assert r.returncode in (0, 1, 2, 3), r.stderr
    pushed = _pushed(pushgateway)
    group = r'push_time_seconds\{instance="",inventory="([^"]*)",job="fleetmon",limit="(\w+)"\}'
    assert sorted(re.findall(group, pushed)) == [(str(inv), "site_a"), (str(inv), "site_b")]
    up = re.findall(r'^fleetmon_host_up\{host="(\w+)",.*limit="(\w+)",status="ok"\} 1$',
                    pushed, re.M)  # fmt: skip
    assert sorted(up) == [("h1", "site_a"), ("h2", "site_b"), ("h3", "site_b")]


def test_prometheus_scrapes_the_push_and_promql_gives_the_json_figures(
    tmp_path: Path, pushgateway: ps.Server
) -> None:
    doc = ps.golden_json(tmp_path, "--push", pushgateway.url)
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
    want_top = ps.top_delays(doc)
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
            # An info family (OpenMetrics `info`), its DMI product the host's text.
            q = "fleetmon_host_virtualization_info"
            virt = ps.get_json(f"{prom.url}/api/v1/query", query=q)["data"]["result"]
    finally:
        server.shutdown()
        server.server_close()
    assert up["data"]["result"][0]["value"][1] == "1"
    assert [r["metric"]["host"] for r in result] == [rf.HOSTILE_COMMA]
    assert float(result[0]["value"][1]) == 0.412
    assert [(v["metric"]["type"], v["metric"]["product"], v["value"][1]) for v in virt] == [
        ("qemu", rf.HOSTILE_QUOTE + rf.HOSTILE_BACKSLASH, "1")
    ]


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


# --- a real run ------------------------------------------------------------------------------


def test_a_local_run_exports_its_times(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    started = time.time()
    r = fleetmon("run", ps.LOCAL, "--interval", "0.1", "-q", "--history", "none", "--save-raw", raw,
                 "--format", "prometheus", "--no-rules")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert ps.promtool(r.stdout) == []
    (duration,) = re.findall(r"^fleetmon_run_duration_seconds (\S+)$", r.stdout, re.M)
    assert 0.1 < float(duration) < 60
    # The collection time carries the host's labels, as its metrics (hypervisor if any).
    (labels,) = re.findall(r'^fleetmon_host_cpus(\{host="localhost"[^}]*\}) ', r.stdout, re.M)
    (took,) = re.findall(rf"^fleetmon_host_collection_seconds{re.escape(labels)} (\S+)$",
                         r.stdout, re.M)  # fmt: skip
    assert 0.1 < float(took) <= float(duration)
    # `report DIR` shows the run's own duration, and the host's clock at its second sample.
    again = fleetmon("report", raw, "--history", "none", "--format", "prometheus", "--no-rules")
    assert f"\nfleetmon_run_duration_seconds {duration}\n" in again.stdout
    influx = fleetmon("report", raw, "--history", "none", "--format", "influx", "--no-rules")
    line = next(x for x in influx.stdout.splitlines() if x.startswith("fleetmon_host,"))
    sampled_s = int(line.rsplit(" ", 1)[1]) / 1e9
    assert started - 2 < sampled_s < time.time() + 2  # btime is whole seconds


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
            assert ps.promtool(text) == []
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
