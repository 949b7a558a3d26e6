"""Variable precedence, group_vars/host_vars files, and connection variables -> HostSpec."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from fleetmon.inventory import FLEETMON_VARS, FleetmonVars, fleetmon_vars, load_inventory
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.sshargs import config_file, proxy_jump
from fleetmon.inventory.vars import as_written, check_var, parse_bool, resolve_host
from fleetmon.model import HostSpec

DATA = Path(__file__).parent / "data" / "inventories"
PRECEDENCE = str(DATA / "precedence" / "inventory.yaml")

GV_CHILD = {"from_child": "gv-child-10", "dir_order": "second", "nested": True}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        # inventory host var < host_vars/h1.yml; group_vars/ beat every inventory group var.
        (
            "h1",
            {"layer": "host_vars", "from_all": "gv-all", "from_parent": "gv-parent", **GV_CHILD},
        ),
        # No host vars: group_vars/all (gv-all) beats the inventory's child group var; the
        # host_vars/h2/ folder is read in name order (b.yml last).
        (
            "h2",
            {
                "layer": "gv-all",
                "from_all": "gv-all",
                "tie": "aaa",
                "from_parent": "gv-parent",
                **GV_CHILD,
                "hv": "b",
            },
        ),
        # aaa and zzz have the same depth: zzz sorts later and wins; then group_vars/zzz.
        ("h3", {"layer": "gv-all", "from_all": "gv-all", "tie": "gv-zzz"}),
        # low has ansible_group_priority 10 > mid's 1: low wins despite its name.
        # group_vars/mid (no extension) is found before group_vars/mid.yml.
        (
            "h4",
            {
                "layer": "gv-all",
                "from_all": "gv-all",
                "tie": "low-priority-10",
                "tie_file": "no-extension",
            },
        ),
    ],
)
def test_precedence(host: str, expected: dict[str, Any]) -> None:
    inv = load_inventory(PRECEDENCE)
    assert dict(inv.hosts[host].vars) == expected
    assert list(inv.hosts[host].vars) == list(expected)  # insertion order follows the layers


def test_precedence_groups_and_origins() -> None:
    inv = load_inventory(PRECEDENCE)
    assert list(inv.hosts) == ["h2", "h3", "h4", "h1"]  # Ansible's breadth-first order
    assert (inv.groups["child"].depth, inv.groups["low"].priority) == (2, 10)
    assert "ansible_group_priority" not in inv.groups["low"].vars
    assert inv.groups["mid"].vars == {"tie": "mid", "tie_file": "no-extension"}
    assert inv.hosts["h1"].groups == ("child", "parent")
    origin = inv.origin("h1", "from_child")
    assert origin is not None
    assert (Path(origin.file).relative_to(DATA / "precedence"), origin.line) == (
        Path("group_vars/child/10-first.yml"),
        1,
    )
    origin = inv.origin("h2", "tie")
    assert origin is not None
    assert (Path(origin.file).name, origin.line, origin.path) == (
        "inventory.yaml",
        25,
        "all.children.aaa.vars.tie",
    )


def test_same_host_in_many_groups_is_one_host(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n"
        "  children:\n"
        "    a:\n"
        "      hosts:\n"
        "        h: {x: 1, y: 1}\n"
        "    b:\n"
        "      hosts:\n"
        "        h: {y: 2, z: 2}\n"
    )
    hosts = load_inventory(str(inv)).hosts
    assert list(hosts) == ["h"]
    assert hosts["h"].vars == {"x": 1, "y": 2, "z": 2}  # the later definition wins per key
    assert hosts["h"].groups == ("a", "b")


def test_dict_vars_are_replaced_not_merged(tmp_path: Path) -> None:
    # Ansible's default hash_behaviour=replace
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("fleetmon_thresholds: {a: 1, b: 2}\n")
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    h:\n      fleetmon_thresholds: {b: 3}\n")
    assert load_inventory(str(inv)).hosts["h"].vars == {"fleetmon_thresholds": {"b": 3}}


def test_vars_files_beside_an_ini_inventory(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "kvm.json").write_text('{"ansible_port": 2200}')
    (tmp_path / "host_vars" / "kvm02.yaml").write_text("ansible_port: 2202\n")
    inv = tmp_path / "hosts"
    inv.write_text("[kvm]\nkvm01\nkvm02 ansible_port=2299\n")
    hosts = load_inventory(str(inv)).hosts
    assert (hosts["kvm01"].port, hosts["kvm02"].port) == (2200, 2202)


def spec(**vars_: Any) -> HostSpec:
    return resolve_host("h1", vars_, ("g",))


def test_defaults() -> None:
    assert spec() == HostSpec(name="h1", address="h1", groups=("g",), vars={})


@pytest.mark.parametrize(
    ("vars_", "field", "value"),
    [
        ({"ansible_host": "192.0.2.5"}, "address", "192.0.2.5"),
        ({"ansible_host": "a", "ansible_ssh_host": "b"}, "address", "b"),  # the ssh alias wins
        ({"ansible_port": 2222}, "port", 2222),
        ({"ansible_port": "2222"}, "port", 2222),
        ({"ansible_ssh_port": 2200}, "port", 2200),
        ({"ansible_user": "ops"}, "user", "ops"),
        ({"ansible_ssh_private_key_file": "/k/id"}, "key_file", "/k/id"),
        ({"ansible_private_key_file": "/k/id2"}, "key_file", "/k/id2"),
        ({"ansible_connection": "local"}, "connection", "local"),
        ({"ansible_connection": "smart"}, "connection", "ssh"),
        ({"ansible_connection": "paramiko"}, "connection", "ssh"),
        ({"ansible_become": "yes"}, "become", True),
        ({"ansible_become": "False"}, "become", False),
        ({"ansible_become": 1}, "become", True),
        ({"ansible_become_user": "root"}, "become_user", "root"),
        ({"fleetmon_host_key_checking": False}, "host_key_checking", False),
        ({"ansible_host_key_checking": "no"}, "host_key_checking", False),
        (
            {"ansible_host_key_checking": False, "fleetmon_host_key_checking": True},
            "host_key_checking",
            True,
        ),
        # The ssh plugin's alias (fleetmon ignored it): the later of the two wins.
        ({"ansible_ssh_host_key_checking": "false"}, "host_key_checking", False),
        (
            {"ansible_host_key_checking": False, "ansible_ssh_host_key_checking": True},
            "host_key_checking",
            True,
        ),
        (
            {"ansible_host_key_checking": True, "ansible_ssh_host_key_checking": False},
            "host_key_checking",
            False,
        ),
        ({"ansible_ssh_common_args": "-o ProxyJump=bastion"}, "proxy_jump", "bastion"),
        ({"ansible_ssh_extra_args": "-J ops@bastion:2222"}, "proxy_jump", "ops@bastion:2222"),
        (
            {"ansible_ssh_common_args": "-J first", "ansible_ssh_extra_args": "-J second"},
            "proxy_jump",
            "first",  # ssh keeps the first value it obtains
        ),
        ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=no"}, "proxy_jump", None),
    ],
)
def test_connection_vars(vars_: dict[str, Any], field: str, value: object) -> None:
    assert getattr(spec(**vars_), field) == value


def test_key_file_expands_user() -> None:
    assert spec(ansible_ssh_private_key_file="~/.ssh/id").key_file == str(
        Path.home() / ".ssh" / "id"
    )


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        (["-o", "ProxyJump=j1"], "j1"),
        (["-oProxyJump=j1"], "j1"),
        (["-o", "proxyjump j1"], "j1"),
        (["-o", "ProxyJump=none"], None),
        (["-Jj1,j2"], "j1,j2"),
        (["-J", "u@j1:22"], "u@j1:22"),
        (["-o", "ProxyCommand=ssh -W %h:%p j1"], "j1"),
        (["-o", "ProxyCommand=ssh -q -W %h:%p -l ops -p 2222 j1"], "ops@j1:2222"),
        (["-o", "ProxyCommand=/usr/bin/ssh -W%h:%p u@j1"], "u@j1"),
        (["-o", "ProxyCommand=none"], None),
        (["-o", "ProxyJump=j1", "-o", "ProxyCommand=nc j2 22"], "j1"),
        (["-J"], None),
        ([], None),
    ],
)
def test_proxy_jump(args: list[str], jump: str | None) -> None:
    assert proxy_jump(args) == jump


@pytest.mark.parametrize("hop", ["root@127.0.0.1:abc", "j1:99999", "j1:0", "j0,[::1]:x"])
def test_a_jump_host_s_port_must_be_a_port(hop: str) -> None:
    """They failed only when connecting: "unexpected error: ValueError: invalid literal for
    int()", an OverflowError, a connection to port 0."""
    with pytest.raises(ValueError, match="expected a port from 1 to 65535"):
        proxy_jump(["-J", hop])


