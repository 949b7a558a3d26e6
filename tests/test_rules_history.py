"""Rules over time: history functions, metric-rule modifiers, fit requirements, states."""

from __future__ import annotations

import dataclasses
import random
import textwrap
from collections.abc import Sequence

import pytest
from reportfactory import host, vm

from fleetmon.errors import RuleError
from fleetmon.model import Finding, FleetStat, HostReport, HostSpec, Row, Severity
from fleetmon.rules import evaluate, parse_rules
from fleetmon.rules.expr import ExprError, compile_expr
from fleetmon.rules.historical import Call, Past, RuleState
from fleetmon.rules.loader import merge
from fleetmon.rules.ruleset import RuleSet, Span

NOW = 1_795_662_000.0


def rules(text: str) -> RuleSet:
    merged: dict[str, object] = {}
    merge(parse_rules(textwrap.dedent(text), "r.yaml"), "r.yaml", merged)  # type: ignore[arg-type]
    return RuleSet(tuple(merged.values()))  # type: ignore[arg-type]


def fs_host(used: float) -> HostReport:
    rng = random.Random(1)
    h = host("kvm01", rng)
    fs = Row("/var", {"fs.used_pct": used, "fs.inodes_used_pct": 1.0, "fs.free_bytes": 10})
    return dataclasses.replace(h, rows={**h.rows, "fs": (fs,)})


def judge(
    rs: RuleSet, hosts: Sequence[HostReport], past: Past | None, states: dict | None = None
) -> list[Finding]:
    specs = {h.name: HostSpec(h.name, "192.0.2.1") for h in hosts}
    out, _ = evaluate(rs, hosts, specs, {}, past=past, states_out=states)
    return [f for h in out for f in h.findings]


def test_expressions_record_their_history_calls() -> None:
    e = compile_expr(
        'deriv(mem.used_pct, "6h", min_r2=0.9) > 0 and avg_over(cpu.busy_pct, "1h") > 5'
    )
    assert e.history == (
        Call("deriv", "mem.used_pct", 21_600),
        Call("avg_over", "cpu.busy_pct", 3600),
    )
    assert compile_expr("time_to(fs.used_pct, 100, '1d') < 3").history == (
        Call("time_to", "fs.used_pct", 86_400),
    )
    assert compile_expr("anomaly(cpu.busy_pct) > 3.5").history[0].hourly


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            'avg_over(cpu.busy, "1h") > 1',
            "avg_over: unknown metric 'cpu.busy' (did you mean 'cpu.busy_pct'?)",
        ),
        ('avg_over(cpu.busy_pct, "1 hour") > 1', "avg_over: expected a duration such as 30s"),
        ("avg_over(cpu.busy_pct, window) > 1", "avg_over: give its arguments as literals"),
        ('deriv(cpu.busy_pct, "1h", min_ppoints=3) > 1', "deriv: unknown argument 'min_ppoints'"),
        ('time_to(fs.used_pct, "90", "1h") > 1', "time_to: the threshold must be a number"),
        ("avg_over(cpu.busy_pct) > 1", "avg_over takes a metric and window"),
        (  # was "unknown metric 'fleet.cpu.busy_pct.max' (did you mean 'fleet.cpu.busy_pct.max'?)"
            'avg_over(fleet.cpu.busy_pct.max, "1h") > 1',
            "avg_over: 'fleet.cpu.busy_pct.max' is a fleet statistic, which the history does"
            " not keep: give the host metric it summarises",
        ),
    ],
)
def test_history_call_errors(source: str, message: str) -> None:
    with pytest.raises(ExprError) as err:
        compile_expr(source)
    assert str(err.value).startswith(message)


