"""A play's `hosts:` pattern: checked when its rule file loads (file:line, exit 4 before any
connection), matched without reading a file and without failing after the hosts are collected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon

from fleetmon.errors import InventoryError, RuleError
from fleetmon.inventory import Inventory, load_inventory
from fleetmon.inventory.patterns import match_pattern, matcher
from fleetmon.inventory.regexcost import NESTED, TOO_OPEN
from fleetmon.model import HostSpec
from fleetmon.rules import load_rules

PATTERNS = Path(__file__).parent / "data" / "inventories" / "patterns"
NO_PSI = ROOT / "tests" / "data" / "fleetmon-capture" / "no-psi-raw"
NO_FILE = "rule files' hosts: take no @file: name the hosts or groups"


def _file(tmp_path: Path, hosts: str) -> Path:
    f = tmp_path / "site.yaml"
    f.write_text(
        f"- name: site\n  hosts: {json.dumps(hosts)}\n  rules:\n"
        "    - name: always\n      expr: 'true'\n      severity: warning\n",
        encoding="utf-8",
    )
    return f


@pytest.mark.parametrize(
    ("hosts", "problem"),
    [
        ("@/dev/zero", f"'@/dev/zero': {NO_FILE}"),
        ("kvm:@/etc/shadow", f"'@/etc/shadow': {NO_FILE}"),
        ("~(a", "'~(a' is not a valid pattern (missing ), unterminated subpattern at position 0)"),
        ("kvm:!~web(", "'~web(' is not a valid pattern (missing ), unterminated subpattern at "
         "position 3)"),
        ("kvm[1:2", "'kvm[1:2': unbalanced '['"),
        ("kvm[1:2,web", "'kvm[1:2': unbalanced '['"),
        ("kvm]", "'kvm]': unbalanced ']'"),
        ("kvm[1:2:3]", "'kvm[1:2:3]': malformed subscript (write [i], [-i], [x:y] or [x:])"),
        ("kvm[:3]", "'kvm[:3]': malformed subscript (write [i], [-i], [x:y] or [x:])"),
        ("kvm[3:1]", "'kvm[3:1]': the subscript starts after it ends (3 > 1)"),
        ("kvm:!", "'!' with no pattern after it (write !PATTERN to exclude the hosts PATTERN "
         "selects)"),
        ("kvm,&", "'&' with no pattern after it (write &PATTERN to keep only the hosts PATTERN "
         "selects)"),
        (",", "',' names no host or group"),
        ("~(a+)+$", f"'~(a+)+$': {NESTED}"),
        (r"kvm:!~(\w+-?)+x", rf"'~(\\w+-?)+x': {NESTED}"),
        ("~(.*a)*", f"'~(.*a)*': {NESTED}"),
        ("~(a|aa)+$", f"'~(a|aa)+$': {NESTED}"),
        ("~(ab|a|b)*x", f"'~(ab|a|b)*x': {NESTED}"),
        # `.*` eight times against a 100-character name: minutes.
        ("~.*.*.*.*.*.*.*.*x", f"'~.*.*.*.*.*.*.*.*x': {TOO_OPEN}"),
    ],
)  # fmt: skip
def test_a_bad_hosts_pattern_is_refused_at_its_line(
    tmp_path: Path, hosts: str, problem: str
) -> None:
    f = _file(tmp_path, hosts)
    with pytest.raises(RuleError) as exc:
        load_rules([str(f)])
    assert str(exc.value) == f"{f}:2: play 'site': hosts: {problem}"


@pytest.mark.parametrize(
    "hosts",
    ["all", "nothing-here", "kvm[99]", "kvm[3:0]", "kvm[1:]", "kvm[-1]", "kvm0[1-3]",
     "kvm[a]", "web[01:20]", "~web[0-9]+:db", "kvm:&prod:!kvm03", "2001:db8::7",
     "~([a-z0-9-]+\\.)+example\\.com", "~(web|db)[0-9]+", "~(a+)++", "~(?>a+)+",
     "~(a|ab)+", "~(web|db)+[0-9]", "~.*web.*db.*[0-9]+"],
)  # fmt: skip
def test_good_patterns_load_whatever_they_select(tmp_path: Path, hosts: str) -> None:
    assert load_rules([str(_file(tmp_path, hosts))]).rules[0].hosts == hosts


@pytest.fixture
def inv(monkeypatch: pytest.MonkeyPatch) -> Inventory:
    monkeypatch.chdir(PATTERNS)
    return load_inventory("hosts.ini")


def test_a_regex_that_backtracks_exponentially_is_refused_not_run(tmp_path: Path) -> None:
    """`~(a+)+$` against a 40-character name tried 2**40 ways: `rules list` and `run`
    never ended. Refused at the rule file's line and in --limit, before any match."""
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        "all:\n  hosts:\n    " + "a" * 40 + "!:\n      ansible_connection: local\n",
        encoding="utf-8",
    )
    f = _file(tmp_path, "~(a+)+$")
    r = fleetmon("rules", "list", inventory, "--no-default-rules", "-r", f, timeout=60)
    assert (r.returncode, r.stderr) == (
        4,
        f"fleetmon: error: {f}:2: play 'site': hosts: '~(a+)+$': {NESTED}\n",
    )
    r = fleetmon("run", inventory, "--history", "none", "--no-rules", "-l", "~(a+)+$", timeout=60)
    assert r.returncode == 4
    assert r.stderr.endswith(f"--limit '~(a+)+$': '~(a+)+$': {NESTED}\n")