@pytest.mark.parametrize(
    "command",
    ["nc %h %p", "ssh j1 nc %h %p", "ssh -i key -W %h:%p j1", "ssh -W %h:22 j1", "ssh -W %h:%p"],
)
def test_unsupported_proxy_command(command: str) -> None:
    with pytest.raises(ValueError, match="is not supported: use -o ProxyJump="):
        proxy_jump(["-o", f"ProxyCommand={command}"])


@pytest.mark.parametrize(
    ("value", "result"),
    [
        (True, True),
        ("yes", True),
        ("On", True),
        ("1", True),
        ("t", True),
        ("y", True),
        (1, True),
        (False, False),
        ("no", False),
        ("OFF", False),
        ("0", False),
        ("f", False),
        (0, False),
    ],
)
def test_parse_bool(value: object, result: bool) -> None:
    assert parse_bool(value) is result


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ansible_port", "abc", "expected an integer, got 'abc'"),
        ("ansible_port", True, "expected an integer, got True"),
        ("ansible_port", 0, "expected a port number 1-65535, got 0"),
        ("ansible_host", "", "expected a non-empty string, got ''"),
        ("ansible_host", 5, "expected a non-empty string, got 5"),
        ("ansible_user", ["a"], "expected a non-empty string, got ['a']"),
        ("ansible_user", "root\nx", "control characters are not allowed, got 'root\\nx'"),
        ("ansible_host", "\x1b[2Jkvm", "control characters are not allowed, got '\\x1b[2Jkvm'"),
        ("ansible_become_user", "a\u2028b", "control characters are not allowed, got 'a\\u2028b'"),
        (
            "ansible_ssh_common_args",
            "-o ProxyJump=j\x00",
            "control characters are not allowed, got '-o ProxyJump=j\\x00'",
        ),
        ("ansible_become", "2", "expected a boolean (true/false, yes/no), got '2'"),
        ("fleetmon_host_key_checking", None, "expected a boolean (true/false, yes/no), got None"),
        ("ansible_connection", "", "expected a non-empty string, got ''"),
        ("ansible_group_priority", "high", "expected an integer, got 'high'"),
        ("fleetmon_timeout", 0, "expected a positive number of seconds, got 0"),
        ("fleetmon_timeout", "soon", "expected a positive number of seconds, got 'soon'"),
        (
            "fleetmon_output_cap",
            0,
            "expected a positive size in bytes (e.g. 16777216 or '16MiB'), got 0",
        ),
        ("fleetmon_virsh_uri", "", "expected a non-empty string, got ''"),
        (
            "fleetmon_host_key_check",
            True,
            "unknown fleetmon variable (did you mean 'fleetmon_host_key_checking'?)",
        ),
    ],
)
def test_check_var(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as e:
        check_var(name, value)
    assert str(e.value) == message


def test_ssh_args_may_span_lines() -> None:
    # A YAML literal block (`|`) puts each option on its own line: whitespace to ssh.
    check_var("ansible_ssh_common_args", "-o ProxyJump=j\n\t-o UserKnownHostsFile=/k\r\n")


def test_fleetmon_thresholds_is_the_rules_to_check() -> None:
    # A list skipped the host as an unusable connection value (exit 3): rules/overrides.py
    # refuses it, at its line, exit 4 (test_rules_eval).
    check_var("fleetmon_thresholds", [1])


def test_unknown_non_fleetmon_vars_are_anyones() -> None:
    check_var("ntp_server", {"any": "thing"})
    check_var("ansible_python_interpreter", "/usr/bin/python3")


def test_fleetmon_vars_typed() -> None:
    assert frozenset(FLEETMON_VARS) == {
        "fleetmon_hypervisor",
        "fleetmon_virsh_uri",
        "fleetmon_host_key_checking",
        "fleetmon_thresholds",
        "fleetmon_connect_timeout",
        "fleetmon_timeout",
        "fleetmon_output_cap",
        "fleetmon_site",
        "fleetmon_vm_of",
    }
    assert fleetmon_vars(spec()) == FleetmonVars()
    assert fleetmon_vars(
        spec(
            fleetmon_hypervisor="xen",
            fleetmon_virsh_uri="qemu+ssh://x/system",
            fleetmon_thresholds={"cpu": 1},
            fleetmon_connect_timeout="2.5",
            fleetmon_timeout=40,
            fleetmon_output_cap="16MiB",
            fleetmon_site="paris-1",
        )
    ) == FleetmonVars("xen", "qemu+ssh://x/system", {"cpu": 1}, 2.5, 40.0, 16 << 20, "paris-1")
    assert fleetmon_vars(spec(fleetmon_output_cap="512k")).output_cap_bytes == 512 << 10


@pytest.mark.parametrize(
    ("value", "message"),
    [
        *[
            (v, f"expected hypervisor/domain (a host of the inventory, its VM), got {v!r}")
            for v in ("kvm01", "kvm01/", "/web1", " /web1")
        ],
        (42, "expected a non-empty string, got 42"),
        ("", "expected a non-empty string, got ''"),
        ("kvm01/a\nb", "control characters are not allowed, got 'kvm01/a\\nb'"),
    ],
)
def test_a_fleetmon_vm_of_that_names_no_domain_is_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".") as e:
        check_var("fleetmon_vm_of", value)
    assert str(e.value) == message


