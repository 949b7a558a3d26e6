"""Hostile inventories end at once with exit 4 naming file:line (issue 16): host ranges past
the host limit, hosts named over and over, and YAML alias bombs (in fleetmon_thresholds too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import measured

from fleetmon.errors import InventoryError, OptionError
from fleetmon.inventory import load_inventory
from fleetmon.inventory.load import max_hosts

HINT = "(FLEETMON_MAX_HOSTS sets another limit)"
MILLION = (
    f"'a[0:999999]' expands to 1,000,000 hosts, more than the 100,000 an inventory may have {HINT}"
)


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        (
            "ten.yaml",
            "all:\n  hosts:\n" + "".join(f"    {c}[0:999999]:\n" for c in "abcdefghij"),
            "3: all.hosts.a[0:999999]",
        ),
        (
            "ten.ini",
            "".join(f"{c}[0:999999] ansible_connection=local\n" for c in "abcdefghij"),
            "1: ungrouped.hosts.a[0:999999]",
        ),
    ],
)
def test_ten_ranges_of_a_million_hosts_are_refused_at_once(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    # 10 million hosts (6 GB) before the limit; refused before a name is built now.
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert len(text) < 400
    r = measured("inventory", path, "--list")
    assert r.returncode == 4
    assert r.stderr == f"fleetmon: error: {path}:{where}: {MILLION}\n"
    assert r.cpu_s < 2.0
    assert r.wall_s < 10.0
    assert r.maxrss_mb < 100


def _inventory(tmp_path: Path, text: str, name: str = "inv.ini") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_limit_counts_distinct_hosts(tmp_path: Path) -> None:
    # web1..web6 in two groups are six hosts, not twelve.
    path = _inventory(tmp_path, "[kvm]\nweb[1:6]\n[xen]\nweb[1:6]\n[db]\ndb[1:4]\n")
    assert len(load_inventory(path, limit=10).hosts) == 10
    with pytest.raises(InventoryError) as exc:
        load_inventory(path, limit=9)
    assert str(exc.value) == (
        f"{path}:6: db.hosts.db[1:4]: the inventory would have more than 9 hosts {HINT}"
    )
    with pytest.raises(InventoryError) as exc:
        load_inventory(path, limit=5)
    assert str(exc.value) == (
        f"{path}:2: kvm.hosts.web[1:6]: 'web[1:6]' expands to 6 hosts, more than the 5 an "
        f"inventory may have {HINT}"
    )


def test_hosts_named_over_and_over_are_refused(tmp_path: Path) -> None:
    # Each line names the same five hosts: the work grows, the fleet does not.
    path = _inventory(tmp_path, "x[1:5]\n" * 30)
    with pytest.raises(InventoryError) as exc:
        load_inventory(path, limit=5)
    assert str(exc.value) == (
        f"{path}:11: ungrouped.hosts.x[1:5]: hosts are named more than 50 times in all, "
        f"ten times the 5 hosts allowed {HINT}"
    )


def test_the_limit_comes_from_the_environment(tmp_path: Path) -> None:
    assert max_hosts({}) == 100_000
    assert max_hosts({"FLEETMON_MAX_HOSTS": " 250000 "}) == 250_000
    for bad in ("0", "-5", "1e6", "lots"):
        with pytest.raises(OptionError) as exc:
            max_hosts({"FLEETMON_MAX_HOSTS": bad})
        assert str(exc.value) == (
            f"FLEETMON_MAX_HOSTS={bad!r}: expected a number of hosts (at least 1)"
        )
    path = _inventory(tmp_path, "h[1:3] ansible_connection=local\n")
    r = measured("inventory", path, "--list", env={"FLEETMON_MAX_HOSTS": "2"})
    assert r.returncode == 4
    assert r.stderr == (
        f"fleetmon: error: {path}:1: ungrouped.hosts.h[1:3]: 'h[1:3]' expands to 3 hosts, more "
        f"than the 2 an inventory may have {HINT}\n"
    )
    assert measured("inventory", path, "--list", env={"FLEETMON_MAX_HOSTS": "3"}).returncode == 0


#: Nine levels of ten aliases: 10**9 strings if expanded (47 s and 3 GB before the cap).
LAUGHS = ['laughs0: &l0 ["> 1", "> 1", "> 1", "> 1", "> 1", "> 1", "> 1", "> 1", "> 1", "> 1"]'] + [
    f"laughs{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)
]
BOMB = "YAML aliases expand this value to more than 100000 nodes (an alias bomb?)"


def test_alias_bomb_in_fleetmon_thresholds_exits_4_quickly(tmp_path: Path) -> None:
    vars_text = "".join(f"    {line}\n" for line in LAUGHS)
    inventory = (
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n  vars:\n"
        f"{vars_text}    fleetmon_thresholds: {{host-steal: {{warning: *l8}}}}\n"
    )
    path = _inventory(tmp_path, inventory, "bomb.yaml")
    r = measured("run", path, "--interval", "0.2", "--format", "json", "-o", tmp_path / "out.json")
    assert r.returncode == 4
    assert r.stderr == f"fleetmon: error: {path}:10: {BOMB}\n"
    assert r.cpu_s < 2.0  # 47 s and 3 GB before the cap
    assert r.wall_s < 10.0
    assert r.maxrss_mb < 100
    assert not (tmp_path / "out.json").exists()


def test_alias_bomb_in_group_vars_exits_4_quickly(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    all_vars = tmp_path / "group_vars" / "all.yaml"
    all_vars.write_text(
        "\n".join(LAUGHS) + "\nfleetmon_thresholds: {host-steal: {warning: *l8}}\n",
        encoding="utf-8",
    )
    path = _inventory(
        tmp_path, "all:\n  hosts:\n    here:\n      ansible_connection: local\n", "inv.yaml"
    )
    r = measured("run", path, "--interval", "0.2", "--format", "json", "-o", tmp_path / "out.json")
    assert r.returncode == 4
    assert r.stderr == f"fleetmon: error: {all_vars}:5: {BOMB}\n"
    assert r.cpu_s < 2.0
    assert r.wall_s < 10.0
    assert r.maxrss_mb < 100
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    ("name", "text", "where", "shown"),
    [
        ("n.yaml", 'all:\n  hosts:\n    ok: {}\n    "ev\\x1b]52;c;QQ==\\x07il": {}\n', "4", "ev"),
        ("n.ini", "[g]\nok\nbad\x1b[2Jname\n", "3", "bad"),
        ("n.json", '{"all": {"hosts": {"a\\u2028b": {}}}}', "1", "a"),
    ],
)
def test_a_host_name_with_control_characters_is_refused_and_shown_escaped(
    tmp_path: Path, name: str, text: str, where: str, shown: str
) -> None:
    # A name is printed in every report and handed to ssh: an escape sequence or a line
    # break in it is an input error naming the place, and the error itself is escaped.
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    r = measured("inventory", path)
    assert r.returncode == 4
    assert r.stderr.startswith(f"fleetmon: error: {path}:{where}: ")
    assert "control characters are not allowed" in r.stderr or "unbalanced" in r.stderr
    assert f"'{shown}" in r.stderr
    assert r.stderr.endswith("\n")
    assert r.stderr[:-1].isprintable()  # one line, every control escaped
