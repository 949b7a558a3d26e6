"""Rows judged without their context (Judge.judge_rows): the findings judge() gives, in the
same order, for every kind of value a row can hold, with the shipped container rules and
rules the quick way must leave to judge()."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from test_rules_util import host, spec

from fleetmon.model import Finding, HostReport, Row
from fleetmon.rules import RuleSet, evaluate, load_rules
from fleetmon.rules.historical import Past
from fleetmon.rules.judge import Judge

PLAYBOOKS = Path(__file__).parent.parent / "fleetmon" / "playbooks"

#: Rules the quick way must not take (another `when:`, a range), takes in part (no `when:`:
#: a null is UNKNOWN, left to judge(); a play's `when:`: once it held for the host), beside
#: one it takes (`when: <metric> is not none`, spaced oddly).
OTHERS = """\
- name: others
  hosts: all
  rules:
    - name: no-when
      metric: ctr.mem_limit_pct
      warning: "> 90"
    - name: other-when
      metric: ctr.cpu_pct
      when: "ctr.pids > 1"
      warning: "> 50"
    - name: nagios-range
      metric: ctr.pids
      when: "ctr.pids is not none"
      warning: "10:40"
    - name: spaced
      metric: ctr.cpu_pct
      when: " ctr.cpu_pct  is not none "
      warning: ">= 50"
      critical: "> 80"
- name: a play for kvm hosts
  hosts: all
  when: "hypervisor == 'kvm'"
  rules:
    - name: played
      metric: ctr.oom_kills
      when: "ctr.oom_kills is not none"
      warning: "> 0"
"""

VALUES: list[object] = [
    None, 0, 1, 7, 50, 50.0, 79.99, 80.0, 80.5, 91.0, 99.5, 1e400, -1e400, math.nan,
    True, False, "high", 2**70, -3,
]  # fmt: skip
METRICS = ("ctr.mem_limit_pct", "ctr.cpu_throttled_pct", "ctr.oom_kills", "ctr.cpu_pct",
           "ctr.pids")  # fmt: skip


def _rows() -> tuple[Row, ...]:
    rows = []
    for i, v in enumerate(VALUES):
        for j, m in enumerate(METRICS):
            metrics = {k: VALUES[(i + 3 * n) % len(VALUES)] for n, k in enumerate(METRICS)}
            metrics[m] = v
            rows.append(Row(f"c{i}-{j}", metrics, {"runtime": "docker", "id": f"{i:064x}"}))
    rows.append(Row("bare", {}, {}))  # a row without the metrics
    return tuple(rows)


def _findings(rs: RuleSet, hosts: list[HostReport]) -> list[list[Finding]]:
    specs = {h.name: spec(h.name, h.groups) for h in hosts}
    out, _ = evaluate(rs, hosts, specs, {})
    return [list(h.findings) for h in out]


@pytest.mark.parametrize("hypervisor", ["kvm", "none"])
def test_rows_judged_quickly_as_judge_judges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hypervisor: str
) -> None:
    (tmp_path / "others.yaml").write_text(OTHERS)
    rs = load_rules([str(PLAYBOOKS / "containers.yaml"), str(tmp_path / "others.yaml")])
    hosts = [
        host("h1", ("g",), {"cpu.count": 4}, ctr=_rows()),
        host("h2", ("g",), {"ctr.pids": 3}, ctr=_rows()[::-1]),  # a host metric beneath
    ]
    hosts = [dataclasses.replace(h, hypervisor=hypervisor) for h in hosts]
    quick = _findings(rs, hosts)
    judges = [Judge(r) for r in rs.rules]
    taken = [j.rule.name for j in judges if j._quick[id(j.conds)] is not None]
    assert taken == [
        "ctr-mem-near-limit", "ctr-cpu-throttled", "ctr-oom-kills", "no-when", "spaced",
    ]  # fmt: skip
    played = judges[-1]  # its own `when:` once the play's held for the host
    assert played._quick[id(played.conds)] is None
    assert played._quick[id(played.subject_conds)] is not None
    monkeypatch.setattr(Judge, "_plain", lambda self, conds: None)
    slow = _findings(rs, hosts)
    assert quick == slow
    assert sum(len(f) for f in quick) > 2 * len(_rows()) * 4


#: Thresholds of every comparison, values at them and a float step either side of them,
#: and integers where floats lose precision: the quiet interval (judge._quiet) must draw
#: each line where Comparison.alerts draws it.
EDGES = """\
- name: edges
  hosts: all
  rules:
    - name: gt-ge
      metric: ctr.cpu_pct
      when: "ctr.cpu_pct is not none"
      warning: ">= 50"
      critical: "> 80"
    - name: lt-le
      metric: ctr.mem_limit_pct
      when: "ctr.mem_limit_pct is not none"
      warning: "< 10"
      critical: "<= 2"
    - name: both-sides
      metric: ctr.pids
      when: "ctr.pids is not none"
      warning: "> 9007199254740992"
      critical: "< -5"
    - name: ge-big
      metric: ctr.mem_bytes
      when: "ctr.mem_bytes is not none"
      critical: ">= 9007199254740996"
    - name: eq
      metric: ctr.oom_kills
      when: "ctr.oom_kills is not none"
      warning: "== 3"
    - name: ne-no-when
      metric: ctr.cpu_throttled_pct
      warning: "!= 0"
