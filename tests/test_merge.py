"""`fleetmon merge`: JSON reports of real runs (local hosts: this machine's /proc) made one."""

from __future__ import annotations

import base64
import json
import os
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from capturehttp import Seen
from clirun import fleetmon

FLEET_RULE = """\
- hosts: all
  rules:
    - name: fleet-busiest
      expr: "fleet.cpu.busy_pct.max >= 0"
      scope: fleet
      severity: warning
      message: "busiest {{ fleet.cpu.busy_pct.max | round(3) }}"
"""


def _run(tmp: Path, inv: Path, limit: str, name: str) -> Path:
    out = tmp / name
    res = fleetmon(
        "run", inv, "-l", limit, "-q", "--history", "none", "--format", "json", "-o", out
    )
    assert res.returncode in (0, 1, 2, 3), res.stderr
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("merge")
    inv = tmp / "hosts.ini"
    inv.write_text("[site_a]\nh1\nh2\n[site_b]\nh3\n[all:vars]\nansible_connection=local\n")
    a = _run(tmp, inv, "h1:h2", "a.json")
    b = _run(tmp, inv, "h2:h3", "b.json")
    return a, b, tmp


def _merge(*args: object) -> tuple[int, dict[str, Any], str]:
    res = fleetmon("merge", *args, "--format", "json")
    return res.returncode, json.loads(res.stdout) if res.stdout else {}, res.stderr


def test_merged_hosts_are_deduplicated_by_the_stated_rule(
    reports: tuple[Path, Path, Path],
) -> None:
    a, b, _ = reports
    code, doc, err = _merge(a, b)
    assert code in (0, 1, 2, 3), err
    assert [h["name"] for h in doc["hosts"]] == ["h1", "h2", "h3"]
    # h2 was collected in both: the later run's (b) is kept, and said so.
    h2_b = next(h for h in json.loads(b.read_text())["hosts"] if h["name"] == "h2")
    h2 = doc["hosts"][1]
    assert h2["metrics"] == h2_b["metrics"]
    assert f"host h2 is in {a}, {b}: kept {b}'s" in doc["notes"]
    assert doc["notes"][0].startswith("merged at ")
    assert doc["summary"]["hosts"] == 3


def test_fleet_statistics_are_over_the_merged_fleet(reports: tuple[Path, Path, Path]) -> None:
    a, b, _ = reports
    _, doc, _ = _merge(a, b)
    busy = [h["metrics"]["cpu.busy_pct"] for h in doc["hosts"]]
    stat = doc["fleet"]["metrics"]["cpu.busy_pct"]
    assert stat["count"] == 3
    assert stat["max"] == pytest.approx(max(busy))
    assert stat["median"] == pytest.approx(statistics.median(busy))


def test_fleet_rules_are_judged_on_the_merged_fleet(reports: tuple[Path, Path, Path]) -> None:
    a, b, tmp = reports
    rule = tmp / "fleet.yaml"
    rule.write_text(FLEET_RULE)
    code, doc, err = _merge(a, b, "-r", rule)
    assert err == ""
    busiest = max(h["metrics"]["cpu.busy_pct"] for h in doc["hosts"])
    assert [(f["rule"], f["message"]) for f in doc["fleet"]["findings"]] == [
        ("fleet-busiest", f"busiest {round(busiest, 3)}")
    ]
    # The fleet warning makes it at least 1; this machine's hosts may add worse.
    summary = doc["summary"]
    assert code == (2 if summary["critical"] else 3 if summary["unknown"] else 1)


