"""Alertmanager and InfluxDB exports against the real servers (tests/promservers.py): the
findings as alerts with their labels, resolved ones ending (across two runs with a history),
an HA pair with one member down; InfluxDB 1.x giving back values, tags and timestamps."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promservers as ps
import pytest
import reportfactory as rf
from clirun import fleetmon
from test_report_golden import RAW

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.errors import ExportError
from fleetmon.export.sinks import influx_write, post_alerts
from fleetmon.io.rawstore import load_raw
from fleetmon.model import Severity
from fleetmon.render.alerts import render_alerts
from fleetmon.render.influx import influx_chunks

pytestmark = pytest.mark.slow


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


# --- Alertmanager --------------------------------------------------------------------------


def _alerts(am: ps.Server) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = ps.get_json(f"{am.url}/api/v2/alerts")
    return got


def test_alertmanager_gets_the_findings_with_their_labels(
    tmp_path: Path, alertmanagers: list[ps.Server]
) -> None:
    urls = [arg for am in alertmanagers for arg in ("--alertmanager", am.url)]
    doc = ps.golden_json(tmp_path, *urls)
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
    post_alerts(am.url, body, options=ps.FAST)
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
    post_alerts(am.url, render_alerts(later, None, now_s=time.time(), ttl_s=900), options=ps.FAST)
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
    args = ("run", ps.LOCAL, "--interval", "0.1", "-q", "--history", hist, "--alertmanager", am.url,
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


def test_a_replayed_old_run_pages_no_one(tmp_path: Path, alertmanagers: list[ps.Server]) -> None:
    """`report DIR` of a raw folder days old: its alerts end --alert-ttl after its run, so
    Alertmanager holds none active; a TTL reaching past now makes them active again."""
    am = alertmanagers[0]
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    saved = json.loads((raw / "run.json").read_text(encoding="utf-8"))
    saved["run"]["duration_s"] = 2.5
    (raw / "run.json").write_text(json.dumps(saved), encoding="utf-8")
    args = ("report", raw, "--history", "none", "-o", tmp_path / "r.txt", "--alertmanager", am.url)
    old = fleetmon(*args)
    assert old.returncode == 2, old.stderr
    assert _alerts(am) == []
    again = fleetmon(*args, "--alert-ttl", "200y")
    assert again.returncode == 2, again.stderr
    alerts = ps.wait_for("alerts", lambda: _alerts(am))
    assert {a["status"]["state"] for a in alerts} == {"active"}
    assert {a["endsAt"][:4] for a in alerts} == {"2226"}  # 200 years after the run


def test_the_fleet_rules_of_two_sites_are_two_alerts(
    tmp_path: Path, alertmanagers: list[ps.Server]
) -> None:
    """Two runs of one inventory, a --limit each, with a fleet-scope rule: Alertmanager
    holds an alert for each part (one alert before, the second run's overwriting the
    first's)."""
    am = alertmanagers[0]
    rule = tmp_path / "fleet.yaml"
    rule.write_text(
        "- hosts: all\n  rules:\n    - name: fleet-busiest\n"
        '      expr: "fleet.cpu.busy_pct.max >= 0"\n      scope: fleet\n'
        "      severity: warning\n",
        encoding="utf-8",
    )
    for limit in ("localhost", "all"):
        r = fleetmon("run", ps.LOCAL, "--interval", "0.1", "-q", "--history", "none",
                     "--no-default-rules", "-r", rule, "-l", limit, "-o", tmp_path / "r.txt",
                     "--alertmanager", am.url)  # fmt: skip
        assert r.returncode == 1, r.stderr
    alerts = ps.wait_for("alerts", lambda: len(_alerts(am)) == 2 and _alerts(am))
    assert sorted(a["labels"]["limit"] for a in alerts) == ["all", "localhost"]
    assert {a["labels"]["inventory"] for a in alerts} == {str(ps.LOCAL.resolve())}
    assert {a["labels"]["alertname"] for a in alerts} == {"fleet-busiest"}


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
    doc = ps.golden_json(tmp_path, "--influx-url", f"{influxdb.url}/write?db=fleetmon")
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
    assert got_top == ps.top_delays(doc)
    up = _rows(_influx_query(influxdb, "SELECT * FROM fleetmon_host_up GROUP BY *"))
    assert {(r["host"], r["status"], r["up"]) for r in up} == {
        (h["name"], h["status"], int(h["status"] == "ok")) for h in doc["hosts"]
    }


def test_influxdb_keeps_hostile_names(influxdb: ps.Server) -> None:
    report = rf.hostile_report()
    url = f"{influxdb.url}/write?db=fleetmon"
    assert influx_write(url, influx_chunks(report, groups=True), token=None, options=ps.FAST) == 1
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


def test_influxdb_takes_an_integer_past_int64_and_keeps_a_large_one_exact(
    influxdb: ps.Server,
) -> None:
    """A u64 reading past int64 (accepted by the probe's parser) was written as an integer
    InfluxDB refuses: HTTP 400, the VM's line lost and the run failing every time; a large
    integer lost its last digits through float."""
    report = rf.sample_report()
    kvm01 = report.hosts[0]
    sizes = {"vm1": 10**20 - 1, "vm2": 2**53 + 1}
    vms = tuple(
        dataclasses.replace(v, metrics={**v.metrics, "vm.mem_current_bytes": sizes[v.name]})
        if v.name in sizes
        else v
        for v in kvm01.rows_of("vm")
    )
    host = dataclasses.replace(kvm01, rows={**kvm01.rows, "vm": vms})
    report = dataclasses.replace(report, hosts=(host,))
    url = f"{influxdb.url}/write?db=fleetmon"
    assert influx_write(url, influx_chunks(report), token=None, options=ps.FAST) == 1
    q = "SELECT cpu_pct, mem_current_bytes FROM fleetmon_vm GROUP BY *"
    rows = {r["vm"]: r for r in _rows(_influx_query(influxdb, q))}
    assert rows["vm2"]["mem_current_bytes"] == 2**53 + 1
    assert rows["vm1"]["mem_current_bytes"] is None  # left out, its line kept
    assert rows["vm1"]["cpu_pct"] == 97.4


def test_a_batch_refused_after_others_says_they_were_written(influxdb: ps.Server) -> None:
    """InfluxDB has no transaction: before, the error of a third batch refused read as if
    nothing had been written, the first two in the database all the same."""
    # 2.4, 2.4 and 3.9 MB: a batch each (4 MB at most), the third's field a string.
    chunks = ["m v=1 1\n" * 300_000, "m v=1 2\n" * 300_000, 'm v="text" 3\n' * 300_000]
    with pytest.raises(ExportError) as exc:
        influx_write(f"{influxdb.url}/write?db=fleetmon", chunks, token=None, options=ps.FAST)
    said = str(exc.value)
    assert said.startswith(f"InfluxDB {influxdb.url}/write: HTTP 400: ")
    assert "field type conflict" in said
    assert said.endswith(" (batch 3; the 2 before it were written)")
    assert len(said) < 450
    points = _rows(_influx_query(influxdb, "SELECT count(v) FROM m"))
    assert points[0]["count"] == 2  # the 2 timestamps of the batches written


def test_two_sites_runs_of_one_second_keep_their_run_and_fleet_points(
    influxdb: ps.Server,
) -> None:
    """Two bastions run one inventory from cron, `--limit` a site each, started in the same
    second: InfluxDB keeps both runs' fleetmon_run and fleet findings (before, one run's
    point had the other's tags and timestamp, and overwrote it)."""
    report = rf.sample_report()
    url = f"{influxdb.url}/write?db=fleetmon"
    for limit, code in (("site_paris", 2), ("site_lyon", 1)):
        run = dataclasses.replace(report.run, limit=limit)
        site = dataclasses.replace(report, run=run, exit_code=code)
        assert influx_write(url, influx_chunks(site), token=None, options=ps.FAST) == 1
    runs = _rows(_influx_query(influxdb, "SELECT exit_code FROM fleetmon_run GROUP BY *"))
    assert sorted((r["limit"], r["exit_code"]) for r in runs) == [
        ("site_lyon", 1), ("site_paris", 2)
    ]  # fmt: skip
    q = "SELECT message FROM fleetmon_finding WHERE scope = 'fleet' GROUP BY *"
    fleet = _rows(_influx_query(influxdb, q))
    assert sorted(r["limit"] for r in fleet) == ["site_lyon", "site_paris"]
    assert {r["inventory"] for r in fleet} == {report.run.inventory}