def test_rule_keys_for_the_history() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: fill
              metric: fs.used_pct
              apply: time_to(100, "24h")
              min_points: 6
              min_r2: 0.8
              warning: "< 259200"
              for: 3 runs
              keep_firing_for: 30m
        """
    )
    (r,) = rs.rules
    assert r.apply is not None
    assert r.apply.source == 'time_to(fs.used_pct, 100, "24h")'
    assert (r.min_points, r.min_r2) == (6, 0.8)
    assert r.for_ == Span(3, "runs", "3 runs")
    assert r.keep_firing_for == Span(1800, "s", "30m")
    assert rs.needing_history() is r


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("apply: avg(1h)", "r.yaml:5: rule 'x': apply: expected a history function of the metric"),
        ("for: three runs", "r.yaml:5: rule 'x': for: expected a duration such as 30s"),
        ("keep_firing_for: 3 runs", "r.yaml:5: rule 'x': keep_firing_for: expected a duration"),
        ("min_points: 1", "r.yaml:5: rule 'x': min_points: expected a whole number of at least 2"),
        ("min_r2: 2", "r.yaml:5: rule 'x': min_r2: expected a number from 0 to 1, got 2"),
    ],
)
def test_rule_key_errors_name_file_and_line(key: str, message: str) -> None:
    text = "- hosts: all\n  rules:\n    - name: x\n      metric: cpu.busy_pct\n"
    text += f"      {key}\n      warning: '> 1'\n"
    with pytest.raises(RuleError) as err:
        parse_rules(text, "r.yaml")
    assert str(err.value).startswith(message)


def _past(
    points: dict[str, list[tuple[float, float]]], scope: str = "fs", subject: str = "/var"
) -> Past:
    series = {(scope, "kvm01", subject): {(m, "raw"): p for m, p in points.items()}}
    return Past(NOW, series)


#: A filesystem rule over time_to, and its points: 1 an hour, 2 % an hour; this run's value
#: is the newest: 90 % now, full in 5 h.
FILL = """
- hosts: all
  rules:
    - name: fill
      metric: fs.used_pct
      apply: time_to(100, "24h")
      min_points: 4
      warning: "< 259200"
"""
FILL_POINTS = [(NOW - 3600 * k, 90.0 - 2 * k) for k in range(5, 0, -1)]


def test_time_to_applied_to_a_filling_filesystem() -> None:
    rs = rules(FILL + '      message: "{{ subject }} full in {{ value | duration }}"\n')
    pts = FILL_POINTS
    (f,) = judge(rs, [fs_host(90.0)], _past({"fs.used_pct": pts}))
    assert (f.severity, f.subject, f.message) == (Severity.WARNING, "/var", "/var full in 5 h")
    assert f.value == pytest.approx(5 * 3600)


def test_too_few_points_or_no_line_is_ok_with_the_reason() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: fill
              metric: fs.used_pct
              apply: time_to(100, "24h")
              min_points: 6
              min_r2: 0.9
              warning: "< 259200"
        """
    )
    few = [(NOW - 3600.0, 80.0)]
    (f,) = judge(rs, [fs_host(90.0)], _past({"fs.used_pct": few}))
    assert f.severity is Severity.OK
    assert f.message == (
        '/var: time_to(fs.used_pct, 100, "24h"): not judged: 2 fs.used_pct point(s) in 24h, '
        "6 needed for a fit"
    )
    noisy = [
        (NOW - 3600.0 * k, v)
        for k, v in zip(range(8, 0, -1), [50, 80, 40, 90, 30, 95, 20, 99], strict=True)
    ]
    (f,) = judge(rs, [fs_host(10.0)], _past({"fs.used_pct": noisy}))
    assert f.severity is Severity.OK
    assert "is no line (R² 0." in f.message


def test_expressions_over_windows() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: busy-hour
              expr: 'avg_over(cpu.busy_pct, "1h") > 50 and max_over(cpu.busy_pct, "1h") < 100'
              severity: critical
              message: "{{ host }} averaged over 50% for an hour"
        """
    )
    h = host("kvm01", random.Random(2), level=60.0)
    busy = float(h.metrics["cpu.busy_pct"])  # type: ignore[arg-type]
    # The window is (now - 1h, now]: the point an hour ago is out.
    pts = [(NOW - 3600, 0.0), (NOW - 1800, 70.0), (NOW - 600, 80.0)]
    past = Past(NOW, {("host", "kvm01", "kvm01"): {("cpu.busy_pct", "raw"): pts}})
    (f,) = [f for f in judge(rs, [h], past) if f.rule == "busy-hour"]
    expected = Severity.CRITICAL if (70 + 80 + busy) / 3 > 50 else Severity.OK
    assert f.severity is expected


def _steal(value: float | None) -> HostReport:
    h = host("kvm01", random.Random(3))
    return dataclasses.replace(h, metrics={**h.metrics, "cpu.steal_pct": value})


STEAL = """
- hosts: all
  rules:
    - name: steal-3
      metric: cpu.steal_pct
      for: 3 runs
      keep_firing_for: 15m
      warning: "> 10"
