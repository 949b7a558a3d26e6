"""Rule evaluation on hand-built HostReports: thresholds, UNKNOWN, when/expr, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import fleetmon
from test_rules_util import host, spec

from fleetmon.errors import InventoryError
from fleetmon.inventory.data import Origin
from fleetmon.model import Finding, FleetStat, HostReport, HostSpec, Row, Severity, Status
from fleetmon.rules import RuleSet, evaluate, load_rules
from fleetmon.rules.overrides import check_overrides

DATA = Path(__file__).parent / "data" / "rules"
BASE = load_rules([str(DATA / "base.yaml")])


def run(
    rs: RuleSet, hosts: list[HostReport], specs: list[HostSpec] | None = None, **kw: object
) -> tuple[dict[str, HostReport], tuple[Finding, ...]]:
    specs = specs if specs is not None else [spec(h.name, h.groups) for h in hosts]
    out, fleet = evaluate(rs, hosts, {s.name: s for s in specs}, kw.pop("fleet", {}), **kw)  # type: ignore[arg-type]
    return {h.name: h for h in out}, fleet


def by_rule(h: HostReport, rule: str) -> list[Finding]:
    return [f for f in h.findings if f.rule == rule]


def one(h: HostReport, rule: str) -> Finding:
    found = by_rule(h, rule)
    assert len(found) == 1, found
    return found[0]


OK_METRICS = {"cpu.steal_pct": 1.0, "load.per_cpu": 0.5, "cpu.iowait_pct": 1.0}


@pytest.mark.parametrize(
    ("steal", "severity", "threshold", "message"),
    [
        (
            5.0,
            Severity.OK,
            "warning > 5, critical > 15",
            "cpu.steal_pct = 5 (warning > 5, critical > 15)",
        ),
        (5.01, Severity.WARNING, "> 5", "steal 5.01% on kvm01"),
        (15.0, Severity.WARNING, "> 5", "steal 15.0% on kvm01"),
        (17.26, Severity.CRITICAL, "> 15", "steal 17.3% on kvm01"),
    ],
)
def test_host_threshold(steal: float, severity: Severity, threshold: str, message: str) -> None:
    hosts, _ = run(BASE, [host("kvm01", ("kvm",), {**OK_METRICS, "cpu.steal_pct": steal})])
    assert one(hosts["kvm01"], "host-steal") == Finding(
        "host-steal", severity, "host", "kvm01", "cpu.steal_pct", steal, threshold, message
    )


def test_absent_metric_is_not_judged_and_null_is_unknown() -> None:
    # Absent: the host does not offer it (a kernel without the source): OK, saying so.
    missing = host("a", (), {"load.per_cpu": 0.5, "cpu.iowait_pct": 1.0})
    # Null: offered, but not computable this run: UNKNOWN.
    null = host("b", (), {**OK_METRICS, "cpu.steal_pct": None})
    hosts, _ = run(BASE, [missing, null])
    f = one(hosts["a"], "host-steal")
    assert (f.severity, f.value, f.message) == (
        Severity.OK,
        None,
        "not judged: cpu.steal_pct not offered by a (see notes)",
    )
    f = one(hosts["b"], "host-steal")
    assert (f.severity, f.message) == (
        Severity.UNKNOWN,
        "cpu.steal_pct is null for b: not computable this run (see notes)",
    )


def test_rows_and_when_on_subject() -> None:
    fs = (
        Row("/", {"fs.used_pct": 96.0}),
        Row("/boot", {"fs.used_pct": 99.0}),
        Row("/var", {"fs.used_pct": 85.0}),
        Row("/srv", {"fs.used_pct": 85.5}),
        Row("/old", {}),
    )
    hosts, _ = run(BASE, [host("h", (), OK_METRICS, fs=fs)])
    got = {f.subject: (f.severity, f.message) for f in by_rule(hosts["h"], "fs-full")}
    assert got == {
        "/": (Severity.CRITICAL, "/: fs.used_pct = 96 (critical: ~:95)"),
        "/var": (Severity.OK, "/var: fs.used_pct = 85 (warning ~:85, critical ~:95)"),
        "/srv": (Severity.WARNING, "/srv: fs.used_pct = 85.5 (warning: ~:85)"),
        "/old": (Severity.OK, "/old: not judged: fs.used_pct not offered by h (see notes)"),
    }


def test_expr_rule() -> None:
    busy = host("a", (), {**OK_METRICS, "load.per_cpu": 3.0, "cpu.iowait_pct": 25.0})
    calm = host("b", (), OK_METRICS)
    lacking = host("c", (), {"cpu.steal_pct": 1.0, "load.per_cpu": 3.0})
    hosts, _ = run(BASE, [busy, calm, lacking])
    f = one(hosts["a"], "io-stall")
    assert (f.severity, f.metric, f.threshold, f.message) == (
        Severity.WARNING,
        None,
        "load.per_cpu > 2 and cpu.iowait_pct > 20",
        "load.per_cpu > 2 and cpu.iowait_pct > 20 holds",
    )
    assert one(hosts["b"], "io-stall").severity is Severity.OK
    f = one(hosts["c"], "io-stall")
    assert (f.severity, f.message) == (
        Severity.OK,
        "not judged: cpu.iowait_pct not offered by c (see notes)",
    )


def test_play_host_pattern_and_vm_rows() -> None:
    vms = (
        Row("web-3", {"vm.state": "running", "vm.cpu_pct": 96.04}),
        Row("db-1", {"vm.state": "running", "vm.cpu_pct": 40.0}),
        Row("old", {"vm.state": "shutoff"}),
        Row("new", {"vm.state": "running", "vm.cpu_pct": None}),
    )
    kvm01 = host("kvm01", ("kvm",), OK_METRICS, vm=vms)
    lab1 = host("lab1", ("kvm",), OK_METRICS, vm=vms)
    web1 = host("web1", ("web",), OK_METRICS, vm=vms)
    hosts, _ = run(BASE, [kvm01, lab1, web1])
    got = {f.subject: (f.severity, f.message) for f in by_rule(hosts["kvm01"], "vm-cpu-saturated")}
    assert got == {
        "web-3": (Severity.CRITICAL, "web-3 CPU 96.0% on kvm01"),
        "db-1": (Severity.OK, "db-1: vm.cpu_pct = 40 (critical ~:95)"),
        "new": (
            Severity.UNKNOWN,
            "vm.cpu_pct is null for new: not computable this run (see notes)",
        ),
    }
    assert by_rule(hosts["lab1"], "vm-cpu-saturated") == []
    assert by_rule(hosts["web1"], "vm-cpu-saturated") == []


def test_match_callable_is_used() -> None:
    calls: list[str] = []

    def match(pattern: str) -> set[str]:
        calls.append(pattern)
        return {"lab1"} if pattern == "kvm:!lab*" else {"kvm01", "lab1"}

    vms = (Row("v", {"vm.state": "running", "vm.cpu_pct": 99.0}),)
    hosts, _ = run(
        BASE,
        [host("kvm01", ("kvm",), OK_METRICS, vm=vms), host("lab1", ("kvm",), OK_METRICS, vm=vms)],
        match=match,
    )
    assert sorted(set(calls)) == ["all", "kvm:!lab*"]
    assert len(calls) == 2  # each pattern resolved once per run
    assert by_rule(hosts["kvm01"], "vm-cpu-saturated") == []
    assert one(hosts["lab1"], "vm-cpu-saturated").severity is Severity.CRITICAL


def test_fleet_rules() -> None:
    stat = FleetStat(count=3, min=1.0, median=20.0, p95=85.0, max=90.0, mean=30.0, stddev=5.0)
    _, fleet = run(BASE, [host("a", (), OK_METRICS)], fleet={"cpu.busy_pct": stat})
    assert fleet == (
        Finding(
            "fleet-busy",
            Severity.WARNING,
            "fleet",
            "fleet.cpu.busy_pct.p95",
            "fleet.cpu.busy_pct.p95",
            85.0,
            "> 80",
            "fleet.cpu.busy_pct.p95 = 85 (warning: > 80)",
        ),
    )
    _, fleet = run(BASE, [host("a", (), OK_METRICS)])
    assert [(f.severity, f.message) for f in fleet] == [
        (Severity.UNKNOWN, "fleet.cpu.busy_pct.p95 not reported")
    ]


def test_uncollected_hosts_are_left_alone() -> None:
    down = host("down", ("kvm",), status=Status.UNREACHABLE, error="connect timed out")
    hosts, _ = run(BASE, [down])
    assert hosts["down"] == down


OVERRIDE_CASES = [
    ({"host-steal": {"warning": "> 10"}}, 8.0, Severity.OK),
    ({"host-steal": {"warning": "> 10"}}, 12.0, Severity.WARNING),
    ({"host-steal": {"warning": "> 10"}}, 16.0, Severity.CRITICAL),
    ({"host-steal": {"critical": None}}, 50.0, Severity.WARNING),
    ({"host-steal": {"warning": "@0:100", "critical": "~:99"}}, 1.0, Severity.WARNING),
    ({"host-steal": {"enabled": False}}, 50.0, None),
]


@pytest.mark.parametrize(("override", "steal", "severity"), OVERRIDE_CASES)
def test_inventory_overrides(
    override: dict[str, object], steal: float, severity: Severity | None
) -> None:
    h = host("h", (), {**OK_METRICS, "cpu.steal_pct": steal})
    hosts, _ = run(BASE, [h], [spec("h", (), fleetmon_thresholds=override)])
    found = by_rule(hosts["h"], "host-steal")
    assert [f.severity for f in found] == ([] if severity is None else [severity])


def test_override_beats_site_tune_beats_shipped() -> None:
    rs = load_rules([str(DATA / "base.yaml"), str(DATA / "site")])
    metrics = {**OK_METRICS, "cpu.steal_pct": 9.0, "load.per_cpu": 3.0, "cpu.iowait_pct": 30.0}
    tuned = host("tuned", (), metrics)
    local = host("local", (), metrics)
    specs = [
        spec("tuned"),
        spec("local", (), fleetmon_thresholds={"host-steal": {"warning": "> 9.5"}}),
    ]
    hosts, _ = run(rs, [tuned, local], specs)
    assert one(hosts["tuned"], "host-steal").severity is Severity.WARNING  # site: > 8
    assert one(hosts["local"], "host-steal").severity is Severity.OK  # host: > 9.5
    assert by_rule(hosts["tuned"], "io-stall") == []  # disabled by the site file


def test_override_naming_no_rule_is_a_note() -> None:
    h = host("h", (), OK_METRICS)
    hosts, _ = run(
        BASE, [h], [spec("h", (), fleetmon_thresholds={"host-steel": {"enabled": False}})]
    )
    assert hosts["h"].notes == (
        "fleetmon_thresholds: no rule named 'host-steel' in the rule files "
        "(did you mean 'host-steal'?)",
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"host-steal": {"warnign": "> 1"}},
            "host 'h': fleetmon_thresholds.host-steal.warnign: unknown key "
            "(did you mean 'warning'?)",
        ),
        (
            {"host-steal": {"warning": "9:1"}},
            "host 'h': fleetmon_thresholds.host-steal.warning: bad threshold '9:1': "
            "range start 9 is greater than end 1",
        ),
        (
            {"host-steal": {"enabled": "no"}},
            "host 'h': fleetmon_thresholds.host-steal.enabled: expected true or false, got 'no'",
        ),
        (
            {"host-steal": "> 10"},
            "host 'h': fleetmon_thresholds.host-steal: expected a mapping of "
            "warning/critical/severity/enabled",
        ),
        (
            ["host-steal"],
            "host 'h': fleetmon_thresholds: expected a mapping of rule name to overrides",
        ),
        (
            {"io-stall": {"warning": "> 1"}},
            "host 'h': fleetmon_thresholds.io-stall: expr rules take severity (warning or "
            "critical), not warning/critical",
        ),
        (  # both levels dropped: the way to turn the rule off is named
            {"host-steal": {"warning": None, "critical": None}},
            "host 'h': fleetmon_thresholds.host-steal: needs warning or critical "
            "(enabled: false turns a rule off)",
        ),
    ],
)
def test_bad_overrides(override: object, message: str) -> None:
    h = host("h", (), OK_METRICS)
    with pytest.raises(InventoryError) as exc:
        run(BASE, [h], [spec("h", (), fleetmon_thresholds=override)])
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("value", "line", "message"),
    [
        # A list was a connection value gone wrong: every host skipped, not collected (exit 3).
        ("[1, 2]", 3, "fleetmon_thresholds: expected a mapping of rule name to overrides"),
        (
            "{host-steal: {enabled: 'false'}}",
            3,
            "fleetmon_thresholds.host-steal.enabled: expected true or false, got 'false'",
        ),
    ],
)
def test_a_malformed_override_is_an_input_error_at_its_line_before_collection(
    tmp_path: Path, value: str, line: int, message: str
) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        f"all:\n  vars:\n    fleetmon_thresholds: {value}\n  hosts:\n"
        "    a:\n      ansible_connection: local\n    b:\n      ansible_connection: local\n"
    )
    out = tmp_path / "report.json"
    for args in (["run", inv, "--history", "none", "-q", "-o", out], ["rules", "list", inv]):
        r = fleetmon(*args)
        assert (r.returncode, r.stdout) == (4, "")
        assert r.stderr == f"fleetmon: error: {inv}:{line}: host 'a': {message}\n"
    assert not out.exists()


def test_check_overrides_names_the_variable_s_origin() -> None:
    good = spec("g", (), fleetmon_thresholds={"host-steal": {"warning": "> 9"}})
    templated = spec("t", (), fleetmon_thresholds="{{ site_thresholds }}")  # checked rendered
    bad = spec("h", (), fleetmon_thresholds={"host-steal": {"warning": "9:1"}})
    where = {"h": Origin("inv.yaml", 12, "all.hosts.h.fleetmon_thresholds")}
    check_overrides(BASE, [good, templated], lambda h, v: where.get(h))
    with pytest.raises(InventoryError) as exc:
        check_overrides(BASE, [good, bad], lambda h, v: where.get(h))
    assert str(exc.value) == (
        "inv.yaml:12: host 'h': fleetmon_thresholds.host-steal.warning: bad threshold '9:1': "
        "range start 9 is greater than end 1"
    )
    with pytest.raises(InventoryError) as exc:  # no origin (a saved run's host): as evaluate
        check_overrides(BASE, [bad], lambda h, v: None)
    assert str(exc.value).startswith("host 'h': fleetmon_thresholds.host-steal.warning: ")


def test_a_group_override_is_read_once_for_all_its_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    # A group's fleetmon_thresholds is one object its hosts share: 300 hosts with a mapping
    # of 200 overrides parse 200 entries (2,000 x 2,000 took 66 s when read per host).
    from fleetmon.rules import overrides

    calls = 0
    real = overrides._changes

    def counted(host: str, name: str, spec: object) -> dict[str, object]:
        nonlocal calls
        calls += 1
        return real(host, name, spec)

    monkeypatch.setattr(overrides, "_changes", counted)
    shared = {"host-steal": {"warning": "> 9.5"}} | {
        f"r{i}": {"enabled": False} for i in range(199)
    }
    names = [f"h{i}" for i in range(300)]
    metrics = {**OK_METRICS, "cpu.steal_pct": 9.0}
    hosts, _ = run(
        BASE,
        [host(n, ("g",), metrics) for n in names],
        [spec(n, ("g",), fleetmon_thresholds=shared) for n in names],
    )
    assert calls == 200
    assert {one(hosts[n], "host-steal").severity for n in names} == {Severity.OK}  # not > 9.5
    assert len(hosts["h7"].notes) == 199  # each host still says which names match no rule


def _rules(tmp_path: Path, body: str) -> RuleSet:
    path = tmp_path / "r.yaml"
    path.write_text("- name: t\n  hosts: all\n  rules:\n" + body)
    return load_rules([str(path)])


def test_host_vars_groups_and_host_name_in_when(tmp_path: Path) -> None:
    rs = _rules(
        tmp_path,
        "    - name: db-only\n      metric: mem.used_pct\n      warning: '> 50'\n"
        "      when: \"role == 'db' and 'prod' in group_names and vars.role == 'db'"
        " and host.startswith('d') and host.rebooted == false and 'd1' in groups.prod\"\n",
    )
    metrics = {"mem.used_pct": 60.0, "host.rebooted": False}
    hosts, _ = run(
        rs,
        [host("d1", ("prod",), metrics), host("w1", ("prod",), metrics)],
        [spec("d1", ("prod",), role="db"), spec("w1", ("prod",), role="web")],
    )
    assert one(hosts["d1"], "db-only").severity is Severity.WARNING
    assert by_rule(hosts["w1"], "db-only") == []


def test_message_template_failure_falls_back(tmp_path: Path) -> None:
    rs = _rules(
        tmp_path,
        "    - name: m\n      metric: mem.used_pct\n      warning: '> 50'\n"
        "      message: '{{ nope }} used'\n",
    )
    hosts, _ = run(rs, [host("h", (), {"mem.used_pct": 60.0})])
    assert one(hosts["h"], "m").message == (
        "mem.used_pct = 60 (warning: > 50) (message template failed: 'nope' is undefined)"
    )


def test_state_value_against_number_is_unknown(tmp_path: Path) -> None:
    rs = _rules(tmp_path, "    - name: m\n      metric: mem.used_pct\n      warning: '> 50'\n")
    hosts, _ = run(rs, [host("h", (), {"mem.used_pct": "lots"})])
    f = one(hosts["h"], "m")
    assert (f.severity, f.message) == (
        Severity.UNKNOWN,
        "value 'lots' is not a number, threshold '> 50' needs one",
    )


PLAY_ON_VARS = """
- hosts: all
  when: "vars.env == 'prod' and hypervisor == 'kvm'"
  rules:
    - name: vm-busy
      metric: vm.cpu_pct
      warning: "> 50"
