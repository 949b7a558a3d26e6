"""Findings, a host's findings with its plain passes packed: read as the tuple they stand for,
made only when read, skipped unmade by notable(); and the rules pack them (issue 15's memory)."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

from test_rules_util import host, spec

from fleetmon.model import Finding, Findings, MetricValue, Row, Severity, notable
from fleetmon.rules import evaluate, load_rules

WARN = Finding("r-warn", Severity.WARNING, "host", "h1", "m", 12.0, "> 10", "m = 12")
PENDING = Finding("r-pend", Severity.OK, "host", "h1", "m", 1.0, "> 0", "pending", state="pending")


class Maker:
    """A Pass that counts the findings it makes."""

    def __init__(self) -> None:
        self.made = 0

    def passed(self, host: str, subject: str, value: MetricValue) -> Finding:
        self.made += 1
        return Finding("r-ok", Severity.OK, "disk", subject, "m", value, "> 10", f"{host} ok")


def test_packed_passes_read_as_the_tuple_in_rule_order() -> None:
    maker = Maker()
    f = Findings("h1", [maker, "sda", 1.5, WARN, maker, "sdb", None, PENDING])
    expected = (
        Finding("r-ok", Severity.OK, "disk", "sda", "m", 1.5, "> 10", "h1 ok"),
        WARN,
        Finding("r-ok", Severity.OK, "disk", "sdb", "m", None, "> 10", "h1 ok"),
        PENDING,
    )
    assert len(f) == 4
    assert tuple(f) == expected
    assert f == expected
    assert expected == f
    assert f[2] == expected[2]
    assert f[1:] == expected[1:]
    assert hash(f) == hash(expected)
    assert repr(f) == repr(expected)
    assert f != expected[:3]


def test_notable_skips_passes_without_making_them() -> None:
    maker = Maker()
    f = Findings("h1", [maker, "sda", 1.5, WARN, maker, "sdb", 2.0, PENDING])
    assert list(notable(f)) == [WARN, PENDING]
    assert maker.made == 0
    # A tuple is filtered the same way: not OK, or OK with a state.
    assert list(notable(tuple(f))) == [WARN, PENDING]
    assert maker.made == 2


def test_pickles_as_the_tuple_of_its_findings() -> None:
    f = Findings("h1", [Maker(), "sda", 1.5, WARN])
    back = pickle.loads(pickle.dumps(f))
    assert type(back) is tuple
    assert back == f


RULES = """
- hosts: all
  rules:
    - name: disk-busy
      metric: disk.util_pct
      warning: "> 80"
    - name: disk-queue
      expr: "disk.reads_per_s > 1000"
      scope: disk
      severity: warning
"""


def test_rules_pack_passes_and_say_the_same(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    rs = load_rules([str(path)])
    disks = tuple(
        Row(f"sd{i}", {"disk.util_pct": 90.0 if i == 0 else 10.0, "disk.reads_per_s": 5.0})
        for i in range(50)
    )
    h = host("kvm01", ("kvm",), {"cpu.steal_pct": 1.0}, disk=disks)
    (out,), _ = evaluate(rs, [h], {"kvm01": spec("kvm01", ("kvm",))}, {})
    findings = out.findings
    assert isinstance(findings, Findings)
    assert [f.severity for f in notable(findings)] == [Severity.WARNING]
    made = list(findings)
    assert len(made) == len(findings) == 100
    assert made[50] == Finding(
        "disk-queue",
        Severity.OK,
        "disk",
        "sd0",
        None,
        None,
        "disk.reads_per_s > 1000",
        "sd0: disk.reads_per_s > 1000 does not hold",
    )
    assert made[1] == Finding(
        "disk-busy", Severity.OK, "disk", "sd1", "disk.util_pct", 10.0, "warning > 80",
        "sd1: disk.util_pct = 10 (warning > 80)",
    )  # fmt: skip
    # 98 passes cost three tuple slots each, not a Finding and its message.
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    whole = list(findings)
    made_b = tracemalloc.get_traced_memory()[0] - base
    packed = Findings("kvm01", findings.items)
    packed_b = tracemalloc.get_traced_memory()[0] - base - made_b
    tracemalloc.stop()
    assert whole == made
    assert packed == findings
    assert packed_b * 10 < made_b, (packed_b, made_b)