def test_fleetmon_vm_of_names_a_hypervisor_and_its_domain(tmp_path: Path) -> None:
    """docs/METRICS.md and analyse/guests.py document it; the inventory refused it as an
    unknown fleetmon variable (exit 4)."""
    check_var("fleetmon_vm_of", "kvm01/web 1")
    path = tmp_path / "guests.ini"
    path.write_text("g1 fleetmon_vm_of=kvm01/g1\ng2 fleetmon_vm_of=kvm01\n")
    inv = load_inventory(str(path))
    assert inv.hosts["g1"].vars["fleetmon_vm_of"] == "kvm01/g1"
    # A value it cannot use skips its host, naming the file and line, as for any variable.
    assert [p.skip for p in plan_hosts(inv, [inv.hosts["g1"], inv.hosts["g2"]])] == [
        None,
        f"fleetmon_vm_of ({path}:2): expected hypervisor/domain (a host of the inventory,"
        " its VM), got 'kvm01'",
    ]


def test_ansible_ssh_timeout_is_the_connect_timeout_unless_fleetmon_s_own_is_set() -> None:
    # The ssh connection plugin's `timeout` option reads ansible_ssh_timeout (Ansible 2.11+).
    assert fleetmon_vars(spec(ansible_ssh_timeout=7)).connect_timeout_s == 7.0
    both = spec(ansible_ssh_timeout="7", fleetmon_connect_timeout="2.5")
    assert fleetmon_vars(both).connect_timeout_s == 2.5
    with pytest.raises(ValueError, match=r"^expected a positive number of seconds, got 'soon'$"):
        check_var("ansible_ssh_timeout", "soon")