"""


def _run(value: float | str | None, t: float, states: dict) -> Finding:
    h = (
        _steal(value)
        if not isinstance(value, str)
        else dataclasses.replace(
            _steal(0.0),
            metrics={k: v for k, v in _steal(0.0).metrics.items() if k != "cpu.steal_pct"},
        )
    )
    out: dict = {}
    past = Past(t, {}, dict(states))
    (f,) = judge(rules(STEAL), [h], past, out)
    for k, v in out.items():
        if v is None:
            states.pop(k, None)
        else:
            states[k] = v
    return f


@pytest.mark.parametrize(
    ("third", "verdict"),
    [
        (None, "unknown"),  # steal null that run: not computable
        ("absent", "ok"),  # steal not offered that run: not judged
    ],
)
def test_for_three_runs_then_firing_then_kept_then_resolved(
    third: float | str | None, verdict: str
) -> None:
    states: dict = {}
    t = NOW
    seen = []
    for value in (20.0, 20.0, third, 20.0, 1.0, 1.0):
        f = _run(value, t, states)
        seen.append((f.severity.value, f.state))
        t += 600
    assert seen == [
        ("ok", "pending"),
        ("ok", "pending"),
        (verdict, "pending"),  # neither advances nor resets the count
        ("warning", "firing"),
        ("warning", "firing"),  # passed, but kept firing for 15 minutes
        ("ok", "resolved"),
    ]


def test_firing_since_the_first_alerting_run() -> None:
    states: dict = {}
    for k in range(3):
        f = _run(20.0, NOW + 600 * k, states)
    assert f.state == "firing"
    assert f.since == "2026-11-26T03:00:00Z"
    assert states[("steal-3", "host", "kvm01", "kvm01")] == RuleState(
        "firing", "warning", int(NOW), 3, int(NOW) + 1200
    )
    assert _run(20.0, NOW + 1800, states).message.startswith("cpu.steal_pct = 20")
    f = _run(20.0, NOW, {})
    assert f.message == "pending (1 of 3 runs): cpu.steal_pct = 20 (warning: > 10)"


ESCALATING = """
- hosts: all
  rules:
    - name: steal
      metric: cpu.steal_pct
      for: 3 runs
      warning: "> 10"
      critical: "> 50"
    - name: steal-critical
      metric: cpu.steal_pct
      for: 3 runs
      critical: "> 50"