def test_rule_scopes_never_read_a_file(inv: Inventory) -> None:
    # limit.txt is there: --limit @limit.txt reads it, a rule scope does not.
    assert [h.name for h in inv.select("@limit.txt")] == ["xen01", "xen03", "kvm02"]
    with pytest.raises(InventoryError) as exc:
        inv.select_quiet("@limit.txt")
    assert str(exc.value) == f"@limit.txt: {NO_FILE}"
    assert "--limit" not in str(exc.value)


def test_a_part_that_cannot_match_selects_nothing_in_a_rule_scope(inv: Inventory) -> None:
    """Not strict: an index past the hosts (the inventory has fewer than the rule file's
    author knew) selects nothing, as a pattern naming nothing does; --limit still fails."""
    assert inv.select_quiet("kvm[99]") == []
    assert [h.name for h in inv.select_quiet("kvm[99]:xen01")] == ["xen01"]
    assert [h.name for h in inv.select_quiet("kvm:!kvm*[99]")] == [f"kvm0{i}" for i in range(1, 6)]
    assert inv.select_quiet("~web(") == []
    with pytest.raises(InventoryError, match="--limit 'kvm\\[99\\]'"):
        inv.select("kvm[99]")
    specs = [HostSpec(name="a", address="a", groups=("kvm",))]
    assert match_pattern("kvm[99]", specs) == []
    assert matcher(["a"], {"kvm": ["a"]})("kvm[99]") == set()


def test_report_judges_a_rule_whose_subscript_selects_nothing(tmp_path: Path) -> None:
    """The report of collected hosts is made, not an error after collecting them."""
    f = _file(tmp_path, "all[99]")
    r = fleetmon("report", NO_PSI, "--history", "none", "--format", "json", "-r", f)
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout)["hosts"][0]["findings"] == []


def test_run_refuses_an_at_file_before_connecting(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    f = _file(tmp_path, "@/dev/zero")
    raw, history = tmp_path / "raw", tmp_path / "h.sqlite"
    r = fleetmon(
        "run",
        inv,
        "-r",
        f,
        "--save-raw",
        raw,
        "--history",
        history,
        "--interval",
        "0.1",
        timeout=30,
    )
    assert r.returncode == 4
    assert r.stderr == f"fleetmon: error: {f}:2: play 'site': hosts: '@/dev/zero': {NO_FILE}\n"
    assert not raw.exists()
    assert not history.exists()
