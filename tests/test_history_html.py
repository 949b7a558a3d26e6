"""The history in the HTML report: sparklines, forecasts in words, what changed; and the
simulator's weeks of history on a simulated clock that feed them."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from fleetmon.analyse.pipeline import analyse_host, report_from_hosts
from fleetmon.cli.historyhtml import report_trends
from fleetmon.cli.simhistory import NONCE, _raw, fill_history
from fleetmon.history import open_history
from fleetmon.model import Finding, RunInfo, Severity, Trend
from fleetmon.render.html import render_html
from fleetmon.render.htmltrends import LEVELS, changes, encode, host_trends, spark
from fleetmon.sim.answer import Answer, ScriptInfo
from fleetmon.sim.captures import load_captures
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sim.server import local_df
from fleetmon.sim.timeline import activity, timeline

MONDAY = 1_795_392_000  # 2026-11-23T00:00:00Z, a Monday


def test_encode_scales_to_64_levels_with_gaps() -> None:
    # 50 % of 63 levels is 31.5: level 32, W
    assert encode([0.0, 50.0, None, 100.0]) == ("0W " + LEVELS[-1], 0.0, 100.0)
    assert encode([None, 3.0]) is None
    flat = spark(Trend("host", "h", "mem.used_pct", "24h", (40.0, 40.0)))
    assert flat is not None
    assert (flat.data, flat.hi) == ("", "40.0%")  # a flat line: its value, no line
    assert spark(Trend("host", "h", "cpu.steal_pct", "24h", (0.0, 0.0, 0.0))) is None


def test_activity_follows_the_working_day() -> None:
    assert activity(MONDAY + 3 * 3600) == pytest.approx(0.35)  # 03:00 Monday
    assert activity(MONDAY + 13 * 3600) == pytest.approx(1.4)  # 13:00 Monday
    assert activity(MONDAY + 5 * 86_400 + 13 * 3600) == pytest.approx(0.65)  # Saturday


@pytest.fixture(scope="module")
def base() -> object:
    fleet = make_fleet(4, "kvm", 0, {}, endpoints("127.0.1.1", 4, 2222, 1))
    cap, info = load_captures(), ScriptInfo(NONCE, 1.0, "auto")
    df_k, df_i = local_df("-k"), local_df("-i")
    raws = [_raw(h, Answer(cap, h, info, df_k, df_i), float(MONDAY)) for h in fleet]
    return report_from_hosts([analyse_host(r) for r in raws], RunInfo("0.1.0", "", 1.0, "sim"))


def test_timeline_builds_the_trends_in(base: object) -> None:
    reports = list(timeline(base, MONDAY, 48, 1800))  # type: ignore[arg-type]
    assert [r.run.started_at for r in reports[:2]] == [
        "2026-11-23T00:00:00Z",
        "2026-11-23T00:30:00Z",
    ]
    filling = [
        max(float(f.metrics["fs.used_pct"] or 0) for f in r.hosts[3].rows_of("fs")) for r in reports
    ]
    assert filling[0] == pytest.approx(55.0)
    assert filling[-1] == pytest.approx(94.0)
    assert filling == sorted(filling)


def test_sparklines_and_forecasts_from_a_filled_history(base: object, tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    args = argparse.Namespace(
        every="30m", days=2.0, base_address="127.0.1.1", hosts=4, port=2222,
        ports_per_address=1, kind="kvm", seed=0, faults=None, fill_history=str(path),
        history_keep=None,
    )  # fmt: skip
    assert fill_history(args) == 0
    hist = open_history(str(path), writable=False)
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone() == (96,)
    # The simulator lists its domains' UUIDs as virsh does: every VM known by its UUID.
    vms = hist.conn.execute("SELECT count(*), count(uuid) FROM entities WHERE scope = 'vm'")
    total, with_uuid = vms.fetchone()
    assert total == with_uuid > 0
    last_t = hist.conn.execute("SELECT max(t) FROM runs").fetchone()[0]
    now = last_t + 1800
    report = list(timeline(base, now - 95 * 1800, 96, 1800))[-1]  # type: ignore[arg-type]
    decorated = report_trends(hist, report, now)
    hist.close()
    trends = decorated.trends["kvm0001"]
    day = [t for t in trends if t.scope == "host" and t.window == "24h"]
    assert {t.metric for t in day} == {"cpu.busy_pct", "cpu.steal_pct", "mem.used_pct"}
    assert all(len(t.values) == 24 for t in day)
    assert all(len(t.values) == 28 for t in trends if t.window == "7d")
    assert {t.scope for t in trends} == {"host", "disk", "nic", "vm"}
    (forecast,) = decorated.forecasts["kvm0004"]  # the 4th host's filesystem fills
    assert forecast.startswith("/ full in ")
    assert "at the rate of the last 24 h (fit over 4" in forecast
    page = render_html(decorated)
    assert page.count("<table class=tr data-v=") == 4
    assert forecast.replace("²", "&sup2;") in page or forecast in page
    views = host_trends(decorated)
    labels = [label for label, _ in views["kvm0001"].rows]
    assert labels[:2] == ["CPU busy", "mem used"]  # no steal on this host: no line for it
    assert "steal" not in labels


def test_new_and_resolved_findings_head_the_page(base: object) -> None:
    report = base  # type: ignore[assignment]
    started = "2030-01-01T00:00:00Z"
    new = Finding("r1", Severity.WARNING, "host", "kvm0001", None, None, None, "new one",
                  state="firing", since=started, new=True)  # fmt: skip
    gone = Finding("r2", Severity.OK, "host", "kvm0002", None, None, None, "passes again",
                   state="resolved", since=started)  # fmt: skip
    old = Finding("r3", Severity.WARNING, "host", "kvm0003", None, None, None, "still on",
                  state="firing", since="2029-12-31T00:00:00Z")  # fmt: skip
    hosts = list(report.hosts)  # type: ignore[attr-defined]
    hosts[0] = dataclasses.replace(hosts[0], findings=(new, old))
    hosts[1] = dataclasses.replace(hosts[1], findings=(gone,))
    run = dataclasses.replace(report.run, started_at=started)  # type: ignore[attr-defined]
    first = dataclasses.replace(report, run=run, hosts=tuple(hosts))  # type: ignore[type-var]
    assert changes(first) == ((), ())  # a history's first run: no last run to compare
    run = dataclasses.replace(run, previous_run_at="2029-12-31T23:55:00Z")
    rep = dataclasses.replace(report, run=run, hosts=tuple(hosts))  # type: ignore[type-var]
    n, g = changes(rep)
    assert [c.finding.rule for c in n] == ["r1"]
    assert [c.finding.rule for c in g] == ["r2"]
    page = render_html(rep)
    section = page[page.index("<section id=changes>") : page.index("<section id=findings>")]
    assert "<h3>New</h3>" in section
    assert "kvm0001: new one" in section
    assert "kvm0002: passes again" in section
    assert "still on" not in section


def test_simulate_fill_history_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    res = subprocess.run(
        [sys.executable, "-m", "fleetmon", "simulate", "--hosts", "3", "--fill-history", path,
         "--days", "1", "--every", "1h"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        f"24 runs of 3 simulated hosts, every 1h over 1 days, written to {path} in "
    )


def test_bucket_averages_by_key_lookups_equal_the_range_scan(base: object, tmp_path: Path) -> None:
    """A few NICs of many are read by key; every NIC by a scan: the same averages."""
    from fleetmon.history.sparks import bucketed

    path = tmp_path / "h.sqlite"
    args = argparse.Namespace(
        every="20m", days=1.5, base_address="127.0.1.1", hosts=4, port=2222,
        ports_per_address=1, kind="kvm", seed=0, faults=None, fill_history=str(path),
        history_keep=None,
    )  # fmt: skip
    fill_history(args)
    hist = open_history(str(path), writable=False)
    ids = [i for (i,) in hist.conn.execute("SELECT id FROM entities WHERE scope = 'nic'")]
    now = hist.conn.execute("SELECT max(t) FROM runs").fetchone()[0] + 1
    metrics = ["nic.rx_bytes_per_s"]
    for size, since in ((3600, now - 86_400), (21_600, now - 7 * 86_400)):
        every = bucketed(hist, "nic", ids, metrics, since, now, size)  # a scan
        busy = sorted(ids, key=lambda i: -sum(every.get(i, {}).get(metrics[0], {}).values()))
        few = bucketed(hist, "nic", busy[:2], metrics, since, now, size)  # by key
        assert sorted(few) == sorted(busy[:2])
        for eid, per in few.items():
            assert per[metrics[0]] == pytest.approx(every[eid][metrics[0]])
            assert max(per[metrics[0]].values()) > 0
    hist.close()


def test_a_forecast_needs_the_fit_the_shipped_rule_needs() -> None:
    """/ at 30 % after a day near 94 % fitted a line of R² 0.10 that said "full in 38.8 h":
    a fit the shipped fs-full-in-3-days (min_r2 0.8, min_points 6) would not trust."""
    from fleetmon.cli.historyhtml import forecast

    now = MONDAY + 86_400
    steady = [(float(now - 3600 * i), 90.0 - i) for i in range(12)]  # 1 % an hour
    assert forecast("/var", steady, now) == (
        "/var full in 10 h at the rate of the last 24 h (fit over 12 points, R² 1.00)"
    )
    jump = [(float(now - 300 * i), 94.0 - 0.02 * i) for i in range(1, 288)]  # 5.7 % a day
    jump.append((float(now), 30.0))  # the live run does not continue the filled timeline
    line = forecast("/", jump, now)
    assert line is not None
    assert line.startswith("/: no trend over the last 24 h (fit over 288 points, R² 0.10;")
    assert line.endswith("; a forecast needs 6 points and R² ≥ 0.8)")
    assert "full" not in line
    few = steady[:3]
    assert forecast("/var", few, now) == (
        "/var: no trend over the last 24 h (fit over 3 points, R² 1.00;"
        " a forecast needs 6 points and R² ≥ 0.8)"
    )
    assert forecast("/var", [(float(now - 3600), 50.0), (float(now), 50.0)], now) is None


def test_bucket_averages_are_the_averages_of_their_runs(tmp_path: Path) -> None:
    """Each sparkline bucket is the average of the runs in it, by hand from the raw rows
    (within half a stored step: an hourly average is kept in 0.01 %), the newest one too,
    which the last rolled-up hour cuts in two: it was the average of the runs after that
    hour alone (a 7 d line's newest 6 h point 15.59 % for a bucket whose runs average
    9.89 %), and an hour of fewer runs weighed as much as a full one."""
    from fleetmon.history.sparks import bucketed

    path = tmp_path / "h.sqlite"
    args = argparse.Namespace(
        every="25m", days=1.5, base_address="127.0.1.1", hosts=2, port=2222,  # 2 or 3 an hour
        ports_per_address=1, kind="kvm", seed=0, faults=None, fill_history=str(path),
        history_keep=None,
    )  # fmt: skip
    fill_history(args)
    hist = open_history(str(path), writable=False)
    conn = hist.conn
    rolled = int(hist.meta("rolled_hourly_to") or 0)
    # Bucket edges the rolled-up hour is not on, whatever the hour the test runs in.
    size = next(h for h in (6, 7, 5, 11, 13) if (rolled // 3600) % h) * 3600
    ids = [i for (i,) in conn.execute("SELECT id FROM entities WHERE scope = 'host'")]
    now = conn.execute("SELECT max(t) FROM runs").fetchone()[0] + 1
    since = now // size * size - 3 * size  # as report_trends: whole buckets
    got = bucketed(hist, "host", ids, ["cpu.busy_pct"], since, now, size)
    cut = rolled // size * size
    for eid in ids:
        per = got[eid]["cpu.busy_pct"]
        assert cut in per
        for start, value in per.items():
            lo, hi = start, start + size
            runs = [
                v / 100
                for (v,) in conn.execute(
                    'SELECT "cpu.busy_pct" FROM raw_host WHERE k >= ? AND k < ? AND k & ? = ?',
                    (lo << 24, hi << 24, (1 << 24) - 1, eid),
                )
            ]
            assert value == pytest.approx(sum(runs) / len(runs), abs=0.005), (eid, start)
    hist.close()
