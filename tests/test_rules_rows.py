"""Rows judged without their context (Judge.judge_rows): the findings judge() gives, in the
same order, for every kind of value a row can hold, with the shipped container rules and
rules the quick way must leave to judge()."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from test_rules_util import host, spec

from fleetmon.model import Finding, HostReport, Row
from fleetmon.rules import RuleSet, evaluate, load_rules
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
