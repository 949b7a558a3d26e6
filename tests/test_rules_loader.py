"""Rule files: every input error names file:line and the likely intended word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetmon.errors import RuleError
from fleetmon.model import Severity, yamlnodes
from fleetmon.rules import default_rule_files, load_rules, loader, parse_rules
from fleetmon.rules.loader import merge
from fleetmon.rules.ranges import Comparison, NagiosRange

DATA = Path(__file__).parent / "data" / "rules"
BAD = DATA / "bad"

ERRORS = {
    "unknown-metric.yaml": "5: rule 'busy': unknown metric 'cpu.bussy_pct' "
    "(did you mean 'cpu.busy_pct'?)",
    "unknown-rule-key.yaml": "7: rule 'steal': unknown key 'critcal' (did you mean 'critical'?)",
    "unknown-play-key.yaml": "2: play 'KVM hypervisors': unknown key 'host' "
    "(did you mean 'hosts'?)",
    "unknown-scope.yaml": "6: rule 'vm-busy': unknown scope 'vms' (did you mean 'vm'?)",
    "scope-mismatch.yaml": "6: rule 'vm-busy': scope 'vm' does not match metric "
    "'cpu.busy_pct' (scope host)",
    "bad-range.yaml": "7: rule 'fs-full': critical: bad threshold '95:90': range start 95 "
    "is greater than end 90",
    "bad-when-metric.yaml": "7: rule 'vm-busy': when: unknown metric 'vm.sate' "
    "(did you mean 'vm.state'?)",
    "bad-expr-syntax.yaml": "5: rule 'io-stall': expr: syntax error in 'load.per_cpu > 2 "
    "and and cpu.iowait_pct > 20': unexpected text after the expression",
    "sandbox-escape.yaml": "7: rule 'sneaky': when: access to '__init__' is not allowed",
    "bad-message.yaml": "7: rule 'steal': message: syntax error in "
    "'steal {{ value | round(1) }% on {{ host }}': unexpected '}'",
    "no-threshold.yaml": "4: rule 'steal': needs warning or critical",
    # At the key at fault, not at the rule's first line (`- name: busy`, line 4).
    "dead-warning.yaml": "6: rule 'busy': warning '> 90' never fires: critical '> 80' holds "
    "for every value it does (the critical level is the stricter one)",
    "expr-no-severity.yaml": "4: rule 'io-stall': expr rules need severity: warning or critical",
    "state-threshold.yaml": "6: rule 'vm-down': critical: '> 3' compares vm.state (string) "
    "with a number: write e.g. '!= running'",
    # `== crashd` never holds: loaded, a critical rule that could never fire.
    "state-word.yaml": "6: rule 'vm-crashed': critical: 'crashd' is not a state vm.state "
    "takes (did you mean 'crashed'?)",
    "duplicate-rule.yaml": "10: rule 'steal': duplicate rule name (first at {file}:4)",
    "yaml-syntax.yaml": "6: YAML syntax error: expected <block end>, but found "
    "'<block mapping start>'",
    # One play written without its `- `: said so (it was "expected a list of plays" alone).
    "not-a-list.yaml": "1: expected a list of plays, not one play: start it with '- ' "
    "(- hosts: ...), as in an Ansible playbook",
    "missing-hosts.yaml": "1: play 'hosts': missing key 'hosts'",
    "tune-unknown.yaml": "4: rule 'host-steel': needs metric or expr (no earlier rule of "
    "that name to tune)",
    "bad-severity.yaml": "6: rule 'io-stall': severity: expected warning or critical, got "
    "'crit' (did you mean 'critical'?)",
    "bad-name.yaml": "4: rule 'host steal': name: use letters, digits, '-', '_' and '.'",
    "alias-bomb.yaml": "13: YAML aliases expand this value to more than 100000 nodes "
    "(an alias bomb?)",
    "huge-width.yaml": "8: rule 'steal': message: center(1000000000) would build "
    "1,000,000,000 characters or items (a rule judgement may build 1,000,000)",
    "no-functions.yaml": "8: rule 'loop': when: 'range()' is not available: the functions of "
    "rule expressions are the history functions (avg_over, deriv, time_to, …)",
    "unknown-tag.yaml": "6: YAML syntax error: could not determine a constructor for the tag "
    "'tag:yaml.org,2002:python/object/apply:os.system'",
    # `? [a, b]`: a key PyYAML builds as a list was `internal error: TypeError` (exit 70).
    "complex-key.yaml": "6: rule 'steal': a key must be a name, got a sequence",
}


def test_every_bad_file_has_an_expected_message() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted([*ERRORS, "empty.yaml"])


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_rule_file_errors(name: str) -> None:
    path = str(BAD / name)
    with pytest.raises(RuleError) as exc:
        load_rules([path])
    assert str(exc.value) == f"{path}:" + ERRORS[name].replace("{file}", path)
    assert exc.value.file == path
    assert exc.value.line == int(ERRORS[name].split(":", 1)[0])


def test_empty_file() -> None:
    path = str(BAD / "empty.yaml")
    with pytest.raises(RuleError) as exc:
        load_rules([path])
    assert str(exc.value) == f"{path}: empty rule file: expected a list of plays"


def test_tune_of_a_misspelt_shipped_rule_suggests_it() -> None:
    shipped = default_rule_files(str(Path(__file__).parent.parent / "fleetmon" / "playbooks"))[0]
    path = str(BAD / "tune-unknown.yaml")
    with pytest.raises(RuleError) as exc:
        load_rules([shipped, path])
    assert str(exc.value) == (
        f"{path}:4: rule 'host-steel': needs metric or expr (no earlier rule of that name "
        "to tune (did you mean 'host-steal'?))"
    )


RULE = "- hosts: all\n  rules:\n    - name: busy\n      metric: cpu.busy_pct\n"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('      warning: > 80  # percent', "expected a comment or a line break, but found '8' "
         '(quote the whole value: warning: "> 80")'),
        ("      warning: >80", "expected chomping or indentation indicators, but found '0' "
         '(quote the whole value: warning: ">80")'),
        ("      critical: @90:100", "found character '@' that cannot start any token "
         '(quote the whole value: critical: "@90:100")'),
        ("      warning: 10:", 'mapping values are not allowed here '
         '(quote the whole value: warning: "10:")'),
        ("      message: {{ value }} on {{ host }}", "expected <block end>, but found "
         """'<scalar>' (quote the whole value: message: "{{ value }} on {{ host }}")"""),
        ("      message: {{ value }}", 'found unhashable key '
         '(quote the whole value: message: "{{ value }}")'),
        ('      message: "{{ value }}" on {{ host }}', "expected <block end>, but found "
         """'<scalar>' (quote the whole value: message: '"{{ value }}" on {{ host }}')"""),
        ("      message: busy: {{ value }}", "mapping values are not allowed here "
         '(quote the whole value: message: "busy: {{ value }}")'),
        # Not a value left unquoted: YAML's message alone.
        ("     warning: '> 5'", "expected <block end>, but found '<block mapping start>'"),
    ],
)  # fmt: skip
def test_a_value_yaml_cannot_read_unquoted_says_to_quote_it(
    tmp_path: Path, line: str, error: str
) -> None:
    """`warning: > 80` (a YAML folded block) said only "expected a comment or a line
    break, but found '8'", `message: {{ value }}` "found unhashable key"."""
    f = tmp_path / "site.yaml"
    f.write_text(RULE + line + "\n", encoding="utf-8")
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == f"{f}:5: YAML syntax error: {error}"