"""


def test_one_for_covers_both_levels_a_second_rule_makes_critical_wait() -> None:
    """A rule firing at warning is critical in the first run over its critical threshold
    (as Nagios turns a hard WARNING into a hard CRITICAL at once, since the subject has
    broken the rule for `for:` already); a critical-only rule with its own `for:` waits,
    as a second Prometheus alerting rule would (documented in playbooks/README.md)."""
    states: dict = {}
    seen = []
    for k, value in enumerate((20.0, 20.0, 20.0, 60.0, 60.0, 60.0)):
        out: dict = {}
        both = judge(rules(ESCALATING), [_steal(value)], Past(NOW + 600 * k, {}, dict(states)), out)
        for key, v in out.items():
            if v is None:
                states.pop(key, None)
            else:
                states[key] = v
        seen.append([(f.severity.value, f.state) for f in both])
    assert seen == [
        [("ok", "pending"), ("ok", None)],
        [("ok", "pending"), ("ok", None)],
        [("warning", "firing"), ("ok", None)],
        [("critical", "firing"), ("ok", "pending")],
        [("critical", "firing"), ("ok", "pending")],
        [("critical", "firing"), ("critical", "firing")],
    ]


def test_without_a_history_states_are_not_tracked() -> None:
    f = judge(rules(STEAL), [_steal(20.0)], None)[0]
    assert (f.severity, f.state) == (Severity.WARNING, None)


def test_vm_rows_read_their_own_series() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: leak
              expr: deriv(vm.mem_used_pct, "24h", min_points=3, min_r2=0.9) * 86400 > 10
              scope: vm
              severity: warning
        """
    )
    rng = random.Random(4)
    guest = vm("web-3", rng)
    guest = dataclasses.replace(guest, metrics={**guest.metrics, "vm.mem_used_pct": 80.0})
    h = host("kvm01", rng, vms=[guest])
    rising = [(NOW - 3600.0 * k, 80.0 - k) for k in range(12, 0, -1)]  # +1 point an hour
    (f,) = judge(rs, [h], _past({"vm.mem_used_pct": rising}, "vm", "web-3"))
    assert (f.severity, f.subject) == (Severity.WARNING, "web-3")


def test_the_shipped_history_rules_load_only_with_a_history() -> None:
    from pathlib import Path

    import fleetmon
    from fleetmon.rules import default_rule_files, load_rules

    folder = str(Path(fleetmon.__file__).parent / "playbooks")
    assert default_rule_files(folder)[-1].endswith("containers.yaml")
    files = default_rule_files(folder, history=True)
    assert files[-1].endswith("history.yaml")
    rs = load_rules(files)
    shipped = {r.name: r for r in rs.rules if r.origin.startswith(files[-1])}
    assert sorted(shipped) == [
        "ctr-oom-kills",  # replaces containers.yaml's: kills since the last run
        "ctr-oom-kills-since-start",
        "fs-full-in-3-days",
        "host-steal-sustained",
        "host-unusual-for-the-hour",
        "kvm-vm-mem-rising",
        "kvm-vm-vcpu-delay-sustained",
    ]
    for r in shipped.values():
        assert r.reason
        assert r.source
        assert r.needs_history()


def test_a_call_at_the_root_of_an_expression_is_fetched_too() -> None:
    assert compile_expr('avg_over(cpu.busy_pct, "1h")').history == (
        Call("avg_over", "cpu.busy_pct", 3600),
    )


def test_since_last_run_reads_the_average_over_the_gap() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: busy-gap
              expr: since_last_run(cpu.busy_pct) > 80 and cpu.busy_pct < 50
              severity: warning
              message: "busy on average since the last run though idle now"
        """
    )
    h = host("kvm01", random.Random(5), level=10.0)
    gaps = {("host", "kvm01", "kvm01"): {"cpu.busy_pct": 95.0}}
    (f,) = [f for f in judge(rs, [h], Past(NOW, {}, {}, gaps)) if f.rule == "busy-gap"]
    assert f.severity is Severity.WARNING
    (f,) = [f for f in judge(rs, [h], Past(NOW)) if f.rule == "busy-gap"]
    assert f.severity is Severity.OK
    assert f.message.endswith("no cpu.busy_pct average since the last run (first run, or a reboot)")


def test_has_since_last_run_says_whether_there_is_a_figure() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: oom-new
              metric: ctr.oom_kills
              apply: since_last_run()
              warning: "> 0"
              message: "{{ value | int }} since the last run"
            - name: oom-since-start
              expr: not has_since_last_run(ctr.oom_kills) and ctr.oom_kills > 0
              scope: ctr
              severity: warning
        """
    )
    h = host("kvm01", random.Random(5), level=10.0)
    rows = (Row("api", {"ctr.oom_kills": 3}), Row("db", {"ctr.oom_kills": 1}))
    h = dataclasses.replace(h, rows={**h.rows, "ctr": rows})
    gaps = {("ctr", "kvm01", "api"): {"ctr.oom_kills": 1}, ("ctr", "kvm01", "db"): {}}
    found = {(f.rule, f.subject): f for f in judge(rs, [h], Past(NOW, {}, {}, gaps))}
    assert found["oom-new", "api"].severity is Severity.WARNING
    assert found["oom-new", "api"].message == "1 since the last run"
    assert found["oom-since-start", "api"].severity is Severity.OK
    assert found["oom-new", "db"].severity is Severity.OK
    assert found["oom-new", "db"].message.endswith(
        "no ctr.oom_kills average since the last run (first run, or a reboot)"
    )
    assert found["oom-since-start", "db"].severity is Severity.WARNING
    gaps["ctr", "kvm01", "db"] = {"ctr.oom_kills": None}  # its count went down: a restart
    found = {(f.rule, f.subject): f for f in judge(rs, [h], Past(NOW, {}, {}, gaps))}
    assert found["oom-new", "db"].message.endswith(
        "no ctr.oom_kills since the last run: the container restarted since"
    )
    assert found["oom-since-start", "db"].severity is Severity.WARNING