def test_no_rules_means_no_finding_and_host_rules_given_are_named(
    reports: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """--no-rules kept each host's findings from its run (exit 2 on the shipped rules'),
    and a host-scope rule given with -r was silently not judged."""
    paris, lyon, _ = reports
    code, doc, _ = _merge(paris, lyon, "--no-rules")
    assert all(h["findings"] == [] for h in doc["hosts"])
    assert code == (0 if all(h["status"] == "ok" for h in doc["hosts"]) else 3)
    rules = tmp_path / "mine.yaml"
    rules.write_text(
        "- hosts: all\n  rules:\n    - name: above-mean\n"
        '      expr: "cpu.busy_pct > fleet.cpu.busy_pct.mean"\n      severity: warning\n'
    )
    _, doc, _ = _merge(paris, lyon, "-r", rules)
    assert (
        "merge judges fleet-scope rules (and guest-scope ones on the pairs it makes) only,"
        " not the -r files' 1 of other scopes"
        " (above-mean): each host keeps the findings of its own run's rules"
    ) in doc["notes"]


def test_merged_hosts_count_the_checks_their_runs_passed(
    reports: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The JSON lists only what is not OK: a merge had no passes to count, and its JUnit said
    "collected, 0 checks passed" where the site's run said 108, its HTML none at all."""
    paris, lyon, _ = reports
    sites = {h["name"]: h for p in (paris, lyon) for h in json.loads(p.read_text())["hosts"]}
    assert any(h["checks_passed"] > 0 for h in sites.values())
    junit = tmp_path / "m.xml"
    _, doc, _ = _merge(paris, lyon, "--junit", junit)
    for h in doc["hosts"]:
        assert h["checks_passed"] == sites[h["name"]]["checks_passed"], h["name"]
    cases = {c.get("name") for c in ET.parse(junit).iter("testcase")}
    for h in doc["hosts"]:
        if h["status"] == "ok":
            n = h["checks_passed"]
            assert f"collected, {n} check{'s' * (n != 1)} passed" in cases


def test_a_merge_of_no_host_is_unknown_as_a_run_of_none(tmp_path: Path) -> None:
    """A run over no host exits 3 (nothing was looked at); a merge of reports of no host
    said OK."""
    empty = tmp_path / "empty.json"
    empty.write_text(_HEAD)
    res = fleetmon("merge", empty, "--format", "nagios")
    assert res.returncode == 3, res.stderr
    assert res.stdout.startswith("FLEETMON UNKNOWN - 0 hosts")


def test_a_collected_host_wins_over_a_failed_one(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("h1 ansible_connection=local\n")
    ok = _run(tmp_path, inv, "h1", "ok.json")
    doc = json.loads(ok.read_text())
    failed = dict(doc, started_at="2099-01-01T00:00:00Z")
    failed["hosts"] = [dict(doc["hosts"][0], status="shard_failed", error="shard any/1of1: x")]
    bad = tmp_path / "failed.json"
    bad.write_text(json.dumps(failed))
    _, merged, _ = _merge(bad, ok)
    assert [(h["name"], h["status"]) for h in merged["hosts"]] == [("h1", "ok")]


_HEAD = (
    '{"schema": "fleetmon.report/1", "started_at": "2026-11-26T03:00:00Z", "interval_s": 1,'
    ' "inventory": "i", "limit": null, "hosts": []}'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{\n  "schema": 1,\n',
            "{f}:3: not JSON: Expecting property name enclosed in double quotes",
        ),
        ('{"schema": "other/1"}', "{f}: not a fleetmon JSON report (schema fleetmon.report/1)"),
        (
            '{"schema": "fleetmon.report/1", "started_at": "2026-11-26T03:00:00Z", "interval_s": 1,'
            ' "inventory": "i", "limit": null, "hosts": [{"name": "h", "status": "fine"}]}',
            "{f}: hosts[0].status: unknown status 'fine'",
        ),
        (
            '{"schema": "fleetmon.report/1", "started_at": "2026-11-26T03:00:00Z", "interval_s": 1,'
            ' "inventory": "i", "limit": null, "hosts": [{"name": 3}]}',
            "{f}: hosts[0].status: missing",
        ),
        (
            '{"schema": "fleetmon.report/1", "started_at": "2026-11-26T03:00:00Z", "interval_s": 1,'
            ' "inventory": "i", "limit": null, "hosts": [{"name": "h", "address": "h",'
            ' "groups": [], "status": "ok", "error": null, "hypervisor": "none",'
            ' "findings": [{"rule": "r", "severity": "warning", "scope": "host",'
            ' "subject": "h", "message": "m", "new": "yes"}]}]}',
            "{f}: hosts[0].findings[0].new: expected true or false, got 'yes'",
        ),
        # Numbers and times no report of ours has: NaN crashed the JSON output (exit 70,
        # after the HTML was written), a started_at of any text won the deduplication.
        (
            _HEAD.replace('"interval_s": 1', '"interval_s": NaN'),
            "{f}: not a fleetmon report: NaN is not a JSON number",
        ),
        (
            _HEAD.replace('"interval_s": 1', '"interval_s": 1e400'),
            "{f}: not a fleetmon report: 1e400 is past the largest number",
        ),
        (
            _HEAD.replace('"interval_s": 1', '"interval_s": -5'),
            "{f}: interval_s: expected a positive number of seconds, got -5",
        ),
        (
            _HEAD.replace("2026-11-26T03:00:00Z", "not a date"),
            "{f}: started_at: expected a UTC time such as 2026-11-26T03:00:00Z, got 'not a date'",
        ),
        ("[" * 100_000 + "]" * 100_000, "{f}: not a fleetmon report: nested too deeply"),
    ],
)
def test_a_bad_report_is_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(text)
    res = fleetmon("merge", f, "--html", tmp_path / "m.html", "--format", "json")
    assert res.returncode == 4
    assert res.stderr == f"fleetmon: error: {message.format(f=f)}\n"
    assert res.stdout == ""
    assert not (tmp_path / "m.html").exists()  # nothing half-written


def test_an_output_over_a_report_read_is_refused(reports: tuple[Path, Path, Path]) -> None:
    """`merge a.json b.json -o a.json` would have replaced a site's report with the merged
    text: refused before anything is read, every input left as it was."""
    a, b, tmp = reports
    before = a.read_bytes(), b.read_bytes()
    link = tmp / "link.json"
    link.unlink(missing_ok=True)
    link.symlink_to(a)
    for option, out in (("-o", a), ("--json", b), ("--html", link)):
        res = fleetmon("merge", a, b, option, out)
        assert (res.returncode, res.stdout) == (4, ""), res.stderr
        assert res.stderr.startswith(f"fleetmon: error: {option} {out} would write over "), (
            res.stderr
        )
    assert (a.read_bytes(), b.read_bytes()) == before
    res = fleetmon("merge", a, b, "-o", tmp / "merged.txt")  # another file: written
    assert res.returncode in (0, 1, 2, 3), res.stderr
    assert (tmp / "merged.txt").read_text().startswith("fleetmon ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--push", "ftp://pg"), "--push: expected an http:// or https:// URL, got 'ftp://pg/'"),
        (("--influx-url", ""), "--influx-url: expected an http:// or https:// URL, got ''"),
        (("--alertmanager", "am"), "--alertmanager: expected an http:// or https:// URL"),
        (("--alert-ttl", "never"), "--alert-ttl: expected a duration such as"),
        (("--prom-textfile", "merged.txt"), "--prom-textfile: node_exporter's textfile"),
    ],
)
def test_bad_export_options_stop_a_merge_before_it_reads(
    reports: tuple[Path, Path, Path], args: tuple[str, ...], message: str
) -> None:
    """merge took the export options and did nothing with them: not checked (exit 0, a
    `merged.txt` textfile written), never sent."""
    a, b, tmp = reports
    out = tmp / "refused.txt"
    res = fleetmon("merge", a, b, "-o", out, *args)
    assert res.returncode == 4
    assert res.stderr.startswith(f"fleetmon: error: {message}"), res.stderr
    assert res.stderr.count("\n") == 1
    assert not out.exists()


