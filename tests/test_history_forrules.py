"""What the rules read from the history: points fetched for this run's subjects, states."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from reportfactory import sample_report
from test_history_write import T0_S, at, minutes

from fleetmon.history import open_history, record_run, schema, store
from fleetmon.history.forrules import fetch_points, load_states


def test_points_of_this_run_s_subjects(tmp_path: Path) -> None:
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    for i in range(3):
        record_run(hist, at(rep, minutes(5 * i)))
    now = T0_S + 15 * 60
    needs = {("cpu.busy_pct", 3600, False), ("vm.cpu_pct", 600, False)}
    points = fetch_points(hist, needs, rep.hosts, now)
    kvm01 = rep.hosts[0]
    busy = float(kvm01.metrics["cpu.busy_pct"])  # type: ignore[arg-type]
    assert points["host", "kvm01", "kvm01"]["cpu.busy_pct", "raw"] == [
        (float(T0_S + 300 * i), pytest.approx(busy, abs=0.005)) for i in range(3)
    ]
    # vm.cpu_pct over 10 minutes: the runs at +5 and +10 min (the window is left-open).
    vm1 = points["vm", "kvm01", "vm1"]["vm.cpu_pct", "raw"]
    assert [t for t, _ in vm1] == [T0_S + 300.0, T0_S + 600.0]
    kvm03 = points.get(("host", "kvm03", "kvm03"), {})
    assert kvm03.get(("cpu.busy_pct", "raw"), []) == []  # never collected: no values
    hist.close()


def test_a_longer_window_than_the_raw_tier_reads_hourly_averages(tmp_path: Path) -> None:
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    for i in range(14):  # 70 minutes: the first hour is rolled up
        record_run(hist, at(rep, minutes(5 * i)))
    now = T0_S + 70 * 60
    points = fetch_points(hist, {("cpu.busy_pct", 30 * 86_400, False)}, rep.hosts, now)
    (point,) = points["host", "kvm01", "kvm01"]["cpu.busy_pct", "hourly"]
    assert point[0] == T0_S
    hist.close()


def test_a_292_year_window_walks_only_the_kept_buckets(tmp_path: Path) -> None:
    """avg_over(m, "292y") reads the hourly tier from its oldest bucket, not hour by hour
    from 1734: counted in SQLite's virtual machine steps, which no load changes (the walk
    from 1734 is 2.5 million buckets, tens of millions of steps)."""
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    for i in range(14):
        record_run(hist, at(rep, minutes(5 * i)))
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    hist.conn.set_progress_handler(count, 1000)
    now = T0_S + 70 * 60
    window = 292 * 365 * 86_400
    points = fetch_points(hist, {("cpu.busy_pct", window, False)}, rep.hosts, now)
    hist.conn.set_progress_handler(None, 0)
    (point,) = points["host", "kvm01", "kvm01"]["cpu.busy_pct", "hourly"]
    assert point[0] == T0_S
    assert steps[0] < 1000  # under a million steps
    hist.close()


def test_a_schema_1_file_gains_the_rule_states_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "h.sqlite")
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    hist = open_history(path, writable=True)
    record_run(hist, sample_report())
    hist.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    hist = open_history(path, writable=True)
    assert hist.notes == [f"history {path} upgraded from schema 1 to 3"]
    assert load_states(hist) == {}
    assert hist.conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    rep = dataclasses.replace(sample_report())
    rec = record_run(
        hist,
        at(rep, minutes(5)),
        states={("r", "host", "kvm01", "kvm01"): ("firing", "warning", 1, 1, T0_S + 300)},
    )
    assert rec.t == T0_S + 300
    assert load_states(hist) == {
        ("r", "host", "kvm01", "kvm01"): ("firing", "warning", 1, 1, T0_S + 300)
    }
    hist.close()
    assert sorted(store.MIGRATIONS) == [1, 2, 3, 4, 5]


def test_the_latest_counters_of_each_subject_are_kept(tmp_path: Path) -> None:
    from fleetmon.history.forrules import load_counters

    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    kvm01 = rep.hosts[0]
    counters = {("host", ""): '{"uptime_s":100.5,"boot_id":"b","cpu.user":7}'}
    counters[("vm", "vm1")] = '{"cpu.time":123}'
    hosts = (dataclasses.replace(kvm01, counters=counters), *rep.hosts[1:])
    record_run(hist, dataclasses.replace(at(rep, minutes(5)), hosts=hosts))
    record_run(hist, at(rep, minutes(0)))  # a run recorded late, without counters
    found = load_counters(hist, hosts, T0_S + 600)
    assert found == {
        "kvm01": {
            ("host", ""): {"uptime_s": 100.5, "boot_id": "b", "cpu.user": 7, "_t": T0_S + 300},
            ("vm", "vm1"): {"cpu.time": 123, "_t": T0_S + 300},
        }
    }
    assert load_counters(hist, hosts, T0_S + 300) == {}  # only runs before this one
    hist.close()


def test_a_subject_retention_forgets_takes_its_counters_along(tmp_path: Path) -> None:
    """Retention deletes a subject not seen for longer than the history keeps, and SQLite
    gives its id to the next new subject when it was the newest: its counters stayed, and a
    VM met for the first time had another's counters of days ago as its previous run's."""
    import random

    from reportfactory import host, report, vm

    from fleetmon.history.forrules import load_counters
    from fleetmon.history.retention import Retention

    rng = random.Random(5)
    keep = Retention(raw_s=3600, hourly_s=2 * 3600, daily_s=86_400)
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)

    def run(minute: int, vms: list[str]) -> tuple[int, tuple[object, ...]]:
        h = host("kvm01", rng)
        counters = {("vm", name): f'{{"cpu.time":{1000 + minute}}}' for name in vms}
        h = dataclasses.replace(
            h, rows={**h.rows, "vm": tuple(vm(n, rng) for n in vms)}, counters=counters
        )
        rep = report([h])
        record_run(hist, at(rep, minutes(minute)), keep)
        return T0_S + 60 * minute, tuple(rep.hosts)

    run(0, ["db-1", "old-1"])  # old-1: the newest subject, never seen again
    gone = hist.conn.execute("SELECT id FROM entities WHERE name = 'old-1'").fetchone()[0]
    for day in range(1, 4):
        run(day * 24 * 60, ["db-1"])
    assert (
        hist.conn.execute("SELECT count(*) FROM entities WHERE id = ?", (gone,)).fetchone()[0] == 0
    )
    orphans = hist.conn.execute(
        "SELECT count(*) FROM last_counters WHERE entity NOT IN (SELECT id FROM entities)"
    )
    assert orphans.fetchone()[0] == 0
    # A new VM (no counters of its own yet), whatever id it is given: none from another.
    h = host("kvm01", rng)
    fresh = dataclasses.replace(h, rows={**h.rows, "vm": (vm("new-1", rng),)})
    t = T0_S + 4 * 86_400
    record_run(hist, at(report([fresh]), minutes(4 * 24 * 60)), keep)
    found = load_counters(hist, (fresh,), t + 300)
    assert ("vm", "new-1") not in found.get("kvm01", {})
    hist.close()