"""


def test_a_play_when_on_host_names_is_tried_once_per_host_with_the_same_verdicts(
    tmp_path: Path,
) -> None:
    # The play's condition reads only what every subject of a host shares: evaluate tries it
    # once per host; an error there still gives each subject its own UNKNOWN, as before.
    path = tmp_path / "play.yaml"
    path.write_text(PLAY_ON_VARS)
    rs = load_rules([str(path)])
    vms = (Row("web-1", {"vm.cpu_pct": 80.0}), Row("web-2", {"vm.cpu_pct": 10.0}))
    hosts = [host(n, ("kvm",), {"cpu.steal_pct": 1.0}, vm=vms) for n in ("p", "d", "u")]
    specs = [spec("p", ("kvm",), env="prod", fleetmon_hypervisor="kvm")]
    specs += [spec("d", ("kvm",), env="dev", fleetmon_hypervisor="kvm")]
    specs += [spec("u", ("kvm",), fleetmon_hypervisor="kvm")]
    out, _ = run(rs, hosts, specs)
    assert [(f.subject, f.severity) for f in out["p"].findings] == [
        ("web-1", Severity.WARNING),
        ("web-2", Severity.OK),
    ]
    assert out["d"].findings == ()
    unknown = list(out["u"].findings)
    assert [(f.subject, f.severity) for f in unknown] == [
        ("web-1", Severity.UNKNOWN),
        ("web-2", Severity.UNKNOWN),
    ]
    assert all(f.message.startswith("when: ") and "env" in f.message for f in unknown)


def test_a_structural_null_says_why_not_see_notes(tmp_path: Path) -> None:
    """No swap, no huge pages, no memory limit: null (METRICS.md), UNKNOWN with its reason;
    a null whose source was not read keeps "not computable this run (see notes)"."""
    rs = _rules(
        tmp_path,
        "    - name: swap\n      metric: mem.swap_used_pct\n      warning: '> 50'\n"
        "    - name: huge\n      metric: mem.hugepages_free_pct\n      warning: '< 10'\n"
        "    - name: limit\n      metric: ctr.mem_limit_pct\n      warning: '> 90'\n"
        "    - name: guarded\n      metric: mem.swap_used_pct\n      warning: '> 50'\n"
        "      when: 'mem.swap_used_pct is not none'\n",
    )
    mem = {"mem.total_bytes": 1 << 30, "mem.swap_used_pct": None, "mem.hugepages_free_pct": None}
    ctrs = (
        Row("free", {"ctr.mem_bytes": 5, "ctr.mem_limit_bytes": None, "ctr.mem_limit_pct": None}),
        Row("gone", {"ctr.mem_bytes": None, "ctr.mem_limit_pct": None}),
    )
    unread = {"mem.swap_used_pct": None, "mem.hugepages_free_pct": None}
    hosts, _ = run(rs, [host("h", (), mem, ctr=ctrs), host("u", (), unread)])
    got = {(f.rule, f.subject): (f.severity, f.message) for f in hosts["h"].findings}
    assert got[("swap", "h")] == (
        Severity.UNKNOWN,
        "mem.swap_used_pct is null for h: no swap configured",
    )
    assert got[("huge", "h")][1] == "mem.hugepages_free_pct is null for h: no huge pages configured"
    assert got[("limit", "free")][1] == "ctr.mem_limit_pct is null for free: no memory limit"
    assert got[("limit", "gone")][1] == (
        "ctr.mem_limit_pct is null for gone: not computable this run (see notes)"
    )
    assert ("guarded", "h") not in got  # the documented idiom: no finding where there is none
    assert one(hosts["u"], "swap").message == (
        "mem.swap_used_pct is null for u: not computable this run (see notes)"
    )


def test_an_expression_on_a_null_metric_says_which_and_why(tmp_path: Path) -> None:
    """`expr: mem.swap_used_pct > 50` on a host with no swap said only "expr: '>' not
    supported between instances of 'NoneType' and 'int'": now which metric is null and
    why, as the metric rule says, in expr, when and a row's expr; an error of another
    cause is left as it was."""
    rs = _rules(
        tmp_path,
        "    - name: swap\n      expr: 'mem.swap_used_pct > 50'\n      severity: warning\n"
        "    - name: guard\n      metric: mem.total_bytes\n      warning: '> 0'\n"
        "      when: 'mem.swap_used_pct > 50'\n"
        "    - name: limit\n      expr: 'ctr.mem_limit_pct > 90'\n      scope: ctr\n"
        "      severity: warning\n"
        "    - name: other\n      expr: 'mem.total_bytes > none_here'\n      severity: warning\n",
    )
    mem = {"mem.total_bytes": 1 << 30, "mem.swap_used_pct": None}
    ctrs = (
        Row("free", {"ctr.mem_bytes": 5, "ctr.mem_limit_bytes": None, "ctr.mem_limit_pct": None}),
    )
    hosts, _ = run(rs, [host("h", (), mem, ctr=ctrs), host("u", (), {"mem.swap_used_pct": None})])
    cmp = "('>' not supported between instances of 'NoneType' and 'int')"
    got = {(f.rule, f.subject): (f.severity, f.message) for f in hosts["h"].findings}
    assert got[("swap", "h")] == (
        Severity.UNKNOWN,
        f"expr: mem.swap_used_pct is null for h: no swap configured {cmp}",
    )
    assert got[("guard", "h")] == (
        Severity.UNKNOWN,
        f"when: mem.swap_used_pct is null for h: no swap configured {cmp}",
    )
    assert got[("limit", "free")][1] == (
        f"expr: ctr.mem_limit_pct is null for free: no memory limit {cmp}"
    )
    assert got[("other", "h")][1] == "expr: 'none_here' is undefined"
    assert one(hosts["u"], "swap").message == (
        f"expr: mem.swap_used_pct is null for u: not computable this run (see notes) {cmp}"
    )


@pytest.mark.parametrize(
    ("warning", "value", "message"),
    [
        # 2 decimals would say `= 0.01 (warning: > 0.01)` and `= 0 (warning: > 0)`.
        ("> 0.01", 0.01495, "psi.memory_full_pct = 0.015 (warning: > 0.01)"),
        ("> 0", 0.0033, "psi.memory_full_pct = 0.003 (warning: > 0)"),
        ("< 90", 89.996, "psi.memory_full_pct = 89.996 (warning: < 90)"),
        ("~:90", 90.004, "psi.memory_full_pct = 90.004 (warning: ~:90)"),
        ("> 0.01", 0.02495, "psi.memory_full_pct = 0.02 (warning: > 0.01)"),  # as before
    ],
)
def test_default_message_value_breaches_its_threshold(
    tmp_path: Path, warning: str, value: float, message: str
) -> None:
    """A default message shows the value with the decimals it needs to stay on the side of
    the threshold it was judged on (a 3 a.m. reader sees `0.01 > 0.01` as a bug)."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "- hosts: all\n  rules:\n    - name: thrash\n      metric: psi.memory_full_pct\n"
        f"      warning: '{warning}'\n      critical: '> 95'\n"
    )
    rs = load_rules([str(path)])
    hosts, _ = run(rs, [host("h1", (), {"psi.memory_full_pct": value})])
    found = one(hosts["h1"], "thrash")
    assert (found.severity, found.value, found.message) == (Severity.WARNING, value, message)