def test_a_file_that_is_not_utf8_is_refused_at_the_line_of_its_first_bad_byte(
    tmp_path: Path,
) -> None:
    """A Latin-1 `café` said "cannot read rule file: 'utf-8' codec can't decode byte 0xe9
    in position 106: invalid continuation byte": an offset, not a line."""
    f = tmp_path / "latin1.yaml"
    f.write_bytes(RULE.encode() + b"      warning: '> 1'\n      message: 'caf\xe9'\n")
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == f"{f}:6: not UTF-8 text (byte 0xe9): save it as UTF-8"
    r = fleetmon("rules", "lint", "--no-default-rules", f, timeout=60)
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == f"fleetmon: error: {f}:6: not UTF-8 text (byte 0xe9): save it as UTF-8\n"


def test_a_rule_file_of_too_many_yaml_values_is_refused_at_the_line_past_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 MiB of `[1,1,1,…]` (2,000,000 values) took minutes in PyYAML's pure-Python
    composer before any rule was read; now refused once it composes MAX_PURE_NODES."""
    monkeypatch.setattr(yamlnodes, "MAX_PURE_NODES", 1000)
    f = tmp_path / "big.yaml"
    f.write_text(RULE + "      warning: '> 1'\n      reason: [" + "1," * 2000 + "1]\n")
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == (
        f"{f}:6: more than 1,000 values (lists, mappings and scalars) in one file: split it"
    )
    f.write_text(RULE + "      warning: '> 1'\n      reason: [" + "1," * 900 + "1]\n")
    with pytest.raises(RuleError) as exc:  # composed: then read as the rule it is
        load_rules([str(f)])
    assert str(exc.value) == (
        f"{f}:6: rule 'busy': reason: expected a non-empty string, got a list"
    )


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as exc:
        load_rules([str(tmp_path / "nope.yaml")])
    assert (
        str(exc.value) == f"{tmp_path}/nope.yaml: cannot read rule file: No such file or directory"
    )
    with pytest.raises(RuleError) as exc:
        load_rules([str(tmp_path)])
    assert str(exc.value) == f"{tmp_path}: no *.yaml or *.yml rule files in this folder"


def test_a_rule_file_must_be_a_regular_file_of_bounded_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-r FIFO` blocked forever, `-r /dev/zero` was `internal error: MemoryError`; a pipe
    (`-r <(command)`) is read, and a FIFO nobody writes to reads as empty."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, message in (
        (fifo, "empty rule file: expected a list of plays"),
        ("/dev/zero", "a rule file must be a regular file, not a character device"),
    ):
        r = fleetmon("rules", "lint", "--no-default-rules", path, timeout=60)
        assert (r.returncode, r.stdout) == (4, "")
        assert r.stderr == f"fleetmon: error: {path}: {message}\n"
    rule = "- hosts: all\n  rules:\n    - {name: a, expr: 'true', severity: warning}\n"
    read, write = os.pipe()  # as bash's `-r <(command)`: /dev/fd/N, its writer attached
    try:
        os.write(write, rule.encode())
        os.close(write)
        assert load_rules([f"/dev/fd/{read}"]).names() == ["a"]
    finally:
        os.close(read)
    (tmp_path / "a.yaml").write_text(rule)
    (tmp_path / "link.yaml").symlink_to("a.yaml")  # a symlink is followed
    assert load_rules([str(tmp_path / "link.yaml")]).names() == ["a"]
    monkeypatch.setattr(loader, "MAX_RULE_FILE_BYTES", len(rule) - 1)
    with pytest.raises(RuleError) as exc:
        load_rules([str(tmp_path / "a.yaml")])
    assert str(exc.value) == (
        f"{tmp_path}/a.yaml: a rule file may be {len(rule) - 1:,} bytes at most; "
        f"this one is {len(rule):,} bytes"
    )


def test_folder_leaves_out_hidden_files_editor_locks_and_backups(tmp_path: Path) -> None:
    """As a shell's `*.yaml` would: an editor's lock symlink (`.#a.yaml` -> user@host.pid,
    dangling) was "cannot read rule file", a hidden file was loaded."""
    rule = "- hosts: all\n  rules:\n    - name: {}\n      expr: 'true'\n      severity: warning\n"
    (tmp_path / "a.yaml").write_text(rule.format("a"))
    (tmp_path / ".hidden.yml").write_text(rule.format("hidden"))
    (tmp_path / "~$a.yaml").write_text(rule.format("office-lock"))
    (tmp_path / "a.yaml~").write_text(rule.format("backup"))
    (tmp_path / ".#a.yaml").symlink_to("root@host.4242:1700000000")
    rs = load_rules([str(tmp_path)])
    assert (rs.files, rs.names()) == ((str(tmp_path / "a.yaml"),), ["a"])
    (tmp_path / "a.yaml").unlink()
    with pytest.raises(RuleError, match=r"no \*.yaml or \*.yml rule files in this folder"):
        load_rules([str(tmp_path)])


def test_base_file_parses_to_rules() -> None:
    rs = load_rules([str(DATA / "base.yaml")])
    assert rs.names() == ["host-steal", "fs-full", "io-stall", "vm-cpu-saturated", "fleet-busy"]
    steal = rs.get("host-steal")
    assert steal is not None
    assert steal.scope == "host"
    assert steal.warning == Comparison("> 5", ">", 5.0)
    assert steal.origin == f"{DATA / 'base.yaml'}:5"
    vm = rs.get("vm-cpu-saturated")
    assert vm is not None
    assert (vm.scope, vm.hosts, vm.play) == ("vm", "kvm:!lab*", "KVM hypervisors")
    assert vm.critical == NagiosRange("~:95", float("-inf"), 95.0)
    stall = rs.get("io-stall")
    assert stall is not None
    assert stall.expr is not None
    assert stall.expr.metrics == ("load.per_cpu", "cpu.iowait_pct")
    assert stall.severity is Severity.WARNING
    fleet = rs.get("fleet-busy")
    assert fleet is not None
    assert fleet.scope == "fleet"


def test_folder_is_sorted_and_later_rules_win() -> None:
    rs = load_rules([str(DATA / "base.yaml"), str(DATA / "site")])
    assert rs.files == (
        str(DATA / "base.yaml"),
        str(DATA / "site" / "10-tune.yaml"),
        str(DATA / "site" / "20-replace.yaml"),
    )
    steal = rs.get("host-steal")
    assert steal is not None
    # Tuned: warning replaced, critical, message and play kept.
    assert steal.warning == Comparison("> 8", ">", 8.0)
    assert steal.critical == Comparison("> 15", ">", 15.0)
    assert steal.message is not None
    assert steal.hosts == "all"
    assert steal.origin == f"{DATA / 'base.yaml'}:5, {DATA / 'site' / '10-tune.yaml'}:5"
    stall = rs.get("io-stall")
    assert stall is not None
    assert stall.enabled is False
    fs = rs.get("fs-full")
    assert fs is not None
    # Replaced whole: the site play's hosts, no warning, no when.
    assert (fs.hosts, fs.warning, fs.when) == ("db", None, None)
    assert fs.critical == NagiosRange("~:80", float("-inf"), 80.0)
    # Order of first appearance is kept.
    assert rs.names() == ["host-steal", "fs-full", "io-stall", "vm-cpu-saturated", "fleet-busy"]


def test_tune_that_breaks_the_rule_is_refused() -> None:
    base = str(DATA / "base.yaml")
    text = "- hosts: all\n  rules:\n    - name: io-stall\n      warning: '> 1'\n"
    entries = parse_rules(text, "site.yaml")
    merged = {r.name: r for r in load_rules([base]).rules}
    with pytest.raises(RuleError) as exc:
        merge(entries, "site.yaml", merged)
    assert str(exc.value) == (  # the tune's `warning:` line, not its `- name:` line
        "site.yaml:4: rule 'io-stall': expr rules take severity (warning or critical), "
        "not warning/critical"
    )


def test_tune_that_drops_both_levels_names_enabled_false() -> None:
    base = str(DATA / "base.yaml")
    text = "- hosts: all\n  rules:\n    - name: host-steal\n      warning: null\n"
    text += "      critical: null\n"
    merged = {r.name: r for r in load_rules([base]).rules}
    with pytest.raises(RuleError) as exc:
        merge(parse_rules(text, "site.yaml"), "site.yaml", merged)
    assert str(exc.value) == (
        "site.yaml:3: rule 'host-steal': needs warning or critical (enabled: false turns a "
        "rule off)"
    )


def test_play_without_name_and_yml_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "- hosts: all\n  rules:\n    - name: r1\n      metric: mem.used_pct\n"
        "      critical: 95\n    - name: r2\n      metric: host.rebooted\n"
        "      warning: '== true'\n"
    )
    rs = load_rules([str(tmp_path)])
    r1 = rs.get("r1")
    assert r1 is not None
    assert r1.play == "1"
    assert r1.critical == NagiosRange("95", 0.0, 95.0)
    r2 = rs.get("r2")
    assert r2 is not None
    assert r2.warning == Comparison("== true", "==", True)


def test_shipped_playbooks_load_and_document_every_rule() -> None:
    files = default_rule_files(str(Path(__file__).parent.parent / "fleetmon" / "playbooks"))
    assert [Path(f).name for f in files] == [
        "linux-host.yaml",
        "kvm.yaml",
        "xen.yaml",
        "containers.yaml",
    ]
    rs = load_rules(files)
    assert len(rs.rules) >= 30
    for rule in rs.rules:
        assert rule.reason, rule.name
        assert rule.source, rule.name
    kvm = [r for r in rs.rules if r.name.startswith("kvm-")]
    assert kvm
    for r in kvm:
        assert r.play_when is not None
        assert r.play_when.source == "hypervisor == 'kvm'"


# Pieces of rule files and of YAML that matter (anchors, aliases, tags, a NUL), so random
# text reaches the walker's deep paths quickly.
PIECES = st.sampled_from(
    [
        *"[]:{}\"'#,- \n\t\x00",
        "&a ",
        "*a",
        "<<: ",
        "!!python/name:os.system ",
        "- name: x\n",
        "  hosts: all\n",
        "  rules:\n",
        "    - name: r\n",
        "      metric: cpu.busy_pct\n",
        "      warning: '> 5'\n",
        "      expr: load.1m > 2\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(PIECES, max_size=60).map("".join)))
def test_random_text_is_rules_or_one_error_line(text: str) -> None:
    message = ""
    try:
        parse_rules(text, "fuzz.yaml")
    except RuleError as e:
        message = str(e)
    if message:
        assert message.startswith("fuzz.yaml")
        assert "\n" not in message


@pytest.mark.parametrize(
    ("warning", "critical", "dead"),
    [("> 90", "> 90", True), (">= 90", "> 90", False), ("> 90", ">= 90", True),
     ("> 80", "> 90", False), ("< 10", "< 20", True), ("< 10", "< 5", False),
     ("<= 10", "< 10", False), ("> 90", "< 5", False),
     # Nagios ranges, alone and mixed with comparisons: `~:10` alerts above 10, `10:` below.
     ("~:10", "~:5", True), ("~:5", "~:10", False), ("10:", "20:", True), ("20:", "10:", False),
     ("> 90", "~:80", True), ("~:95", "~:80", True), ("~:90", "> 80", True),
     ("~:90", ">= 90", True), ("~:90", "> 90", True), ("~:89", "> 90", False),
     ("10:", "< 10", True), ("10:", "<= 9", False), ("~:10", "10", True), ("10", "~:5", False),
     ("5:30", "10:20", True), ("10:20", "5:30", False), ("10:20", "!= 15", True),
     ("== 95", "> 90", True), ("!= 95", "> 90", False), ("== 95", "@90:100", True),
     # `@` alerts inside its range.
     ("@10:20", "@5:30", True), ("@5:30", "@10:20", False), ("@20:30", "~:15", True),
     ("@15:30", "~:15", False), ("@15:30", "15:", False), ("@0:100", "~:50", False)],
)  # fmt: skip
def test_a_warning_its_critical_always_beats_is_refused(
    warning: str, critical: str, dead: bool, tmp_path: Path
) -> None:
    """The warning's values all meet the critical level too, which is judged first: the
    warning would never show (Nagios plugins refuse such thresholds as well)."""
    f = tmp_path / "r.yaml"
    f.write_text(
        "- hosts: all\n  rules:\n    - name: busy\n      metric: cpu.busy_pct\n"
        f"      warning: '{warning}'\n      critical: '{critical}'\n"
    )
    if not dead:
        load_rules([str(f)])
        return
    with pytest.raises(RuleError, match=f"warning '{warning}' never fires: critical"):
        load_rules([str(f)])


@pytest.mark.parametrize(
    ("rule", "line", "message"),
    [
        (
            "      metric: cpu.steal_pct\n      warning: '== running'\n",
            5,
            "warning: '== running' compares cpu.steal_pct (number) with a string: "
            "write e.g. '> 90'",
        ),
        (
            "      metric: cpu.steal_pct\n      critical: '> 80'\n      warning: '> 90'\n",
            6,
            "warning '> 90' never fires: critical '> 80' holds for every value it does "
            "(the critical level is the stricter one)",
        ),
        (
            "      expr: 'true'\n      severity: warning\n      metric: cpu.steal_pct\n",
            4,
            "give metric or expr, not both",
        ),
        ("      metric: cpu.steal_pct\n      severity: warning\n", 5, "severity is for "),
        ("      metric: cpu.steal_pct\n", 3, "needs warning or critical"),  # a key it lacks
    ],
)
def test_an_inconsistent_rule_is_refused_at_the_key_at_fault(
    rule: str, line: int, message: str
) -> None:
    """Each was reported at the rule's first line (`- name: a`, line 3)."""
    text = "- hosts: all\n  rules:\n    - name: a\n" + rule
    with pytest.raises(RuleError) as exc:
        parse_rules(text, "r.yaml")
    assert str(exc.value).startswith(f"r.yaml:{line}: rule 'a': {message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- hosts: all\n  rules: [5]\n", "r.yaml:2: play #1: rule: expected a mapping"),
        (
            "- {name: kvm, hosts: all, rules: []}\n- hosts: all\n  rule: []\n",
            "r.yaml:3: play #2: unknown key 'rule' (did you mean 'rules'?)",
        ),
        (
            "- name: '1'\n  hosts: all\n  rules: [5]\n",
            "r.yaml:3: play '1': rule: expected a mapping",
        ),
    ],
)
def test_an_unnamed_play_is_named_by_its_place_not_as_a_play_called_so(
    text: str, message: str
) -> None:
    """An unnamed play's rule error said `play '1'`, as if the play were named 1."""
    with pytest.raises(RuleError) as exc:
        parse_rules(text, "r.yaml")
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- hosts: all\n  rules:\n    - &b {name: b, metric: cpu.steal_pct, warning: '> 4'}\n"
            "    - *b\n",
            "r.yaml:4: rule 'b': duplicate rule name (first at r.yaml:3)",
        ),
        (
            "- &p\n  hosts: all\n  rules:\n    - {name: b, metric: cpu.steal_pct, warning: '> 4'}\n"
            "- *p\n",
            "r.yaml:5: rule 'b': duplicate rule name (first at r.yaml:4)",
        ),
    ],
)
def test_a_rule_given_again_by_an_alias_is_a_duplicate_at_the_alias_line(
    text: str, message: str
) -> None:
    """`- *b` is the anchor's very node: both were reported at the anchor's line."""
    with pytest.raises(RuleError) as exc:
        parse_rules(text, "r.yaml")
    assert str(exc.value) == message