def test_merge_sends_the_exports_as_run_does(
    reports: tuple[Path, Path, Path], capture: tuple[str, Seen]
) -> None:
    """`merge --push/--influx-url/--alertmanager` sent nothing and said nothing (exit 0)."""
    a, b, tmp = reports
    url, seen = capture
    prom = tmp / "merged.prom"
    res = fleetmon("merge", a, b, "-o", tmp / "merged.txt", "--prom-textfile", prom,
                   "--push", url, "--influx-url", f"{url}/write?db=x",
                   "--alertmanager", f"{url}/am")  # fmt: skip
    assert res.returncode in (0, 1, 2, 3), res.stderr
    inventory = json.loads(a.read_text())["inventory"]
    group = base64.urlsafe_b64encode(os.path.realpath(inventory).encode()).decode()
    assert seen == [
        ("PUT", f"/metrics/job/fleetmon/inventory@base64/{group}"),  # no limit: the whole
        ("POST", "/write?db=x&precision=ns"),
        ("POST", "/am/api/v2/alerts"),
    ]
    assert prom.read_text().startswith("# HELP ")
    seen.clear()
    dead = fleetmon("merge", a, b, "-o", tmp / "merged2.txt", "--export-retries", "0",
                    "--push", "http://127.0.0.1:9", "--alertmanager", url)  # fmt: skip
    assert dead.returncode == 4
    assert dead.stderr.startswith("fleetmon: error: Pushgateway http://127.0.0.1:9/metrics/")
    assert seen == [("POST", "/api/v2/alerts")]  # the other sink is still sent to
    assert (tmp / "merged2.txt").exists()


def test_the_merged_rule_files_are_the_inputs_too(reports: tuple[Path, Path, Path]) -> None:
    """Each host keeps its run's findings, history.yaml's included: the header names the
    files those runs loaded, not only the merge's own (which keeps no history)."""
    a, b, tmp = reports
    doc = json.loads(a.read_text())
    history = doc["rule_files"][0].replace("linux-host.yaml", "history.yaml")
    doc["rule_files"] = [*doc["rule_files"], history]
    with_history = tmp / "with-history.json"
    with_history.write_text(json.dumps(doc))
    _, merged, err = _merge(with_history, b)
    assert err == ""
    assert merged["rule_files"] == doc["rule_files"]
    _, merged, _ = _merge(with_history, b, "--no-rules")
    assert merged["rule_files"] == []  # no finding kept, no file named