# --- known_hosts and host-key checking from the ssh args --------------------------------

NO_CHECK = "-o StrictHostKeyChecking=no"


@pytest.mark.parametrize(
    ("vars_", "known_hosts", "checking"),
    [
        ({}, None, True),
        ({"ansible_ssh_common_args": "-o UserKnownHostsFile=/srv/kh"}, "/srv/kh", True),
        ({"ansible_ssh_extra_args": "-oUserKnownHostsFile=/srv/kh"}, "/srv/kh", True),
        ({"ansible_ssh_common_args": "-o 'userknownhostsfile /a /b'"}, "/a /b", True),
        ({"ansible_ssh_common_args": "-o UserKnownHostsFile=none"}, "none", True),
        (
            {
                "ansible_ssh_common_args": "-o UserKnownHostsFile=/first",
                "ansible_ssh_extra_args": "-o UserKnownHostsFile=/second",
            },
            "/first",  # ssh keeps the first value it obtains
            True,
        ),
        (
            {"ansible_ssh_common_args": f"-o UserKnownHostsFile=/dev/null {NO_CHECK}"},
            "/dev/null",
            False,
        ),
        ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=off"}, None, False),
        ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=yes"}, None, True),
        ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new"}, None, True),
        (
            {
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes",
                "ansible_ssh_extra_args": "-o StrictHostKeyChecking=no",
            },
            None,
            True,
        ),
        # ansible_host_key_checking=true adds nothing to ssh's command line: the arg decides.
        (
            {
                "ansible_host_key_checking": True,
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
            },
            None,
            False,
        ),
        (
            {
                "ansible_host_key_checking": False,
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes",
            },
            None,
            False,
        ),
        # Ansible puts ssh_args before its own `-o StrictHostKeyChecking=no`: ssh keeps
        # the first, so checking stays on (fleetmon turned it off).
        (
            {
                "ansible_host_key_checking": False,
                "ansible_ssh_args": "-o StrictHostKeyChecking=yes",
            },
            None,
            True,
        ),
        (
            {
                "ansible_ssh_host_key_checking": False,
                "ansible_ssh_args": "-C -o StrictHostKeyChecking=ask",
                "ansible_ssh_extra_args": NO_CHECK,
            },
            None,
            True,
        ),
        (
            {
                "ansible_ssh_args": NO_CHECK,
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes",
            },
            None,
            False,
        ),
        (
            {"ansible_host_key_checking": True, "ansible_ssh_args": "-o ControlPersist=60s"},
            None,
            True,
        ),
        # fleetmon's own variable is fleetmon's word: it beats the ssh args.
        (
            {
                "fleetmon_host_key_checking": True,
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
            },
            None,
            True,
        ),
    ],
)
def test_known_hosts_and_checking_from_ssh_args(
    vars_: dict[str, Any], known_hosts: str | None, checking: bool
) -> None:
    s = spec(**vars_)
    assert (s.known_hosts, s.host_key_checking) == (known_hosts, checking)


