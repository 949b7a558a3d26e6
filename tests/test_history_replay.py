"""`fleetmon report DIR` into the history its run was recorded in: the history as it stood
before that run, so the same report and verdict as the run's, however often it is replayed,
and the run recorded once (schema 5 keeps each subject's counters of its last two runs)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest
from clirun import fleetmon
from reportfactory import sample_report
from test_history_cli import LOCAL, _with_start
from test_history_write import T0_S, at, minutes

from fleetmon.history import open_history, record_run, schema
from fleetmon.history.forrules import counters_lost, fetch_points, load_counters

SINCE_LAST = textwrap.dedent(
    """\
    - hosts: all
      rules:
        - name: busy-since-last
          expr: "since_last_run('cpu.busy_pct') >= 0"
          severity: warning
          message: "busy since the last run"
    """
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three real local runs saved with --save-raw: their counters move on, run to run."""
    tmp = tmp_path_factory.mktemp("runs")
    out = []
    for i in range(3):
        folder = tmp / f"run{i}"
        res = fleetmon("run", LOCAL, "--interval", "0.2", "-q", "--save-raw", folder, "--history",
                       "none", "--format", "nagios")  # fmt: skip
        assert res.returncode in (0, 1, 2, 3), res.stderr
        out.append(folder)
    return out


def _report(folder: Path, rules: Path, hist: Path) -> dict[str, Any]:
    res = fleetmon("report", folder, "--no-default-rules", "-r", rules, "--history", hist,
                   "--format", "json")  # fmt: skip
    assert res.returncode in (0, 1, 2, 3), res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    assert doc["exit_code"] == res.returncode
    return doc


def _verdict(doc: dict[str, Any]) -> tuple[object, ...]:
    h = doc["hosts"][0]
    return doc["exit_code"], doc["previous_run_at"], h["since_last_run"], h["findings"]


def test_a_replay_of_the_latest_run_averages_since_the_run_before_it(
    runs: list[Path], tmp_path: Path
) -> None:
    """The run's own counters had replaced the previous run's: its replay found none, lost
    its averages since the last run and the findings on them, and recorded that instead."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(SINCE_LAST)
    hist = tmp_path / "h.sqlite"
    folders = [
        _with_start(r, tmp_path, f"2026-06-01T00:{5 * i:02d}:00Z") for i, r in enumerate(runs)
    ]
    first = _report(folders[0], rules, hist)
    assert first["hosts"][0]["since_last_run"] is None
    second = _report(folders[1], rules, hist)
    assert second["hosts"][0]["since_last_run"]["metrics"]["cpu.busy_pct"] is not None
    assert [f["rule"] for f in second["hosts"][0]["findings"]] == ["busy-since-last"]
    for _ in range(2):  # replayed, and again: the same report, the run recorded once
        assert _verdict(_report(folders[1], rules, hist)) == _verdict(second)
    conn = sqlite3.connect(hist)
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    conn.close()
    third = _report(folders[2], rules, hist)
    assert _verdict(_report(folders[2], rules, hist)) == _verdict(third)
    # Two runs back: its previous counters are gone, and the report says so.
    again = _report(folders[1], rules, hist)
    assert again["hosts"][0]["since_last_run"] is None
    assert (
        "averages since the last run not recomputed for 1 host(s) (localhost): the history "
        "keeps each subject's counters of its last two runs only"
    ) in again["notes"]
    assert "not recomputed" not in " ".join(third["notes"])


def _with_counters(rep: Any, value: int) -> Any:
    host = rep.hosts[0]
    cnt = {("host", ""): json.dumps({"uptime_s": float(value), "cpu.user": value})}
    return dataclasses.replace(rep, hosts=(dataclasses.replace(host, counters=cnt),))


def test_the_counters_of_each_subjects_last_two_runs_are_kept(tmp_path: Path) -> None:
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    hosts = (rep.hosts[0],)
    for n in (0, 10, 20):
        record_run(hist, at(_with_counters(rep, n), minutes(n)))

    def user_before(minute: int) -> object:
        found = load_counters(hist, hosts, T0_S + 60 * minute)
        return found.get("kvm01", {}).get(("host", ""), {}).get("cpu.user")

    assert [user_before(m) for m in (25, 20, 15, 10)] == [20, 10, 10, None]
    assert counters_lost(hist, hosts, T0_S + 600) == ["kvm01"]  # two runs back
    assert counters_lost(hist, hosts, T0_S + 1200) == []
    # A run recorded late is the previous one if it is newer; a replay rewrites its own.
    record_run(hist, at(_with_counters(rep, 15), minutes(15)))
    assert user_before(20) == 15
    record_run(hist, at(_with_counters(rep, 20), minutes(20)), replay=True)
    assert [user_before(m) for m in (25, 20)] == [20, 15]
    hist.close()


def test_a_replay_reads_only_the_hourly_averages_made_before_its_run(tmp_path: Path) -> None:
    """The bucket of the replayed run's own hour holds that run and the ones after it."""
    hist = open_history(str(tmp_path / "h.sqlite"), writable=True)
    rep = sample_report()
    for i in range(26):  # two hours and ten minutes: the first two hours rolled up
        record_run(hist, at(rep, minutes(5 * i)))
    need = {("cpu.busy_pct", 30 * 86_400, False)}
    now = T0_S + 65 * 60  # a run of the second hour, replayed
    points = fetch_points(hist, need, rep.hosts, now)
    assert [t for t, _ in points["host", "kvm01", "kvm01"]["cpu.busy_pct", "hourly"]] == [
        T0_S,
        T0_S + 3600,
    ]
    points = fetch_points(hist, need, rep.hosts, now, hourly_until=T0_S + 3600)
    assert [t for t, _ in points["host", "kvm01", "kvm01"]["cpu.busy_pct", "hourly"]] == [T0_S]
    hist.close()


def test_a_schema_4_file_gains_the_previous_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "h.sqlite")
    rep = sample_report()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 4)
    open_history(path, writable=True).close()
    monkeypatch.undo()
    conn = sqlite3.connect(path)  # what a schema 4 fleetmon recorded: the latest only
    conn.execute(
        "INSERT INTO entities (id, scope, host, name, first_t, last_t)"
        " VALUES (1, 'host', 'kvm01', 'kvm01', ?1, ?1)",
        (T0_S,),
    )
    conn.execute(
        "INSERT INTO last_counters VALUES (1, ?, ?)", (T0_S, '{"uptime_s": 0.0, "cpu.user": 0}')
    )
    conn.commit()
    conn.close()
    hist = open_history(path, writable=True)
    assert hist.notes == [f"history {path} upgraded from schema 4 to 5"]
    record_run(hist, at(_with_counters(rep, 5), minutes(5)))
    found = load_counters(hist, rep.hosts, T0_S + 300)  # the replay of that run
    assert found["kvm01"]["host", ""]["cpu.user"] == 0
    hist.close()