def test_has_since_last_run_is_no_value_to_apply() -> None:
    text = "- hosts: all\n  rules:\n    - name: x\n      metric: ctr.oom_kills\n"
    text += "      apply: has_since_last_run()\n      warning: '> 0'\n"
    with pytest.raises(RuleError) as err:
        parse_rules(text, "r.yaml")
    assert str(err.value) == (
        "r.yaml:5: rule 'x': apply: expected a history function of the metric (anomaly,"
        " avg_over, change, change_pct, deriv, max_over, min_over, p95_over, predict_linear,"
        " since_last_run, stddev_over, time_to), got 'has_since_last_run()'"
    )


def test_anomaly_against_the_same_hour_of_past_weeks() -> None:
    rs = rules(
        """
        - hosts: all
          rules:
            - name: unusual
              expr: anomaly(cpu.busy_pct, 4) > 3.5
              severity: warning
        """
    )
    h = host("kvm01", random.Random(6), level=50.0)
    busy = float(h.metrics["cpu.busy_pct"])  # type: ignore[arg-type]
    week, hour = 7 * 86_400, NOW // 3600 * 3600
    usual = [
        (hour - k * week, v) for k, v in zip(range(1, 5), [10.0, 12.0, 11.0, 13.0], strict=True)
    ]
    other_hours = [(hour - k * week + 3600, busy) for k in range(1, 5)]  # not this hour
    past = Past(
        NOW, {("host", "kvm01", "kvm01"): {("cpu.busy_pct", "hourly"): usual + other_hours}}
    )
    (f,) = [f for f in judge(rs, [h], past) if f.rule == "unusual"]
    assert f.severity is (Severity.WARNING if busy > 11.5 + 3.5 * 1.4826 else Severity.OK)
    few = Past(NOW, {("host", "kvm01", "kvm01"): {("cpu.busy_pct", "hourly"): usual[:2]}})
    (f,) = [f for f in judge(rs, [h], few) if f.rule == "unusual"]
    assert f.severity is Severity.OK
    assert f.message.endswith("cpu.busy_pct: 2 week(s) of this hour recorded, 3 needed")


FLEET = """
- hosts: all
  rules:
    - name: fleet-busy-2
      metric: fleet.cpu.busy_pct.p95
      for: 2 runs
      keep_firing_for: 15m
      warning: "> 80"
"""


def test_fleet_rules_keep_states_across_runs_too() -> None:
    """`for:` and `keep_firing_for:` of a fleet-scope rule: it fired on its first run, with
    no state kept, though `--history none` refuses it as needing the history."""
    states: dict = {}
    seen = []
    t = NOW
    for p95 in (85.0, 85.0, 85.0, 10.0, 10.0):
        stat = FleetStat(count=3, min=1.0, median=20.0, p95=p95, max=90.0, mean=30.0, stddev=5.0)
        out: dict = {}
        _, fleet = evaluate(
            rules(FLEET), [_steal(1.0)], {}, {"cpu.busy_pct": stat},
            past=Past(t, {}, dict(states)), states_out=out,
        )  # fmt: skip
        (f,) = fleet
        seen.append((f.severity.value, f.state, f.new))
        for k, v in out.items():
            if v is None:
                states.pop(k, None)
            else:
                states[k] = v
        if len(seen) == 2:
            assert states == {
                ("fleet-busy-2", "fleet", "fleet", "fleet.cpu.busy_pct.p95"): RuleState(
                    "firing", "warning", int(NOW), 2, int(NOW) + 600
                )
            }
        t += 600
    assert seen == [
        ("ok", "pending", False),
        ("warning", "firing", True),
        ("warning", "firing", False),
        ("warning", "firing", False),  # passed, but kept firing for 15 minutes
        ("ok", "resolved", False),
    ]
    assert states == {}


