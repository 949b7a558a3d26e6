"""Real Prometheus, Pushgateway, node_exporter, Alertmanager and InfluxDB 1.x servers for the
export tests: Debian's packages (tests/setup/system-deps.sh), each started on a free port of
127.0.0.1 with its data in the test's temporary folder, and stopped by the fixture.

Outside CI a missing binary skips the test; in CI (CI=true) it fails it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clirun import ROOT, fleetmon
from test_report_golden import RAW

from fleetmon.export.http import HttpOptions

BINARIES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "influxd": "influxdb",
}
START_TIMEOUT_S = 60.0
#: Sinks in the tests: no retry, a server here answers at once.
FAST = HttpOptions(timeout_s=10, retries=0)
LOCAL = ROOT / "inventories" / "localhost.yaml"


def require(binary: str) -> str:
    """The path of a server's binary; skip (fail in CI) when its package is missing."""
    path = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists()
                                    else None)  # fmt: skip
    if path is None:
        why = (
            f"{binary} is missing: install Debian's {BINARIES[binary]} (tests/setup/system-deps.sh)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)
    return path


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request: the status and the body (errors are answers too)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str, **params: str) -> Any:
    """GET a JSON document."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    status, body = http("GET", url + query)
    assert status == 200, (status, body[:500])
    return json.loads(body)


@dataclass
class Server:
    """A started server: its base URL, process and log."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start(name: str, argv: Sequence[str], url: str, ready_path: str, folder: Path) -> Server:
    """Start a server and wait until `url + ready_path` answers 2xx (or 204)."""
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    server = Server(name, url, proc, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}:\n{server.log_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status, _ = http("GET", url + ready_path)
            if 200 <= status < 300:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} not ready in {START_TIMEOUT_S:g} s:\n{server.log_text()[-3000:]}")


def pushgateway(folder: Path) -> Server:
    port = free_port()
    argv = [require("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}",
            "--persistence.file="]  # fmt: skip
    return start("pushgateway", argv, f"http://127.0.0.1:{port}", "/-/ready", folder)


def node_exporter(folder: Path, textfile_dir: Path) -> Server:
    port = free_port()
    argv = [require("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults", "--collector.textfile",
            f"--collector.textfile.directory={textfile_dir}"]  # fmt: skip
    return start("node_exporter", argv, f"http://127.0.0.1:{port}", "/metrics", folder)


def alertmanager(folder: Path) -> Server:
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text("route:\n  receiver: none\nreceivers:\n  - name: none\n")
    argv = [require("prometheus-alertmanager"), f"--config.file={config}",
            f"--storage.path={folder / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]  # fmt: skip
    return start("alertmanager", argv, f"http://127.0.0.1:{port}", "/-/ready", folder)


def prometheus(
    folder: Path, jobs: dict[str, str], *, honor_labels: bool = True,
    labels: dict[str, str] | None = None,
) -> Server:  # fmt: skip
    """A Prometheus scraping each job's target (host:port) every second, the target `labels`
    added to its series (as a scrape config gives a `site`)."""
    port = free_port()
    config = folder / "prometheus.yml"
    lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s", "scrape_configs:"]
    for job, target in jobs.items():
        lines += [f"  - job_name: {job}", f"    honor_labels: {str(honor_labels).lower()}",
                  "    static_configs:", f"      - targets: ['{target}']"]  # fmt: skip
        if labels:
            lines += [
                "        labels:",
                *(f"          {k}: {json.dumps(v)}" for k, v in labels.items()),
            ]
    config.write_text("\n".join(lines) + "\n")
    argv = [require("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    return start("prometheus", argv, f"http://127.0.0.1:{port}", "/-/ready", folder)


def influxd(folder: Path) -> Server:
    """InfluxDB 1.x: HTTP on a free port, its RPC port on another, no reporting, its meta,
    data and WAL in the folder."""
    port, rpc = free_port(), free_port()
    config = folder / "influxdb.conf"
    config.write_text(
        f'reporting-enabled = false\nbind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{folder / "meta"}"\n'
        f'[data]\n  dir = "{folder / "data"}"\n  wal-dir = "{folder / "wal"}"\n'
        "  query-log-enabled = false\n"
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "[continuous_queries]\n  enabled = false\n"
        "[subscriber]\n  enabled = false\n"
    )
    argv = [require("influxd"), "run", "-config", str(config)]
    return start("influxd", argv, f"http://127.0.0.1:{port}", "/ping", folder)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """Poll `check` until it returns something true; its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"{what}: nothing after {timeout_s:g} s"
            return value
        time.sleep(0.2)


@contextlib.contextmanager
def running(factory: Callable[..., Server], *args: Any) -> Iterator[Server]:
    """A server for the length of a `with` block."""
    server = factory(*args)
    try:
        yield server
    finally:
        server.stop()


def promtool(text: str, *, openmetrics: bool = False) -> list[str]:
    """What `promtool check metrics` finds wrong with a text, its lint rules included: []
    when nothing. promtool 2.42 reads OpenMetrics as the text format 0.0.4, where a counter's
    HELP names its samples (`x_total`) and OpenMetrics names the family (`x`): that one
    misreading ("x_total no help text") is left out; Prometheus's own OpenMetrics parser
    reads the same text in test_prometheus_parses_openmetrics_with_hostile_names. Nor does
    it know OpenMetrics' `info` type, at which it stops: given as a gauge, its `x_info`
    samples misread the same way."""
    infos = re.findall(r"^# TYPE (\S+) info$", text, re.M) if openmetrics else []
    given = re.sub(r"^(# TYPE \S+) info$", r"\1 gauge", text, flags=re.M) if infos else text
    r = subprocess.run([require("promtool"), "check", "metrics"], input=given,
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    found = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    if openmetrics:
        counters = re.findall(r"^# TYPE (\S+) counter$", text, re.M)
        excused = {f"{c}_total no help text" for c in counters}
        excused |= {f"{i}_info no help text" for i in infos}
        found = [x for x in found if x not in excused]
    assert found or r.returncode in (0, 3), r.returncode  # 3: lint problems, all excused
    return found


def golden_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    """`fleetmon report` of the golden raw folder with `args`: its JSON report."""
    out = tmp_path / "report.json"
    r = fleetmon("report", RAW, "--history", "none", "--json", out, *args, "-o", "/dev/null")
    assert r.returncode == 2, r.stderr
    assert r.stderr == ""
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def top_delays(doc: dict[str, Any], n: int = 10) -> list[tuple[float, str, str]]:
    """The JSON report's n VMs of the largest vCPU delay: (percent, host, VM)."""
    delays = [
        (v["metrics"]["vm.vcpu_delay_pct"], h["name"], v["name"])
        for h in doc["hosts"]
        for v in h["vms"]
        if v["metrics"].get("vm.vcpu_delay_pct") is not None
    ]
    return sorted(delays, reverse=True)[:n]
