"""`fleetmon serve` scraped by a real Prometheus while a host times out, again and again:
its `fleetmon_host_up` must be one series per outage (one `status`), as an alert's `for:`
and the Grafana dashboard's "Why hosts were not collected" need."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import promservers as ps
from tests.livesim import FLEETMON, simulated_fleet, simulator
from tests.test_serve import _serve

pytestmark = pytest.mark.slow


def _statuses(prom: str, start: float) -> dict[str, list[tuple[float, str]]]:
    """Each host's (time, status) of its host_up samples since `start`."""
    doc = ps.get_json(f"{prom}/api/v1/query_range", query="fleetmon_host_up",
                      start=f"{start:.3f}", end=f"{time.time():.3f}", step="0.5")  # fmt: skip
    out: dict[str, list[tuple[float, str]]] = {}
    for r in doc["data"]["result"]:
        for t, _ in r["values"]:
            out.setdefault(r["metric"]["host"], []).append((float(t), r["metric"]["status"]))
    return {h: sorted(v) for h, v in out.items()}


def test_a_host_timing_out_again_and_again_stays_timeout(tmp_path: Path) -> None:
    """The host with the fault (--faults timeout=1) never sends a sample: each try waits the
    2 s --timeout, then backs off. While a retry connected it was `skipped`, a status of its
    own: once it had failed, its host_up went timeout, skipped, timeout... (a new series
    each time)."""
    with simulated_fleet(tmp_path, hosts=2, kind="kvm", faults="timeout=1") as inv:
        port = ps.free_port()
        argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{port}", "-d", "1",
                "--timeout", "2", "--no-rules"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            with ps.running(ps.prometheus, tmp_path, {"fleetmon": f"127.0.0.1:{port}"}) as prom:
                start = time.time()

                def retried() -> list[tuple[float, str]]:
                    got = [v for v in _statuses(prom.url, start).values()
                           if sum(s == "timeout" for _, s in v) >= 12]  # fmt: skip
                    return got[0] if got else []

                try:
                    seen = ps.wait_for("a host timed out a few times", retried, timeout_s=90)
                except AssertionError:
                    print(_statuses(prom.url, start))
                    raise
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err.decode()
    first_failure = next(t for t, s in seen if s == "timeout")
    after = {s for t, s in seen if t >= first_failure}
    assert after == {"timeout"}, [(round(t - first_failure, 1), s) for t, s in seen][:40]


def _host_series(metrics: str, family: str) -> dict[str, str]:
    """host -> the line of `family` naming it."""
    lines = [line for line in metrics.splitlines() if line.startswith(family + "{")]
    return {re.search(r'host="([^"]+)"', line)[1]: line for line in lines}  # type: ignore[index]


def test_a_hung_fleets_figures_go_stale_not_frozen(tmp_path: Path) -> None:
    """The simulator stopped (SIGSTOP: every host hung, its TCP connection open) sends no
    sample, and the 60 s --timeout is far off: each host's last figures were exported as
    current until then, host_up 1 status ok (a frozen value on every scrape). Past
    stale_after_s they go (host_up 0, status timeout, as the timeout will keep it), and
    come back with the hosts."""
    with simulator(tmp_path, hosts=3, kind="kvm") as (inv, sim):
        served = _serve(inv, "--timeout", "60", "--no-rules")
        try:
            served.wait_ready(live=3)
            before = _host_series(served.get("/metrics")[2].decode(), "fleetmon_host_up")
            assert all('status="ok"} 1.0' in line for line in before.values()), before
            sim.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()

            def stale() -> dict[str, str]:
                metrics = served.get("/metrics")[2].decode()
                up = _host_series(metrics, "fleetmon_host_up")
                hung = all('status="timeout"} 0.0' in line for line in up.values())
                return up if hung and "fleetmon_vm_cpu_ratio{" not in metrics else {}

            up = ps.wait_for("the hung hosts' figures dropped", stale, timeout_s=40)
            assert time.monotonic() - stopped < 50  # well before the 60 s deadline
            assert set(up) == set(before)
            code, _, body = served.get("/healthz")
            assert code == 503, body
            assert b"not live: timeout 3" in body, body
            report = json.loads(served.get("/api/report")[2])
            assert {h["status"] for h in report["hosts"]} == {"timeout"}
            assert all("(stalled since " in h["error"] for h in report["hosts"]), report
            sim.send_signal(signal.SIGCONT)
            served.wait_ready(live=3)
            assert "fleetmon_vm_cpu_ratio{" in served.get("/metrics")[2].decode()
        finally:
            sim.send_signal(signal.SIGCONT)
            code, err = served.stop()
    assert code == 0, err


def test_a_host_whose_ticks_are_slow_is_not_taken_for_hung(tmp_path: Path) -> None:
    """A host whose tick takes longer than three intervals and 5 s (a slow virsh: here the
    simulator's clock 20 times slower, a tick every 10 s at -d 0.5) is judged stalled in
    its own ticks: stale_after_s(0.5) alone would have made it `timeout` for the last
    3.5 s of every tick, its host_up series flapping."""
    with simulator(tmp_path, hosts=2, kind="kvm", extra=("--time-scale", "0.05")) as (inv, _):
        served = _serve(inv, "--timeout", "60", "--no-rules")
        try:
            served.wait_ready(live=2, limit_s=90)
            seen = []
            end = time.monotonic() + 25  # past two more ticks
            while time.monotonic() < end:
                report = json.loads(served.get("/api/report")[2])
                seen += [(h["status"], h["error"]) for h in report["hosts"]]
                time.sleep(0.5)
        finally:
            code, err = served.stop()
    assert code == 0, err
    assert {status for status, _ in seen} == {"ok"}, sorted(set(seen))
