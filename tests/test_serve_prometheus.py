"""`fleetmon serve` scraped by a real Prometheus server (Debian's package): a PromQL query over
its HTTP API returns the simulated fleet's VM figures that /api/report shows, and /metrics
is the exports' exposition of the latest tick (both text formats)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import promservers as ps
from tests.livesim import FLEETMON, simulated_fleet
from tests.sshd_util import free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("serve-prom")
    with simulated_fleet(tmp, hosts=6, kind="kvm") as inv:
        port = free_port()
        # A slow tick (5 s): the figures Prometheus scraped are still the latest when the
        # test reads /api/report to compare.
        argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "5",
                "--no-rules"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            ps.wait_for("fleetmon serve", lambda: _live(port) == 6, timeout_s=90)
            yield port
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err.decode()


def _live(port: int) -> int:
    try:
        status, body = ps.http("GET", f"http://127.0.0.1:{port}/api/report")
    except OSError:
        return 0
    if status != 200:
        return 0
    return sum(1 for h in json.loads(body)["hosts"] if h["status"] == "ok")


def test_metrics_is_the_exposition_of_the_latest_tick(served: int) -> None:
    status, body = ps.http("GET", f"http://127.0.0.1:{served}/metrics")
    assert status == 200
    text = body.decode()
    assert "# TYPE fleetmon_vm_cpu_ratio gauge" in text
    assert text.count('fleetmon_host_up{host="kvm') == 6
    om = subprocess.run(["curl", "-sS", "-H", "Accept: application/openmetrics-text",
                         f"http://127.0.0.1:{served}/metrics"],
                        capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert om.stdout.rstrip().endswith("# EOF")
    check = subprocess.run([ps.require("promtool"), "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_real_prometheus_scrapes_the_vm_figures(served: int, tmp_path: Path) -> None:
    with ps.running(ps.prometheus, tmp_path, {"fleetmon": f"127.0.0.1:{served}"}) as prom:

        def query() -> list[dict[str, object]]:
            doc = ps.get_json(f"{prom.url}/api/v1/query", query="fleetmon_vm_cpu_ratio")
            return doc["data"]["result"]  # type: ignore[no-any-return]

        result = ps.wait_for("Prometheus has the VM series", query, timeout_s=60)
        _, body = ps.http("GET", f"http://127.0.0.1:{served}/api/report")
    report = json.loads(body)
    expected = {
        (h["name"], v["name"]): v["metrics"].get("vm.cpu_pct")
        for h in report["hosts"]
        for v in h.get("vms", [])
        if v["metrics"].get("vm.cpu_pct") is not None
    }
    got = {(r["metric"]["host"], r["metric"]["vm"]): float(r["value"][1]) for r in result}  # type: ignore[index]
    assert expected
    assert set(expected) <= set(got)
    # Prometheus may hold the tick before this report's: most figures agree exactly.
    same = sum(1 for k, v in expected.items() if got[k] == pytest.approx(v / 100))
    assert same >= len(expected) // 2, (same, len(expected))
