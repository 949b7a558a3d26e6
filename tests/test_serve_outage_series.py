"""`fleetmon serve` scraped by a real Prometheus while a host times out, again and again:
its `fleetmon_host_up` must be one series per outage (one `status`), as an alert's `for:`
and the Grafana dashboard's "Why hosts were not collected" need."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import promservers as ps
from tests.livesim import FLEETMON, simulated_fleet

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
