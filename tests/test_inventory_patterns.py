"""Host patterns (--limit) with Ansible's semantics (fleetmon.inventory.patterns)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_oracle import run

from fleetmon.errors import InventoryError
from fleetmon.inventory import Inventory, load_inventory
from fleetmon.inventory.patterns import match_pattern, order_patterns, split_patterns

DIR = Path(__file__).parent / "data" / "inventories" / "patterns"
XEN = ["xen01", "xen02", "xen03"]
WEB = ["web1.example.net", "web2.example.net"]
KVM = ["kvm01", "kvm02", "kvm03", "kvm04", "kvm05"]
ALL = XEN + WEB + KVM


@pytest.fixture
def inv(monkeypatch: pytest.MonkeyPatch) -> Inventory:
    monkeypatch.chdir(DIR)  # @file paths and error messages relative to the data folder
    return load_inventory("hosts.ini")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ALL),
        ("all", ALL),
        ("*", ALL),
        ("kvm", KVM),
        ("prod", ["xen01", *KVM]),  # a group with a child group: its hosts and the child's
        ("kvm03", ["kvm03"]),
        ("web1.example.net", ["web1.example.net"]),
        ("kvm03:xen02", ["xen02", "kvm03"]),  # selections keep the inventory's order
        ("kvm03,xen02", ["xen02", "kvm03"]),
        ("kvm03, xen02", ["xen02", "kvm03"]),
        ("kvm:!kvm03", ["kvm01", "kvm02", "kvm04", "kvm05"]),
        ("!kvm03:kvm", ["kvm01", "kvm02", "kvm04", "kvm05"]),  # exclusions are applied last
        ("prod:&web", ["kvm01"]),
        ("&kvm", KVM),  # only intersections: from all
        ("!xen*", WEB + KVM),
        ("prod,&kvm,!kvm01,!kvm02", ["kvm03", "kvm04", "kvm05"]),
        ("kvm*", KVM),
        ("web?.example.net", WEB),
        ("*.example.net", WEB),
        ("kvm0[1-3]:kvm05", ["kvm05"]),  # Ansible: a subscript of 'kvm0' (none), not a glob
        ("kvm[1-2]", ["kvm02", "kvm03"]),  # the old dash subscript, still read (warning)
        ("kvm[2:0]", ["kvm03"]),  # Ansible's [x:0] is host x
        ("~kvm0[12]", ["kvm01", "kvm02"]),
        ("~web", ["web1.example.net", "web2.example.net", "kvm01"]),  # re.match: group web too
        ("~.*[13]$", ["xen01", "xen03", "kvm01", "kvm03"]),
        ("kvm[0]", ["kvm01"]),
        ("kvm[-1]", ["kvm05"]),
        ("kvm[1:3]", ["kvm02", "kvm03", "kvm04"]),  # Ansible subscripts are inclusive
        ("kvm[3:]", ["kvm04", "kvm05"]),
        # A glob's hosts are counted each time found (group kvm's, then by name), as Ansible.
        ("kvm*[7]", ["kvm03"]),
        ("kvm*[-6]", ["kvm05"]),
        ("kvm*[4:5]", ["kvm01", "kvm05"]),
        ("@limit.txt", ["xen01", "xen03", "kvm02"]),
        ("@limit.txt:!kvm02", ["xen01", "xen03"]),
    ],
)
def test_select(inv: Inventory, pattern: str | None, expected: list[str]) -> None:
    assert [h.name for h in inv.select(pattern)] == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "kvmm",
            "hosts.ini: --limit 'kvmm': 'kvmm' matches no host or group (did you mean 'kvm'?)",
        ),
        ("db*", "hosts.ini: --limit 'db*': 'db*' matches no host or group"),
        ("xen:&kvm", "hosts.ini: --limit 'xen:&kvm' selects no hosts"),
        ("xen01:!prod", "hosts.ini: --limit 'xen01:!prod' selects no hosts"),
        ("", "hosts.ini: --limit '' is empty"),
        (" , ", "hosts.ini: --limit ' , ' is empty"),
        (
            "~web(",
            "hosts.ini: --limit '~web(': '~web(' is not a valid pattern "
            "(missing ), unterminated subpattern at position 3)",
        ),
        (
            "kvm[7]",
            "hosts.ini: --limit 'kvm[7]': 'kvm[7]': index 7 is out of range (kvm has 5 hosts)",
        ),
        (
            "kvm*[10]",
            "hosts.ini: --limit 'kvm*[10]': 'kvm*[10]': index 10 is out of range (kvm* finds "
            "10 hosts, counting each time one is found: 5 distinct)",
        ),
        ("@nowhere.txt", "nowhere.txt: cannot read limit file: No such file or directory"),
        # Nothing to exclude or intersect with: the run would reach all of kvm, or all hosts.
        (
            "kvm:!",
            "hosts.ini: --limit 'kvm:!': '!' with no pattern after it "
            "(write !PATTERN to exclude the hosts PATTERN selects)",
        ),
        (
            "!",
            "hosts.ini: --limit '!': '!' with no pattern after it "
            "(write !PATTERN to exclude the hosts PATTERN selects)",
        ),
        (
            "kvm,&",
            "hosts.ini: --limit 'kvm,&': '&' with no pattern after it "
            "(write &PATTERN to keep only the hosts PATTERN selects)",
        ),
        (
            "kvm0[1-3]",
            "hosts.ini: --limit 'kvm0[1-3]': 'kvm0[1-3]' matches no host or group "
            "(did you mean 'kvm03'?)",
        ),
    ],
)
def test_bad_limit(inv: Inventory, pattern: str, message: str) -> None:
    with pytest.raises(InventoryError) as e:
        inv.select(pattern)
    assert str(e.value) == message


def test_parts_that_match_nothing_are_warnings(inv: Inventory) -> None:
    warnings: list[str] = []
    assert [h.name for h in inv.select("kvm:!kvm99", warnings.append)] == KVM
    assert [h.name for h in inv.select("@limit-bad.txt", warnings.append)] == ["kvm02"]
    assert [h.name for h in inv.select("kvm[0-1]", warnings.append)] == ["kvm01", "kvm02"]
    assert warnings == [
        "hosts.ini: --limit 'kvm:!kvm99': 'kvm99' matches no host or group "
        "(did you mean 'kvm'?); ignored",
        "limit-bad.txt:2: 'kvm99' matches no host or group (did you mean 'kvm'?); ignored",
        "'kvm[0-1]': use [x:y] inclusive subscripts ([x-y] is deprecated)",
    ]


def test_select_quiet_allows_nothing(inv: Inventory) -> None:
    assert inv.select_quiet("nothing-here") == []
    assert inv.select_quiet("xen:&kvm") == []
    assert [h.name for h in inv.select_quiet("web")] == [*WEB, "kvm01"]


def test_match_pattern_over_specs(inv: Inventory) -> None:
    specs = [inv.hosts[n] for n in ("kvm01", "kvm02", "xen01", "web1.example.net")]
    assert match_pattern("kvm", specs) == ["kvm01", "kvm02"]
    assert match_pattern("prod:!kvm02", specs) == ["kvm01", "xen01"]
    assert match_pattern("all:&web", specs) == ["kvm01", "web1.example.net"]
    assert match_pattern("~.*0[2]", specs) == ["kvm02"]
    assert match_pattern("nothing", specs) == []


@pytest.mark.parametrize(
    ("pattern", "parts"),
    [
        ("a:b", ["a", "b"]),
        ("a,b:c", ["a", "b:c"]),  # with commas, colons are not separators
        ("kvm:!kvm07:&prod", ["kvm", "!kvm07", "&prod"]),
        ("web[1:3]:db", ["web[1:3]", "db"]),
        ("web[1:3]", ["web[1:3]"]),
        ("host:22", ["host:22"]),  # an address with a port is one pattern
        ("2001:db8::1", ["2001:db8::1"]),
        (" a , b ", ["a", "b"]),
        ("a:b,c", ["a:b", "c"]),
        ("~web[", ["~web"]),  # as Ansible's split: a lone '[' is dropped
        # Ansible's parse_address decides what is one address: full IPv6 too, not `kvm[0]:22`.
        ("2001:db8:0:0:0:0:0:7", ["2001:db8:0:0:0:0:0:7"]),
        ("0:0:0:0:0:ffff:192.0.2.1", ["0:0:0:0:0:ffff:192.0.2.1"]),
        ("[2001:db8:0:0:0:0:0:7]:22", ["[2001:db8:0:0:0:0:0:7]:22"]),
        ("2001:db8::[1:f]", ["2001:db8::[1:f]"]),
        ("1:2:3:4:5:6:7", ["1", "2", "3", "4", "5", "6", "7"]),
        ("kvm[0]:22", ["kvm[0]", "22"]),
        ("web[a:c]:22", ["web[a:c]:22"]),
        ("web-:22", ["web-", "22"]),
    ],
)
def test_split_patterns(pattern: str, parts: list[str]) -> None:
    assert split_patterns(pattern) == parts


IPV6 = "all:\n  hosts:\n    '2001:db8:0:0:0:0:0:7':\n    '2001:db8::9':\n    web1:\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "pattern",
    ["2001:db8:0:0:0:0:0:7", "2001:db8::9", "2001:db8:0:0:0:0:0:7,web1", "web1:2001:db8::9"],
)
def test_an_ipv6_host_is_one_pattern_as_ansible_reads_it(pattern: str, tmp_path: Path) -> None:
    (tmp_path / "v6.yml").write_text(IPV6)
    r = run("ansible", "-i", tmp_path / "v6.yml", "--list-hosts", pattern, home=tmp_path)
    listed = r.stdout.split("\n", 1)[1].split()  # after "  hosts (N):"
    inv = load_inventory(str(tmp_path / "v6.yml"))
    assert {h.name for h in inv.select(pattern)} == set(listed)


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["!", "kvm:!", "kvm:&", "kvm,!"])
def test_a_bare_operator_fails_as_in_ansible(inv: Inventory, pattern: str, tmp_path: Path) -> None:
    r = run("ansible", "-i", DIR / "hosts.ini", "all", "-l", pattern, "--list-hosts", home=tmp_path)
    assert r.returncode != 0
    assert "string index out of range" in r.stdout + r.stderr
    with pytest.raises(InventoryError, match="with no pattern after it"):
        inv.select(pattern)


def test_order_patterns() -> None:
    assert order_patterns(["!a", "b", "&c", "d", "!e"]) == ["b", "d", "&c", "!a", "!e"]
    assert order_patterns(["!a"]) == ["all", "!a"]


def test_all_subscripts_follow_alls_own_hosts_first(tmp_path: Path) -> None:
    # ansible-core 2.19 answers w1 and w0 here: `all` lists its own hosts before its groups'.
    (tmp_path / "o.ini").write_text("[web]\nw2\nw1\n[all]\nw1\nw0\n")
    inv = load_inventory(str(tmp_path / "o.ini"))
    assert [h.name for h in inv.select("all[0]")] == ["w1"]
    assert [h.name for h in inv.select("all[1]")] == ["w0"]
