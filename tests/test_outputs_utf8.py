"""A name that came as bytes that are not UTF-8 (`fleetmon run "$(printf 'web\\xff1,')"`,
a JSON `"\\udcff"`) is written with its escape, `web\\udcff1`, as the text report shows it:
by the Prometheus, OpenMetrics and InfluxDB writers, the Alertmanager payload and the
history. Before, each ended the run with an internal error (exit 70, UnicodeEncodeError).
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
import reportfactory as rf
from clirun import fleetmon
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from fleetmon.errors import OutputError
from fleetmon.history import History, record_run
from fleetmon.history.forrules import fetch_points, load_counters, load_states, subjects_of
from fleetmon.history.query import entities
from fleetmon.history.write import run_time
from fleetmon.io.atomic import write_output
from fleetmon.model import Report, Severity
from fleetmon.render.alerts import render_alerts
from fleetmon.render.influx import render_influx
from fleetmon.render.prom import ReportCollector, render_prometheus

HOST = "kvm\udcff01"  # what Python makes of the bytes b"kvm\xff01" (surrogateescape)
VM = "vm\udce9"
SHOWN_HOST = "kvm\\udcff01"  # the text report's clean() shows them so
SHOWN_VM = "vm\\udce9"


def _report() -> Report:
    rng = random.Random(3)
    warn = rf.finding("vm-cpu", Severity.WARNING, "vm", VM, "vm.cpu_pct", 41.2, "> 40")
    odd = rf.host(HOST, rng, groups=("kvm", "g\udcff"), vms=[rf.vm(VM, rng)], findings=[warn])
    return rf.report([odd, rf.host("web01", rng, groups=("web",))])


@pytest.mark.parametrize("openmetrics", [False, True])
def test_prometheus_labels_hold_the_escape_and_parse_back(openmetrics: bool) -> None:
    report = _report()
    text = render_prometheus(report, openmetrics=openmetrics, groups=True)
    collector = ReportCollector(lambda: report, groups=True)
    library = (
        om.generate_latest(collector, escaping=om.ALLOWUTF8)
        if openmetrics
        else generate_latest(collector)
    )
    assert text.encode() == library  # both writers, byte for byte, in UTF-8
    families = list((om_parse if openmetrics else text_parse)(text))
    values = {v for f in families for s in f.samples for v in s.labels.values()}
    assert {SHOWN_HOST, SHOWN_VM, ",kvm,g\\udcff,"} <= values


def test_influx_tags_and_fields_hold_the_escape() -> None:
    text = render_influx(_report(), groups=True)
    text.encode()  # no lone surrogate left
    assert f"fleetmon_host_up,groups=\\,kvm\\,g\\udcff\\,,host={SHOWN_HOST},status=ok " in text
    assert f",vm={SHOWN_VM} " in text


def test_alerts_hold_the_escape() -> None:
    body = render_alerts(_report(), None, now_s=1.8e9, ttl_s=900)
    body.encode()
    assert f'"host":"{SHOWN_HOST}"'.replace("\\", "\\\\") in body


def test_the_history_keeps_the_escape_and_finds_the_host_again(hist: History) -> None:
    report = _report()
    t = run_time(report.run.started_at)
    states = {("vm-cpu", "vm", HOST, VM): ("firing", "warning", t, 1, t)}
    record_run(hist, report, states=states)
    assert [(e.host, e.name) for e in entities(hist, "vm", HOST)] == [(SHOWN_HOST, SHOWN_VM)]
    stored = hist.conn.execute("SELECT host, subject FROM rule_states").fetchall()
    assert stored == [(SHOWN_HOST, SHOWN_VM)]
    # Read back under the run's own names: the rules' states, points and counters.
    assert load_states(hist, report.hosts) == {
        ("vm-cpu", "vm", HOST, VM): ("firing", "warning", t, 1, t)
    }
    ids = subjects_of(hist, report.hosts, "host")
    assert sorted(ids.values()) == [("host", HOST, HOST), ("host", "web01", "web01")]
    assert sorted(subjects_of(hist, report.hosts, "vm").values())[0] == ("vm", HOST, VM)
    points = fetch_points(hist, {("cpu.busy_pct", 3600, False)}, report.hosts, t + 60)
    assert ("host", HOST, HOST) in points
    assert load_counters(hist, report.hosts, t + 60) == {}  # the factory keeps no counters


def test_a_text_that_cannot_be_encoded_is_an_output_error(tmp_path: Path) -> None:
    """What a renderer lets through is one OutputError (exit 4), the old file kept."""
    target = tmp_path / "report.txt"
    target.write_text("old\n")
    for path in (target, Path("/dev/null")):
        with pytest.raises(OutputError, match=r"^cannot write .*: text that is not UTF-8 \("):
            write_output(path, iter(["ok ", HOST]))
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]  # no temporary left


@pytest.mark.parametrize("fmt", ["prometheus", "openmetrics", "influx"])
def test_a_run_of_a_host_named_in_bytes_that_are_not_utf8(tmp_path: Path, fmt: str) -> None:
    """The command line's host list: the host fails (its name is no address), the run ends
    as any run with a host not collected (exit 3), its outputs and history written."""
    hist = tmp_path / "h.sqlite"
    out = tmp_path / f"r.{fmt}"
    res = fleetmon(
        "run", "kvm\udcff01,", "--history", hist, "-q", "--connect-timeout", "1",
        "--format", fmt, "-o", out,
    )  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert "internal error" not in res.stderr
    label = f"host={SHOWN_HOST}," if fmt == "influx" else 'host="kvm\\\\udcff01"'
    assert label in out.read_text()
    with sqlite3.connect(hist) as conn:
        assert conn.execute("SELECT DISTINCT host FROM entities").fetchall() == [(SHOWN_HOST,)]


def test_history_show_finds_such_a_host(tmp_path: Path) -> None:
    hist = tmp_path / "h.sqlite"
    res = fleetmon("run", "kvm\udcff01,", "--history", hist, "-q", "--connect-timeout", "1")
    assert res.returncode == 3, res.stderr
    res = fleetmon("history", "show", HOST, "--history", hist)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"{SHOWN_HOST} (host), raw, 1 point(s) since ")