def test_a_bare_rule_list_says_to_put_it_under_a_play() -> None:
    """A list of rules with no play (as the history example once was) names the fix."""
    with pytest.raises(RuleError) as exc:
        parse_rules("- name: full\n  metric: fs.used_pct\n  warning: '> 90'\n", "r.yaml")
    assert str(exc.value) == (
        "r.yaml:2: play 'full': unknown key 'metric'"
        " (a rule's key: put rules under a play's `rules:`)"
    )


def test_a_top_level_that_is_no_play_gets_no_play_hint(tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    for text in ("x: 1\n", "hello\n", "{name: a, metric: cpu.busy_pct}\n"):
        f.write_text(text, encoding="utf-8")
        with pytest.raises(RuleError) as exc:
            load_rules([str(f)])
        assert str(exc.value) == f"{f}:1: expected a list of plays"


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("    - name: 2024\n", "3: rule: name: expected a non-empty string, got the number "
         '2024: quote it ("2024") to write text'),
        ("    - name: a\n      reason: yes\n", "4: rule 'a': reason: expected a non-empty "
         'string, got the boolean yes: quote it ("yes") to write text'),
        ("    - name: a\n      source: 2019-05-01\n", "4: rule 'a': source: expected a "
         'non-empty string, got the date 2019-05-01: quote it ("2019-05-01") to write text'),
        ("    - name: a\n      reason: [x]\n", "4: rule 'a': reason: expected a non-empty "
         "string, got a list"),
        ("    - name: ''\n", "3: rule '': name: expected a non-empty string"),
        # `when: true` as Ansible takes it: "expected a non-empty expression string".
        ("    - name: a\n      when: true\n", "4: rule 'a': when: expected a string, got the "
         'boolean true: quote it ("true") to write an expression'),
        ("    - name: a\n      message: 42\n", "4: rule 'a': message: expected a string, got "
         'the number 42: quote it ("42") to write text'),
    ],
)  # fmt: skip
def test_a_value_that_is_no_text_says_what_it_is(tmp_path: Path, rule: str, error: str) -> None:
    """`name: 2024` said "rule: expected a non-empty string": it is not empty, it is a
    number to YAML, and the key it was for went unnamed."""
    f = tmp_path / "site.yaml"
    f.write_text(
        "- hosts: all\n  rules:\n" + rule + "      metric: cpu.busy_pct\n      warning: '> 1'\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == f"{f}:{error}"


def test_an_empty_rule_file_name_is_refused_not_read_as_the_current_folder(
    tmp_path: Path,
) -> None:
    """`-r "$RULES"` with RULES unset was `-r ''`: Path('') is '.', so every *.yaml of the
    current folder (an inventory, a compose file) was loaded as rules. `-r -` said only
    "No such file or directory"."""
    (tmp_path / "inventory.yaml").write_text("all:\n  hosts:\n    a:\n", encoding="utf-8")

    def lint(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fleetmon", "rules", "lint", "--no-default-rules", name],
            cwd=tmp_path,  # the folder an empty name would have read
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    r = lint("")
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == 'fleetmon: error: a rule file named by an empty string (-r "$UNSET"?)\n'
    r = lint("-")
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == "fleetmon: error: -: no such file (standard input is /dev/stdin)\n"
    (tmp_path / "-").write_text(RULE + "      warning: '> 1'\n", encoding="utf-8")
    r = lint("-")
    assert (r.returncode, r.stdout) == (0, "1 rules OK in 1 file(s)\n")


def test_a_play_when_that_is_no_text_says_to_quote_it(tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(
        "- hosts: all\n  when: false\n  rules:\n"
        + RULE.split("rules:\n", 1)[1]
        + "      warning: '> 1'\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == (
        f"{f}:2: play #1: when: expected a string, got the boolean false: quote it "
        '("false") to write an expression'
    )


def test_a_file_of_more_expression_and_message_text_than_compiles_quickly_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 messages of 16 KB (a 1.6 MB file) took 23 s to compile, 16 MiB minutes: a file
    may compile MAX_FILE_SOURCE characters, refused at the value that passes them."""
    monkeypatch.setattr(loader, "MAX_FILE_SOURCE", 100)
    f = tmp_path / "site.yaml"
    rule = "    - name: r{}\n      expr: '{}'\n      severity: warning\n"
    f.write_text(
        "- hosts: all\n  when: 'host != \"\"'\n  rules:\n"
        + "".join(rule.format(i, "cpu.busy_pct > " + str(10**10 + i)) for i in range(4)),
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])  # 10 + 4 * 26 characters
    assert str(exc.value) == (
        f"{f}:14: the expressions and messages of this file pass 100 characters: split it"
    )
    monkeypatch.setattr(loader, "MAX_FILE_SOURCE", 114)
    assert len(load_rules([str(f)]).rules) == 4


@pytest.mark.parametrize(
    ("metric", "hint"),
    [
        # A misspelt metric of a row scope was offered one of another scope, which the rule
        # then takes on silently: a VM rule become a host rule (vm.cpu_busy_pct ->
        # cpu.busy_pct), a container rule a VM one.
        ("vm.cpu_busy_pct", "vm.cpu_pct"),
        ("ctr.mem_used_pct", "ctr.mem_limit_pct"),
        ("vm.mem_limit_pct", "vm.mem_used_pct"),
        ("cpu.bussy_pct", "cpu.busy_pct"),  # a host metric's: as before
        ("stael_pct", "cpu.steal_pct"),  # no scope named: any metric, as before
    ],
)
def test_a_misspelt_metric_is_offered_one_of_the_scope_it_names(metric: str, hint: str) -> None:
    forms = [f"metric: {metric}\n      warning: '> 1'", f"expr: '{metric} > 1'"]
    for text in forms[: 1 if "." not in metric else 2]:  # `stael_pct` in expr: a name
        source = f"- hosts: all\n  rules:\n    - name: r\n      {text}\n      severity: warning\n"
        if text.startswith("metric"):
            source = source.replace("      severity: warning\n", "")
        with pytest.raises(RuleError) as exc:
            parse_rules(source, "r.yaml")
        assert f"unknown metric '{metric}' (did you mean '{hint}'?)" in str(exc.value)