def test_default_ok_message_value_stays_on_the_quiet_side(tmp_path: Path) -> None:
    """The OK text of a value just under `> 5` does not round onto the level (`= 5` is fine:
    5 is not over 5), nor one just over `>= 5` below it."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "- hosts: all\n  rules:\n    - name: s\n      metric: cpu.steal_pct\n"
        "      warning: '>= 5'\n"
    )
    rs = load_rules([str(path)])
    hosts, _ = run(rs, [host("h1", (), {"cpu.steal_pct": 4.999})])
    assert one(hosts["h1"], "s").message == "cpu.steal_pct = 4.999 (warning >= 5)"


def test_default_message_of_a_tiny_negative_value_is_zero(tmp_path: Path) -> None:
    """A tiny negative value (a counter's rounding, -0.001) was shown as `-0`: it reads as
    a sign error at 3 a.m.; 2 decimals of it are 0."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "- hosts: all\n  rules:\n    - name: s\n      metric: cpu.steal_pct\n      warning: '> 5'\n"
    )
    rs = load_rules([str(path)])
    hosts, _ = run(rs, [host("h1", (), {"cpu.steal_pct": -0.001})])
    assert one(hosts["h1"], "s").message == "cpu.steal_pct = 0 (warning > 5)"


@pytest.mark.parametrize(
    ("template", "warning", "value", "message"),
    [
        ("{{ value | judged(1) }}", ">= 90", 89.96, None),  # not alerting: no message
        ("{{ value | judged(1) }}", "> 90", 90.04, "90.04"),  # round(1): 90.0
        ("{{ value | judged(1) }}", "> 90", 93.26, "93.3"),  # as round(1) when it may
        ("{{ value | judged(0) }}", "10:90", 90.4, "90.4"),  # outside: round(0) is 90.0
        ("{{ value | judged(0) }}", "> 90", 98.7, "99"),  # no decimals: not round's 99.0
        ("{{ value | judged }}", "> 0.01", 0.0149, "0.015"),  # as the default message
        ("{{ value | judged(1) }}", "> 5", 7, "7"),  # an int as round leaves it
        ("{{ (value * 2) | judged(1) }}", "> 5", 5.01, "10.0"),  # other figures: round
    ],
)
def test_judged_filter_keeps_the_value_on_its_side(
    tmp_path: Path, template: str, warning: str, value: float, message: str | None
) -> None:
    """`judged(N)` is round(N) but for a value it would round across a level of the rule;
    `judged` alone is the default message's figure."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "- hosts: all\n  rules:\n    - name: s\n      metric: cpu.steal_pct\n"
        f"      warning: '{warning}'\n      critical: '> 99'\n      message: '{template}'\n"
    )
    hosts, _ = run(load_rules([str(path)]), [host("h1", (), {"cpu.steal_pct": value})])
    found = one(hosts["h1"], "s")
    assert (found.severity is Severity.WARNING, found.message) == (
        message is not None,
        message if message is not None else found.message,
    )
