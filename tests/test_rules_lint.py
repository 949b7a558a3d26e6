"""`fleetmon rules lint`: rules that load but would be UNKNOWN on every subject they judge
are named with file:line and what to write instead; given an inventory or a --save-raw
folder, lint says how many hosts or subjects each would judge UNKNOWN."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import ROOT, fleetmon

from fleetmon.rules import DEFAULT_FILES, HISTORY_FILES, Rule, load_rules, parse_rules
from fleetmon.rules.lint import Problem, check

LINT = ROOT / "tests" / "data" / "rules" / "lint" / "whole-fleet-unknown.yaml"
RAW = ROOT / "tests" / "data" / "golden-report" / "raw"
F = "tests/data/rules/lint/whole-fleet-unknown.yaml"
UNLESS = "undefined (UNKNOWN) on every host without an inventory variable of that name"
#: What lint loads: the shipped playbooks (history.yaml too), then the file.
SHIPPED = [str(ROOT / "fleetmon" / "playbooks" / f) for f in (*DEFAULT_FILES, *HISTORY_FILES)]
LOADED = load_rules([*SHIPPED, str(LINT)])
SUMMARY = f"{len(LOADED.rules)} rules in {len(LOADED.files)} file(s)"
PROBLEMS = [
    f"{F}:7: error: rule 'vm-down': expr: vm.state is a vm metric and the rule's scope is "
    "host: undefined for every subject, so UNKNOWN everywhere (add `scope: vm` to judge each "
    "VM)",
    f"{F}:11: error: rule 'vm-busy': when: 'running' is not defined: did you mean the string "
    "'running' (quoted)?",
    f"{F}:15: warning: rule 'prod-only': when: 'env' is not a metric or a name rules have",
    f"{F}:18: warning: rule 'typo': expr: 'hypervsor' is not a metric or a name rules have "
    "(did you mean 'hypervisor'?)",
    f"{F}:21: error: rule 'disk-vm': expr: vm.cpu_pct is a vm metric and the rule's scope is "
    "disk: undefined for every subject, so UNKNOWN everywhere (a rule of scope disk cannot "
    "read vm metrics)",
]


def _lint(*args: object) -> tuple[int, list[str]]:
    r = fleetmon("rules", "lint", F, *map(str, args))
    assert r.stderr == ""
    return r.returncode, r.stdout.splitlines()


def test_static_problems_with_file_line_and_what_to_write() -> None:
    code, lines = _lint()
    assert code == 4
    assert lines == [
        PROBLEMS[0],
        PROBLEMS[1],
        f"{PROBLEMS[2]}; {UNLESS}",
        f"{PROBLEMS[3]}; {UNLESS}",
        PROBLEMS[4],
        f"{SUMMARY}: 3 error(s), 2 warning(s)",
    ]


def test_the_shipped_playbooks_lint_clean() -> None:
    r = fleetmon("rules", "lint", ROOT / "fleetmon" / "playbooks")
    assert (r.returncode, r.stderr) == (0, "")
    shipped = load_rules(SHIPPED)
    assert r.stdout == f"{len(shipped.rules)} rules OK in {len(shipped.files)} file(s)\n"


def test_with_an_inventory_lint_counts_the_hosts_made_unknown(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    kvm0004: {env: prod}\n    kvm0007:\n    xen0001: {env: dev}\n",
        encoding="utf-8",
    )
    code, lines = _lint("-i", inv)
    assert code == 4
    on = "; UNKNOWN on {} of the 3 host(s) it selects"
    assert lines == [
        PROBLEMS[0] + on.format(3),
        PROBLEMS[1] + on.format(3),
        PROBLEMS[2].replace("warning", "error") + on.format(1),  # kvm0007 has no env
        PROBLEMS[3].replace("warning", "error") + on.format(3),
        PROBLEMS[4] + on.format(3),
        f"{SUMMARY}: 5 error(s), 0 warning(s)",
    ]
    # Every host defining the variable: no problem left for it.
    inv.write_text("all:\n  hosts:\n    a: {env: prod}\n", encoding="utf-8")
    code, lines = _lint("-i", inv)
    assert not [line for line in lines if "'env'" in line]


def test_with_a_raw_folder_lint_counts_the_subjects_judged_unknown() -> None:
    code, lines = _lint("--raw", RAW)
    assert code == 4
    start = lines.index(f"{RAW}: 6 of 8 host(s) collected; UNKNOWN per rule:")
    counts = [line.split() for line in lines[start + 1 : start + 6]]
    # The golden fleet: 6 hosts collected, 37 VMs on them, 24 disks. disk-vm's `and` stops
    # at a false left side: only the one disk over 90 % reaches vm.cpu_pct, so the data
    # shows it once where lint's static check shows it for every subject.
    assert [c[:4] for c in counts] == [
        ["vm-down", "6", "of", "6"],
        ["vm-busy", "37", "of", "37"],
        ["prod-only", "6", "of", "6"],
        ["typo", "6", "of", "6"],
        ["disk-vm", "1", "of", "24"],
    ]
    assert lines[start + 1].endswith("subject(s): expr: 'vm.state' is undefined")
    history = sum(1 for r in LOADED.rules if r.needs_history())
    quiet = len(LOADED.rules) - history - 5
    assert lines[start + 6] == f"  ({quiet} rule(s) with no UNKNOWN subject)"
    assert lines[start + 7].startswith("  (not judged, they need the history of earlier runs: ")


def _rule(text: str) -> Rule:
    (rule,) = parse_rules("- hosts: all\n  rules:\n" + text, "r.yaml")
    assert isinstance(rule, Rule)
    return rule


@pytest.mark.parametrize(
    ("rule", "found"),
    [
        # Message names are for messages; `value` for metric rules; fleet rules have no host.
        (
            "    - {name: a, expr: 'severity == 1', severity: warning}\n",
            [("warning", "expr", "'severity' is not a metric or a name rules have")],
        ),
        (
            "    - {name: a, expr: 'value > 1', severity: warning}\n",
            [("error", "expr", "'value' is for metric rules only")],
        ),
        (
            "    - {name: a, metric: cpu.busy_pct, warning: '> 1', when: 'value > 2',"
            " message: '{{ severity }} {{ threshold }} {{ rule }} {{ metric }}'}\n",
            [],
        ),
        (
            "    - {name: a, metric: fleet.cpu.busy_pct.p95, warning: '> 1',"
            " when: \"hypervisor == 'kvm'\"}\n",
            [("warning", "when", "'hypervisor' is not a metric or a name rules have")],
        ),
        (  # a row rule reads its host's metrics and the fleet's
            "    - {name: a, expr: 'fs.used_pct > load.per_cpu + fleet.cpu.busy_pct.p95',"
            " scope: fs, severity: warning}\n",
            [],
        ),
        (
            "    - {name: a, expr: \"vm.state == 'crashed'\", severity: warning, scope: fleet}\n",
            [("error", "expr", "vm.state is a vm metric and the rule's scope is fleet")],
        ),
    ],
)
def test_what_each_scope_and_key_may_read(rule: str, found: list[tuple[str, str, str]]) -> None:
    problems: list[Problem] = check([_rule(rule)])
    assert [
        (p.level, p.key, p.text[: len(f[2])]) for p, f in zip(problems, found, strict=False)
    ] == found
    assert len(problems) == len(found)


STATES = """\
- hosts: all
  rules:
    - name: typo
      expr: "vm.state == 'runnning'"
      scope: vm
      severity: warning
    - name: listed
      expr: "vm.state in ('paused', 'crashd') or 'shutof' != vm.state"
      scope: vm
      severity: critical
    - name: fine
      expr: "vm.state in ['dying', 'state-9'] or 'runn' in vm.state or vm.state != 'running'"
      scope: vm
      severity: warning
      when: "vm.state == 'Paused'"