def test_known_hosts_file_expands_user() -> None:
    s = spec(ansible_ssh_common_args="-o UserKnownHostsFile=~/kh1 -o ProxyJump=j1")
    assert (s.known_hosts, s.proxy_jump) == (str(Path.home() / "kh1"), "j1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], None),
        (["-F", "/etc/fleet/ssh_config"], "/etc/fleet/ssh_config"),
        (["-F/etc/a", "-o", "X=1", "-F", "/etc/b"], "/etc/b"),  # ssh's getopt: the last
        (["-F", "none"], "none"),
        (["-F", "~/cfg"], str(Path.home() / "cfg")),
        (["-o", "-F", "-i", "-F"], None),  # the values of -o and -i
        (["-C", "-F"], ""),
    ],
)
def test_ssh_config_file_of_ssh_args(args: list[str], expected: str | None) -> None:
    assert config_file(args) == expected


def test_ssh_config_file_of_a_host() -> None:
    s = spec(ansible_ssh_common_args="-F ~/fleet.cfg -o UserKnownHostsFile=/k")
    assert (s.ssh_config, s.known_hosts) == (str(Path.home() / "fleet.cfg"), "/k")
    assert spec(ansible_ssh_common_args="-o UserKnownHostsFile=/k").ssh_config is None


def test_a_host_s_files_as_written_keep_their_tilde_for_a_worker() -> None:
    """A cluster worker expands `~` itself: its user's home, not the client's."""
    s = spec(
        ansible_ssh_private_key_file="~/.ssh/fleet",
        ansible_ssh_common_args="-F ~/fleet.cfg -o UserKnownHostsFile='~/kh /etc/kh'",
    )
    assert s.key_file == str(Path.home() / ".ssh/fleet")
    w = as_written(s)
    assert (w.key_file, w.ssh_config, w.known_hosts) == (
        "~/.ssh/fleet",
        "~/fleet.cfg",
        "~/kh /etc/kh",
    )
    assert dataclasses.replace(w, key_file=s.key_file, ssh_config=s.ssh_config,
                               known_hosts=s.known_hosts) == s  # fmt: skip
    # A file the variables do not name as they stand (ansible.cfg's key) is kept.
    cfg_key = dataclasses.replace(spec(), key_file="/etc/fleet/key")
    assert as_written(cfg_key) == cfg_key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-C -F", "-F without a file name: '-C -F'"),
        (
            "-o StrictHostKeyChecking=maybe",
            "StrictHostKeyChecking=maybe: expected one of yes, no, ask, accept-new, off",
        ),
        (
            "-o UserKnownHostsFile=",
            "UserKnownHostsFile without a file name: '-o UserKnownHostsFile='",
        ),
    ],
)
def test_bad_ssh_options_are_refused_at_their_variable(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as e:
        check_var("ansible_ssh_common_args", value)
    assert str(e.value) == message


def test_known_hosts_from_an_inventory_file(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(
        "all:\n"
        "  vars:\n"
        '    ansible_ssh_common_args: "-o UserKnownHostsFile=/etc/fleet/known_hosts"\n'
        "  hosts:\n"
        "    a:\n"
        "    b:\n"
        '      ansible_ssh_common_args: "-o StrictHostKeyChecking=bogus"\n'
    )
    loaded = load_inventory(str(inv))
    assert [p.skip for p in plan_hosts(loaded, list(loaded.hosts.values()))] == [
        None,
        f"ansible_ssh_common_args ({inv}:7): StrictHostKeyChecking=bogus:"
        " expected one of yes, no, ask, accept-new, off",
    ]
    inv.write_text(inv.read_text().replace("bogus", "no"))
    hosts = load_inventory(str(inv)).hosts
    assert (hosts["a"].known_hosts, hosts["a"].host_key_checking) == (
        "/etc/fleet/known_hosts",
        True,
    )
    assert (hosts["b"].known_hosts, hosts["b"].host_key_checking) == (None, False)