def test_recorded_state_is_its_fields_in_order() -> None:
    """The tuple a run records for a RuleState (cli.recording, as save_states writes it) is
    dataclasses.astuple's: each field, in the dataclass's order, whatever is added to it."""
    from fleetmon.cli.recording import _STATE_FIELDS

    state = RuleState("pending", "warning", 1_790_000_000, 2, 1_790_000_600)
    assert _STATE_FIELDS(state) == dataclasses.astuple(state)
    assert _STATE_FIELDS(state) == ("pending", "warning", 1_790_000_000, 2, 1_790_000_600)
    assert len(_STATE_FIELDS(state)) == len(dataclasses.fields(RuleState))


def test_an_applied_functions_value_is_shown_in_its_own_unit() -> None:
    """time_to of a filesystem's used % is seconds: the HTML showed 18000 s as "18000.0%"
    (the metric's unit); the JSON and JUnit said metric fs.used_pct, value 18000, with
    nothing saying the value was another function's. Now each names the expression judged,
    and the HTML cell is a duration; a merge keeps it."""
    import json

    from reportfactory import report as make_report

    from fleetmon.analyse.merge import finding_from_json
    from fleetmon.render.html import render_html
    from fleetmon.render.json import render_json
    from fleetmon.render.junit import render_junit

    rs, pts = rules(FILL), FILL_POINTS
    specs = {"kvm01": HostSpec("kvm01", "192.0.2.1")}
    hosts, _ = evaluate(rs, [fs_host(90.0)], specs, {}, past=_past({"fs.used_pct": pts}))
    (f,) = [f for f in hosts[0].findings if f.rule == "fill"]
    assert f.apply == 'time_to(fs.used_pct, 100, "24h")'
    report = make_report(hosts)
    html = render_html(report)
    assert "<td data-l=value>5 h<td data-l=threshold>&lt; 259200" in html
    assert "18000.0%" not in html
    doc = json.loads(render_json(report))
    (got,) = [g for g in doc["hosts"][0]["findings"] if g["rule"] == "fill"]
    assert (got["metric"], got["apply"]) == ("fs.used_pct", 'time_to(fs.used_pct, 100, "24h")')
    assert finding_from_json(got, "hosts[0].findings[0].").apply == f.apply
    assert 'apply: time_to(fs.used_pct, 100, "24h")\nvalue: 18000' in render_junit(
        report, fail_on="warning"
    ).replace("&quot;", '"')


def test_a_time_a_second_under_a_day_is_not_printed_as_a_day() -> None:
    """86,399 s under `critical: < 86400` is `23.9997 h`: `24 h` would not read as past it."""
    rs = rules(
        FILL.replace('"< 259200"', '"< 259200"\n      critical: "< 86400"')
        + '      message: "{{ subject }} full in {{ value | duration }}"\n'
    )
    # 90 % now, 10 % left at 10/86399 % a second: 86,399 s to full.
    rate = 10.0 / 86_399
    pts = [(NOW - 3600 * k, 90.0 - rate * 3600 * k) for k in range(5, 0, -1)]
    (f,) = judge(rs, [fs_host(90.0)], _past({"fs.used_pct": pts}))
    assert f.severity is Severity.CRITICAL
    assert f.value == pytest.approx(86_399, abs=0.01)
    assert f.message == "/var full in 23.9997 h"