"""


def test_a_state_compared_with_a_word_it_never_is_is_an_error(tmp_path: Path) -> None:
    """`vm.state == 'runnning'` loaded and linted clean: a rule that could never fire."""
    path = tmp_path / "states.yaml"
    path.write_text(STATES, encoding="utf-8")
    never = "is not a state vm.state takes (did you mean"
    problems = [
        f"{path}:4: error: rule 'typo': expr: 'runnning' {never} 'running'?)",
        f"{path}:8: error: rule 'listed': expr: 'crashd' {never} 'crashed'?)",
        f"{path}:8: error: rule 'listed': expr: 'shutof' {never} 'shutoff'?)",
        f"{path}:15: error: rule 'fine': when: 'Paused' {never} 'paused'?)",
    ]
    r = fleetmon("rules", "lint", "--no-default-rules", path)
    assert (r.returncode, r.stderr) == (4, "")
    assert r.stdout.splitlines() == [*problems, "3 rules in 1 file(s): 4 error(s), 0 warning(s)"]
    # With an inventory: the rule judges, it is not UNKNOWN; it never fires.
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    kvm0004:\n", encoding="utf-8")
    r = fleetmon("rules", "lint", "--no-default-rules", path, "-i", inv)
    assert (r.returncode, r.stderr) == (4, "")
    assert r.stdout.splitlines() == [*problems, "3 rules in 1 file(s): 4 error(s), 0 warning(s)"]


KINDS = """\
- hosts: all
  rules:
    - name: quoted
      expr: "cpu.busy_pct > '80'"
      severity: warning
    - name: equal
      metric: cpu.busy_pct
      warning: "> 90"
      when: "load.1m == '0' or host.rebooted != 'true'"
    - name: word
      expr: "'high' <= fleet.cpu.busy_pct.p95"
      scope: fleet
      severity: warning
    - name: fine
      expr: "cpu.busy_pct > 80 and host.rebooted and vm.state != 'running'"
      scope: vm
      severity: warning
"""


def test_a_number_or_boolean_compared_with_a_string_is_an_error(tmp_path: Path) -> None:
    """`cpu.busy_pct > '80'` linted clean and was UNKNOWN on every host ("'>' not supported
    between instances of 'float' and 'str'"); `load.1m == '0'` never fired, silently."""
    path = tmp_path / "kinds.yaml"
    path.write_text(KINDS, encoding="utf-8")
    r = fleetmon("rules", "lint", "--no-default-rules", path)
    assert (r.returncode, r.stderr) == (4, "")
    assert r.stdout.splitlines() == [
        f"{path}:4: error: rule 'quoted': expr: cpu.busy_pct (a number) compared with the "
        "string '80' is UNKNOWN on every subject (write 80 without quotes)",
        f"{path}:9: error: rule 'equal': when: load.1m (a number) compared with the string "
        "'0' never holds (write 0 without quotes)",
        f"{path}:9: error: rule 'equal': when: host.rebooted (a boolean) compared with the "
        "string 'true' always holds (compare it with true or false, unquoted)",
        f"{path}:11: error: rule 'word': expr: fleet.cpu.busy_pct.p95 (a number) compared "
        "with the string 'high' is UNKNOWN on every subject (compare it with a number)",
        "4 rules in 1 file(s): 4 error(s), 0 warning(s)",
    ]
