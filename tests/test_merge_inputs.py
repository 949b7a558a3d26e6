"""`fleetmon merge`: what a site's JSON report carries through a merge (its host-key warnings,
each host's sample time), how its file is read (a symlink, a pipe), and inputs no run of
ours writes (figures near a double's largest), each a report or one line, never exit 70."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clirun import ROOT, fleetmon

FORMATS = ("text", "json", "html", "nagios", "prometheus", "openmetrics", "influx")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON report of a run of this machine (local connection)."""
    tmp = tmp_path_factory.mktemp("site")
    inv = tmp / "hosts.ini"
    inv.write_text("h1 ansible_connection=local\n")
    out = tmp / "site.json"
    r = fleetmon(
        "run", inv, "-q", "--history", "none", "--interval", "0.2", "--format", "json", "-o", out
    )
    assert r.returncode in (0, 1, 2, 3), r.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _host(doc: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    return dict(copy.deepcopy(doc["hosts"][0]), name=name, **changes)


def test_a_hosts_sample_time_and_collection_time_go_through_the_json_report(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """Influx stamps a host's points with its own sample time; after a merge every host had
    the earliest report's start (a stale site's time over the others' points)."""
    h = site["hosts"][0]
    assert len(h["sampled_at"]) == len("2026-11-26T05:00:01.250000123Z")
    assert h["collection_s"] > 0
    late = dict(site, started_at="2026-11-26T05:00:00Z")
    late["hosts"] = [_host(site, "h2", sampled_at="2026-11-26T05:00:01.250000123Z")]
    old = dict(site, started_at="2026-11-26T03:00:00Z")  # a report of a fleetmon before the key
    old["hosts"] = [{k: v for k, v in _host(site, "h3").items() if k != "sampled_at"}]
    files = [_write(tmp_path / f"{n}.json", d) for n, d in (("a", site), ("b", late), ("c", old))]
    r = fleetmon("merge", *files, "--format", "influx")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    up = {
        line.split(",host=")[1].split(",")[0]: line.rsplit(" ", 1)[1]
        for line in r.stdout.splitlines()
        if line.startswith("fleetmon_host_up,")
    }
    start_c = 1_795_662_000  # 2026-11-26T03:00:00Z, the earliest start: the merged run's
    assert up == {
        "h1": str(_ns(h["sampled_at"])),
        "h2": str((start_c + 7200) * 10**9 + 1_250_000_123),
        "h3": str(start_c * 10**9),  # no sample time: its own report's start
    }
    assert f"collection_seconds={h['collection_s']!r}" in r.stdout
    merged = json.loads(fleetmon("merge", files[0], "--format", "json").stdout)
    assert (merged["hosts"][0]["sampled_at"], merged["hosts"][0]["collection_s"]) == (
        h["sampled_at"],
        h["collection_s"],
    )


def test_the_worker_that_collected_a_host_goes_through_a_merge(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """A cluster run's host rows name their worker (`collected_by`); a merge of the sites'
    reports keeps it, and a report before the key (or a local run's null) reads as none."""
    assert site["hosts"][0]["collected_by"] is None  # a local run
    by = "tcp://127.0.0.1:40213 (paris-1 on node7)"
    doc = dict(site, hosts=[_host(site, "h1", collected_by=by)])
    old = dict(site, hosts=[{k: v for k, v in _host(site, "h2").items() if k != "collected_by"}])
    files = [_write(tmp_path / "a.json", doc), _write(tmp_path / "b.json", old)]
    r = fleetmon("merge", *files, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    merged = {h["name"]: h["collected_by"] for h in json.loads(r.stdout)["hosts"]}
    assert merged == {"h1": by, "h2": None}


def _ns(text: str) -> int:
    from fleetmon.model.times import ns_of

    return ns_of(text)


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("sampled_at", "2026-11-26T05:00:01Z", "expected a UTC time such as"),
        ("collection_s", -1, "expected seconds or null, got -1"),
        ("collection_s", True, "expected seconds or null, got True"),
        ("collected_by", 7, "expected a string or null, got 7"),
    ],
)
def test_a_bad_sample_or_collection_time_is_one_line(
    site: dict[str, Any], tmp_path: Path, key: str, value: object, said: str
) -> None:
    doc = dict(site, hosts=[_host(site, "h1", **{key: value})])
    f = _write(tmp_path / "bad.json", doc)
    r = fleetmon("merge", f)
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr.startswith(f"fleetmon: error: {f}: hosts[0].{key}: {said}")


def test_a_hosts_site_goes_through_the_json_report(tmp_path: Path) -> None:
    """A site's report names each host's `fleetmon_site`, and a merge of the sites' reports
    exports it as the runs did: the dashboards' site selector keeps working after a merge."""
    inv = tmp_path / "hosts.ini"
    inv.write_text("h1 ansible_connection=local fleetmon_site=paris\n")
    out = tmp_path / "paris.json"
    r = fleetmon("run", inv, "-q", "--history", "none", "--interval", "0.2",
                 "--format", "json", "-o", out)  # fmt: skip
    assert r.returncode in (0, 1, 2, 3), r.stderr
    doc = json.loads(out.read_text())
    assert doc["hosts"][0]["site"] == "paris"
    other = dict(doc, hosts=[_host(doc, "h2", site=None)])  # a host without a site
    m = fleetmon("merge", out, _write(tmp_path / "none.json", other), "--format", "prometheus")
    assert m.returncode in (0, 1, 2, 3), m.stderr
    up = [line for line in m.stdout.splitlines() if line.startswith("fleetmon_host_up{")]
    assert len(up) == 2
    assert 'host="h1",' in up[0]
    assert 'site="paris"' in up[0]
    assert 'host="h2",' in up[1]
    assert "site=" not in up[1]
    merged = json.loads(fleetmon("merge", out, "--format", "json").stdout)
    assert merged["hosts"][0]["site"] == "paris"


@pytest.mark.parametrize(
    ("value", "said"),
    [("paris lyon", "expected a site name of letters"), (7, "expected a site name of letters")],
)
def test_a_bad_site_is_one_line(
    site: dict[str, Any], tmp_path: Path, value: object, said: str
) -> None:
    f = _write(tmp_path / "bad.json", dict(site, hosts=[_host(site, "h1", site=value)]))
    r = fleetmon("merge", f)
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr.startswith(f"fleetmon: error: {f}: hosts[0].site: {said}")
    assert len(r.stderr.splitlines()) == 1


def test_each_reports_host_key_warnings_are_kept_naming_it(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """The only security warning a report carries was dropped by the merge."""
    paris = _write(
        tmp_path / "paris.json",
        dict(site, host_key_notes=["host key checking OFF for 1 host(s): h1"]),
    )
    lyon = _write(tmp_path / "lyon.json", dict(site, hosts=[_host(site, "h2")]))
    r = fleetmon("merge", paris, lyon, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    note = f"{paris}: host key checking OFF for 1 host(s): h1"
    assert json.loads(r.stdout)["host_key_notes"] == [note]
    r = fleetmon("merge", paris, lyon)
    assert f"WARNING: {note}" in r.stdout.splitlines()
    bad = _write(tmp_path / "bad.json", dict(site, host_key_notes="off"))
    r = fleetmon("merge", bad)
    assert (r.returncode, r.stderr) == (
        4,
        f"fleetmon: error: {bad}: host_key_notes: expected a list of strings\n",
    )


def test_a_report_an_hour_older_than_the_latest_is_named(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """A site whose cron stopped: its day-old report was merged as if current, its hosts'
    figures and findings shown beside the others' with no word of their age."""
    now = _write(tmp_path / "lyon.json", dict(site, started_at="2026-11-26T05:00:00Z"))
    hour = _write(
        tmp_path / "nyc.json",
        dict(site, started_at="2026-11-26T04:00:00Z", hosts=[_host(site, "h2")]),
    )
    day = _write(
        tmp_path / "paris.json",
        dict(site, started_at="2026-11-25T04:30:00Z", hosts=[_host(site, "h3")]),
    )
    note = (
        f"{day} started 24.5 h before the latest report ({now}, 2026-11-26T05:00:00Z):"
        " the figures and findings of the 1 host(s) taken from it are that old"
    )
    r = fleetmon("merge", day, hour, now, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    notes = json.loads(r.stdout)["notes"]
    assert [n for n in notes if "before the latest report" in n] == [note]  # nyc's hour is not
    assert f"note: {note}" in fleetmon("merge", now, hour, day).stdout.splitlines()
    r = fleetmon("merge", now, hour, "--format", "json")
    assert not [n for n in json.loads(r.stdout)["notes"] if "before the latest" in n]
    # its hosts all taken from the newer reports: nothing of it is shown, nothing said
    r = fleetmon("merge", day, _write(tmp_path / "h3.json", dict(site, hosts=[_host(site, "h3")])))
    assert "before the latest" not in r.stdout, r.stdout


def test_reports_of_other_fleetmon_versions_are_named(site: dict[str, Any], tmp_path: Path) -> None:
    """A fleet mid-upgrade: a report of another fleetmon (its findings judged by that
    fleetmon's rules) was merged under this one's version with no word of it."""
    ours = site["fleetmon_version"]
    paris = _write(tmp_path / "paris.json", site)
    nyc = _write(
        tmp_path / "nyc.json", dict(site, fleetmon_version="9.9", hosts=[_host(site, "h2")])
    )
    r = fleetmon("merge", paris, nyc, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert (
        f"the reports come from other fleetmon versions than this merge's ({ours}):"
        f" fleetmon {ours}: {paris}; fleetmon 9.9: {nyc};"
        " each host keeps the findings its own run's fleetmon gave it"
    ) in json.loads(r.stdout)["notes"]
    r = fleetmon("merge", paris, "--format", "json")
    assert not [n for n in json.loads(r.stdout)["notes"] if "fleetmon versions" in n]
    bad = _write(tmp_path / "bad.json", dict(site, fleetmon_version=1))
    r = fleetmon("merge", bad)
    assert (r.returncode, r.stderr) == (
        4,
        f"fleetmon: error: {bad}: fleetmon_version: expected a string or null, got 1\n",
    )


def test_figures_near_a_doubles_largest_give_every_output(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """Two hosts at 1e308 overflowed the fleet statistics (fsum, the median's sum: exit 70
    in text, JSON and HTML); 10**400, an integer past any double, is one line."""
    big = 1.7976931348623157e308
    hosts = []
    for i, value in enumerate((big, big, -big, 1e308, 3.0)):
        h = _host(site, f"h{i}")
        h["metrics"] = {**h["metrics"], "cpu.user_pct": value, "cpu.busy_pct": value}
        hosts.append(h)
    f = _write(tmp_path / "huge.json", dict(site, hosts=hosts))
    for fmt in FORMATS:
        r = fleetmon("merge", f, "--format", fmt, "--junit", tmp_path / "j.xml")
        assert r.returncode in (0, 1, 2, 3), (fmt, r.stderr)
        assert r.stderr == "", fmt
        if fmt == "json":
            stat = json.loads(r.stdout)["fleet"]["metrics"]["cpu.user_pct"]
            assert (stat["min"], stat["max"]) == (-big, big)
            assert all(math.isfinite(stat[k]) for k in ("median", "p95", "mean", "stddev"))
            assert stat["median"] == 1e308
    hosts[0]["metrics"]["cpu.user_pct"] = 10**400
    _write(f, dict(site, hosts=hosts))
    r = fleetmon("merge", f)
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == (
        f"fleetmon: error: {f}: hosts[0].metrics.cpu.user_pct: an integer of 401 digits is "
        "past the largest number\n"
    )


def test_junit_passes_all_is_refused_for_a_merge_before_anything_is_written(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """A JSON report counts a host's passes but does not list them: `all` gave fewer cases
    than `summary` (no pass at all), as if none had passed."""
    f = _write(tmp_path / "site.json", site)
    junit, html = tmp_path / "m.xml", tmp_path / "m.html"
    r = fleetmon("merge", f, "--junit", junit, "--junit-passes", "all", "--html", html)
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == (
        "fleetmon: error: --junit-passes all: a JSON report counts each host's passed checks"
        " but does not list them, so merge cannot give a case for each: use summary (the"
        " default) or none\n"
    )
    assert not junit.exists()
    assert not html.exists()
    r = fleetmon("merge", f, "--junit", junit, "--junit-passes", "summary")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert "checks passed" in junit.read_text()


def test_a_report_is_read_through_a_symlink_or_a_pipe(site: dict[str, Any], tmp_path: Path) -> None:
    """`latest.json -> 2026-12-01.json` and `merge /dev/stdin` were refused ("is a symlink;
    not followed"), unlike an inventory or a rule file."""
    real = _write(tmp_path / "2026-12-01.json", site)
    latest = tmp_path / "latest.json"
    latest.symlink_to(real.name)
    r = fleetmon("merge", latest, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert [h["name"] for h in json.loads(r.stdout)["hosts"]] == ["h1"]
    piped = subprocess.run(
        [sys.executable, "-m", "fleetmon", "merge", "/dev/stdin", "--format", "json"],
        cwd=ROOT, input=real.read_text(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert piped.returncode == r.returncode, piped.stderr
    assert json.loads(piped.stdout)["hosts"][0]["name"] == "h1"
    r = fleetmon("merge", "-")
    assert (r.returncode, r.stderr) == (
        4,
        "fleetmon: error: -: cannot read: No such file or directory (standard input is"
        " /dev/stdin)\n",
    )
    os.mkfifo(tmp_path / "dev")  # a pipe nobody writes to: empty, not a hang
    r = fleetmon("merge", tmp_path / "dev", timeout=30)
    assert r.returncode == 4
    assert r.stderr == f"fleetmon: error: {tmp_path / 'dev'}:1: not JSON: Expecting value\n"
    r = fleetmon("merge", "/dev/zero")
    assert r.stderr == (
        "fleetmon: error: /dev/zero: a JSON report must be a regular file, not a character device\n"
    )


@pytest.mark.parametrize("value", ["12.5", True])
def test_a_word_or_boolean_for_a_figure_is_one_line(
    site: dict[str, Any], tmp_path: Path, value: object
) -> None:
    """`"cpu.busy_pct": "12.5"` (a report edited, or written by another tool) was merged: the
    host showed 12.5 (or True) while the fleet statistics left it out, exit 2 as if sound."""
    h = _host(site, "h1")
    h["metrics"]["cpu.busy_pct"] = value
    f = _write(tmp_path / "words.json", dict(site, hosts=[h]))
    r = fleetmon("merge", f, "--html", tmp_path / "m.html")
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == (
        f"fleetmon: error: {f}: hosts[0].metrics.cpu.busy_pct: expected a number or null,"
        f" got {value!r}\n"
    )
    assert not (tmp_path / "m.html").exists()
    scope = next(s for s in ("filesystems", "disks", "nics") if site["hosts"][0].get(s))
    h = _host(site, "h1")
    row = h[scope][0]
    metric = next(k for k, v in row["metrics"].items() if isinstance(v, int | float))
    row["metrics"][metric] = value
    r = fleetmon("merge", _write(f, dict(site, hosts=[h])))
    assert (r.returncode, r.stdout) == (4, "")
    assert f": hosts[0].{scope}[0].metrics.{metric}: expected a number or null" in r.stderr


def test_a_vms_state_stays_a_word_through_a_merge(site: dict[str, Any], tmp_path: Path) -> None:
    """vm.state is the one metric that is a word (METRICS.md): a number there is refused."""
    h = _host(site, "h1", hypervisor="kvm")
    vm = {"name": "vm1", "labels": {}, "metrics": {"vm.state": "running", "vm.vcpus": 2}}
    f = _write(tmp_path / "vm.json", dict(site, hosts=[dict(h, vms=[vm])]))
    r = fleetmon("merge", f, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert json.loads(r.stdout)["hosts"][0]["vms"][0]["metrics"]["vm.state"] == "running"
    vm["metrics"]["vm.state"] = 1
    r = fleetmon("merge", _write(f, dict(site, hosts=[dict(h, vms=[vm])])))
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr.endswith(": hosts[0].vms[0].metrics.vm.state: expected a word or null, got 1\n")


@pytest.mark.parametrize("value", ["/etc/fleetmon/site.yaml", ["a.yaml", 3]])
def test_rule_files_not_a_list_of_names_is_one_line(
    site: dict[str, Any], tmp_path: Path, value: object
) -> None:
    """A string for rule_files was taken letter by letter: the merged report named its rule
    files "/", "e", "t", "c"... (header, JSON, HTML); a number in the list was dropped."""
    f = _write(tmp_path / "rf.json", dict(site, rule_files=value))
    r = fleetmon("merge", f, "--format", "json")
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == f"fleetmon: error: {f}: rule_files: expected a list of strings\n"


def test_a_host_not_collected_has_no_sample_time_in_the_merged_json(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """docs/METRICS.md: `sampled_at` is null for a host not collected, as its run's JSON
    says; the merged JSON gave it its report's start, as if sampled then. Influx still
    stamps its fleetmon_host_up with that start, as its run did."""
    down = _host(site, "h2", status="unreachable", error="connect refused", sampled_at=None)
    down["metrics"] = {}
    late = dict(site, started_at="2026-11-26T05:00:00Z", hosts=[down])
    files = [_write(tmp_path / "a.json", site), _write(tmp_path / "b.json", late)]
    r = fleetmon("merge", *files, "--format", "json")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    sampled = {h["name"]: h["sampled_at"] for h in json.loads(r.stdout)["hosts"]}
    assert sampled == {"h1": site["hosts"][0]["sampled_at"], "h2": None}
    r = fleetmon("merge", *files, "--format", "influx")
    up = [line for line in r.stdout.splitlines() if line.startswith("fleetmon_host_up,host=h2")]
    assert [line.rsplit(" ", 1)[1] for line in up] == [str((1_795_662_000 + 7200) * 10**9)]