"""

EDGE_VALUES: list[object] = [
    50.0, math.nextafter(50.0, 0), math.nextafter(50.0, 100), 80.0, math.nextafter(80.0, 100),
    80, 81, 10.0, math.nextafter(10.0, 0), 2.0, math.nextafter(2.0, 5), 2, 3, -5, -5.0,
    math.nextafter(-5.0, -9), -6, 2**53, 2**53 + 1, 2**53 + 2, 2**1023 - 1, 2**1023,
    -(2**1023), 2**53 + 3, 0, 0.0, -0.0, None, None, 1e308, -1e308, math.inf, -math.inf, math.nan,
    True, "x",
]  # fmt: skip


def _edge_rows() -> tuple[Row, ...]:
    metrics = ("ctr.cpu_pct", "ctr.mem_limit_pct", "ctr.pids", "ctr.oom_kills",
               "ctr.cpu_throttled_pct", "ctr.mem_bytes")  # fmt: skip
    rows = []
    for i, v in enumerate(EDGE_VALUES):
        # Long quiet runs between them: the rows are packed a run at a time.
        rows += [Row(f"q{i}-{n}", dict.fromkeys(metrics, 5.5 + n)) for n in range(3)]
        rows.append(Row(f"e{i}", dict.fromkeys(metrics, v)))
        if i % 5 == 0:
            rows.append(Row(f"gap{i}", {}))  # lacks them all
    return tuple(rows)


def test_quiet_interval_draws_the_lines_where_comparisons_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "edges.yaml").write_text(EDGES)
    rs = load_rules([str(tmp_path / "edges.yaml")])
    judges = {j.rule.name: j for j in (Judge(r) for r in rs.rules)}
    assert judges["gt-ge"]._quick[id(judges["gt-ge"].conds)] == (-math.inf, 50.0)
    assert judges["lt-le"]._quick[id(judges["lt-le"].conds)] == (
        math.nextafter(10.0, -math.inf), math.inf,
    )  # fmt: skip
    assert judges["eq"]._quick[id(judges["eq"].conds)] is None  # judge() decides ==, !=
    assert judges["ne-no-when"]._quick[id(judges["ne-no-when"].conds)] is None
    hosts = [host("h1", ("g",), {"cpu.count": 4}, ctr=_edge_rows())]
    quick = _findings(rs, hosts)
    monkeypatch.setattr(Judge, "_plain", lambda self, conds: None)
    slow = _findings(rs, hosts)
    assert quick == slow
    alerts = {(f.rule, f.subject) for f in quick[0] if f.severity.value != "ok"}
    assert ("gt-ge", "e0") in alerts  # 50.0 >= 50
    assert ("gt-ge", "e1") not in alerts  # a step below it
    assert ("both-sides", "e18") not in alerts  # 2**53 + 1 is 2**53 as a float
    assert ("both-sides", "e19") in alerts  # 2**53 + 2 is not
    # 2**53 + 3 is below 2**53 + 4, but 2**53 + 4 as a float, as Comparison takes it
    assert ("ge-big", "e23") in alerts
    assert ("lt-le", "e8") in alerts  # < 10
    assert ("lt-le", "e7") not in alerts


#: Container rules with states across runs: `for:` (pending), `keep_firing_for:` (kept).
STATEFUL = """\
- name: stateful
  hosts: all
  rules:
    - name: cpu-for
      metric: ctr.cpu_pct
      when: "ctr.cpu_pct is not none"
      for: 2 runs
      keep_firing_for: 15m
      warning: "> 50"
    - name: pids
      metric: ctr.pids
      when: "ctr.pids is not none"
      warning: "> 10"
"""


def test_states_advance_as_a_pass_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """advance_all given each host's subjects with a state (`held`) keeps the passes of
    the others as runs: the findings and the states to write are those it gives looking
    each pass up, over runs that make subjects pending, firing, kept and resolved."""
    (tmp_path / "stateful.yaml").write_text(STATEFUL)
    rs = load_rules([str(tmp_path / "stateful.yaml")])
    evaluate_mod = sys.modules["fleetmon.rules.evaluate"]
    real = evaluate_mod.advance_all

    def one_at_a_time(*args: Any) -> Any:
        return real(*args[:5])  # without `held`

    def runs(patched: bool) -> list[tuple[list[list[Finding]], dict[Any, Any]]]:
        if patched:
            monkeypatch.setattr(evaluate_mod, "advance_all", one_at_a_time)
        states: dict[Any, Any] = {}
        seen = []
        for n in range(6):
            rows = tuple(
                # "pids" is also a subject's name and "c3" a value: neither misleads it.
                Row(name, {"ctr.cpu_pct": 60.0 if (i + n) % 4 == 0 else 5.0, "ctr.pids": pids})
                for i, (name, pids) in enumerate(
                    [(f"c{i}", 12 if (i * n) % 7 == 1 else 1) for i in range(40)]
                    + [("pids", 2), ("c3", 11)]
                )
            )
            hosts = [host("h1", ("g",), ctr=rows), host("h2", ("g",), ctr=rows[::-1])]
            specs = {h.name: spec(h.name, h.groups) for h in hosts}
            out: dict[Any, Any] = {}
            past = Past(1_795_662_000.0 + 600 * n, {}, dict(states))
            done, _ = evaluate(rs, hosts, specs, {}, past=past, states_out=out)
            for k, v in out.items():
                if v is None:
                    states.pop(k, None)
                else:
                    states[k] = v
            seen.append(([list(h.findings) for h in done], dict(out)))
        monkeypatch.undo()
        return seen

    held, looked_up = runs(False), runs(True)
    assert held == looked_up
    kinds = {(f.state, f.severity.value) for fs, _ in held for h in fs for f in h}
    assert {("pending", "ok"), ("firing", "warning"), ("resolved", "ok")} <= kinds
