"""Loading YAML and INI inventories: structure, host order, INI values, ansible-inventory views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetmon.inventory import load_inventory, render_graph, render_host, render_list
from fleetmon.inventory.inisrc import parse_value
from fleetmon.inventory.load import detect_format
from fleetmon.inventory.values import Unsafe
from fleetmon.model import HostSpec

DATA = Path(__file__).parent / "data" / "inventories"
BASIC_ORDER = [
    "jump01",
    "kvm01",
    "kvm02",
    "kvm03",
    "xen-a",
    "xen-b",
    "xen-c",
    "web01",
    "web05",
    "web09",
]


@pytest.fixture(params=["basic.yaml", "basic.ini"])
def basic(request: pytest.FixtureRequest) -> str:
    return str(DATA / request.param)


def test_basic_hosts_in_ansible_order(basic: str) -> None:
    assert list(load_inventory(basic).hosts) == BASIC_ORDER


def test_basic_groups(basic: str) -> None:
    groups = load_inventory(basic).groups
    assert list(groups) == ["all", "ungrouped", "kvm", "prod", "xen", "web"]
    assert groups["all"].children == ("ungrouped", "kvm", "xen", "web")
    assert groups["ungrouped"].hosts == ("jump01",)
    assert groups["kvm"].children == ("prod",)
    assert groups["kvm"].hosts == ("kvm01", "kvm02", "kvm03")
    assert groups["web"].hosts == ("web01", "web05", "web09", "kvm03")
    assert groups["kvm"].vars == {"fleetmon_hypervisor": "kvm", "ansible_become": True}
    assert [groups[g].depth for g in groups] == [0, 1, 1, 2, 1, 1]


def test_basic_host_specs(basic: str) -> None:
    hosts = load_inventory(basic).hosts
    assert hosts["kvm01"] == HostSpec(
        name="kvm01",
        address="192.0.2.11",
        port=22,
        user="monitor",
        become=True,
        groups=("kvm", "prod"),
        vars={
            "ansible_user": "monitor",
            "fleetmon_hypervisor": "kvm",
            "ansible_become": True,
            "ansible_host": "192.0.2.11",
        },
    )
    # kvm02 is declared twice (range, then with a port): one host, variables merged.
    assert hosts["kvm02"].port == 2222
    assert hosts["kvm02"].address == "kvm02"
    # kvm03 is in kvm and web: groups unioned; kvm's vars apply.
    assert hosts["kvm03"].groups == ("kvm", "web")
    assert hosts["kvm03"].vars["fleetmon_hypervisor"] == "kvm"
    assert hosts["xen-b"].proxy_jump == "jump01"
    assert hosts["xen-b"].vars["fleetmon_hypervisor"] == "xen"
    assert hosts["jump01"].groups == ("ungrouped",)
    assert hosts["jump01"].vars == {
        "ansible_user": "monitor",
        "fleetmon_hypervisor": "auto",
        "ansible_host": "192.0.2.1",
    }
    assert hosts["web05"].become is False


def test_yaml_and_ini_resolve_to_the_same_fleet() -> None:
    a, b = load_inventory(str(DATA / "basic.yaml")), load_inventory(str(DATA / "basic.ini"))
    assert list(a.hosts.values()) == list(b.hosts.values())
    assert list(a.groups.values()) == list(b.groups.values())
    assert render_list(a) == render_list(b)
    assert render_graph(a) == render_graph(b)


def test_graph(basic: str) -> None:
    assert render_graph(load_inventory(basic)) == (
        "@all:\n"
        "  |--@ungrouped:\n"
        "  |  |--jump01\n"
        "  |--@kvm:\n"
        "  |  |--@prod:\n"
        "  |  |  |--kvm01\n"
        "  |  |--kvm01\n"
        "  |  |--kvm02\n"
        "  |  |--kvm03\n"
        "  |--@xen:\n"
        "  |  |--xen-a\n"
        "  |  |--xen-b\n"
        "  |  |--xen-c\n"
        "  |--@web:\n"
        "  |  |--web01\n"
        "  |  |--web05\n"
        "  |  |--web09\n"
        "  |  |--kvm03\n"
    )


def test_list_is_ansible_inventory_shaped(basic: str) -> None:
    text = render_list(load_inventory(basic))
    data = json.loads(text)
    assert list(data) == sorted(data)  # sort_keys, as ansible-inventory
    assert text.startswith('{\n    "_meta": {\n        "hostvars": {\n')
    assert data["all"] == {"children": ["ungrouped", "kvm", "xen", "web"]}
    assert data["kvm"] == {"children": ["prod"], "hosts": ["kvm01", "kvm02", "kvm03"]}
    assert data["ungrouped"] == {"hosts": ["jump01"]}
    assert data["_meta"]["hostvars"]["kvm02"] == {
        "ansible_become": True,
        "ansible_port": 2222,
        "ansible_user": "monitor",
        "fleetmon_hypervisor": "kvm",
    }
    assert set(data["_meta"]["hostvars"]) == set(BASIC_ORDER)


def test_list_drops_empty_ungrouped(tmp_path: Path) -> None:
    inv = tmp_path / "i.yaml"
    inv.write_text("kvm:\n  hosts:\n    kvm01:\n")
    data = json.loads(render_list(load_inventory(str(inv))))
    assert data == {
        "_meta": {"hostvars": {}, "profile": "inventory_legacy"},
        "all": {"children": ["ungrouped", "kvm"]},
        "kvm": {"hosts": ["kvm01"]},
    }
    assert (
        render_graph(load_inventory(str(inv)))
        == "@all:\n  |--@ungrouped:\n  |--@kvm:\n  |  |--kvm01\n"
    )


def test_host_view_and_secret_masking(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("kvm01 ansible_become_password=hunter2 ansible_user=ops\n")
    text = render_host(load_inventory(str(inv)), "kvm01")
    assert text == '{\n    "ansible_become_password": "********",\n    "ansible_user": "ops"\n}\n'
    assert "hunter2" not in render_list(load_inventory(str(inv)))


def test_only_secret_text_is_masked_and_show_secrets_shows_it(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  hosts:\n    kvm01:\n"
        "      use_vault: false\n      api_token:\n      db_password: !unsafe 'p{{w'\n"
        "      ssh_pass: s3cret\n      ansible_ssh_private_key_file: ~/.ssh/id\n"
        "      vault_ids: [1, 2]\n"
    )
    loaded = load_inventory(str(inv))
    assert json.loads(render_host(loaded, "kvm01")) == {
        "use_vault": False,
        "api_token": None,
        "db_password": "********",
        "ssh_pass": "********",
        "ansible_ssh_private_key_file": "~/.ssh/id",
        "vault_ids": [1, 2],
    }
    shown = json.loads(render_list(loaded, show_secrets=True))["_meta"]["hostvars"]["kvm01"]
    assert shown["ssh_pass"] == "s3cret"
    assert shown["db_password"] == {"__ansible_unsafe": "p{{w"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2222", 2222),
        ("-5", -5),
        ("1.5", 1.5),
        ("0x10", 16),
        ("007", "007"),  # not a Python literal: stays text
        ("True", True),
        ("False", False),
        ("None", None),
        ("yes", "yes"),  # INI is not YAML: only Python literals convert
        ("web-01", "web-01"),
        ("192.0.2.7", "192.0.2.7"),
        ("'a b'", "a b"),
        ('"quoted"', "quoted"),
        ("[1, 'x']", [1, "x"]),
        ("(1, 2)", [1, 2]),
        ("{'k': 1}", {"k": 1}),
        ("1+2j", "(1+2j)"),  # complex numbers are not variable types: Python's text of them
        ("b'x'", Unsafe("x")),  # Ansible decodes bytes but marks them unsafe
        ("set()", []),
        ("...", "..."),
        ("{'k': (1, b'y')}", {"k": [1, Unsafe("y")]}),
        ("True # a comment", True),
        ("x # not a comment here", "x # not a comment here"),
        ('"C:\\dir"', "C:\\dir"),  # invalid escape: no SyntaxWarning escapes
        ("-o ProxyJump=jump01", "-o ProxyJump=jump01"),
    ],
)
def test_ini_values_like_ansible(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_ini_inline_vars_are_shell_split(tmp_path: Path) -> None:
    inv = tmp_path / "hosts"
    inv.write_text(
        "[kvm]\n"
        "kvm01 motd='hello world' n=3 flag=True s=yes  # trailing comment\n"
        'kvm02:2201 ansible_host=192.0.2.2 path="/srv/a b"\n'
        "; a comment\n"
        "[kvm:vars]\n"
        "x = 42\n"
        "y=a=b\n"
    )
    hosts = load_inventory(str(inv)).hosts
    assert hosts["kvm01"].vars == {
        "x": 42,
        "y": "a=b",
        "motd": "hello world",
        "n": 3,
        "flag": True,
        "s": "yes",
    }
    assert (hosts["kvm02"].address, hosts["kvm02"].port) == ("192.0.2.2", 2201)
    assert hosts["kvm02"].vars["path"] == "/srv/a b"


def test_ini_children_may_come_before_their_group(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("[fleet:children]\nkvm\nxen\n[kvm]\nkvm01\n[xen:children]\n[fleet:vars]\nz=1\n")
    loaded = load_inventory(str(inv))
    assert loaded.groups["all"].children == ("ungrouped", "fleet")
    assert loaded.groups["fleet"].children == ("kvm", "xen")
    assert loaded.hosts["kvm01"].groups == ("fleet", "kvm")
    assert loaded.hosts["kvm01"].vars == {"z": 1}


def test_ini_host_in_ungrouped_and_a_group_is_not_ungrouped(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("solo\nboth\n[kvm]\nboth\n")
    loaded = load_inventory(str(inv))
    assert loaded.groups["ungrouped"].hosts == ("solo",)
    assert loaded.hosts["both"].groups == ("kvm",)


def test_yaml_short_forms_and_merge_keys(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n"
        "  children:\n"
        "    kvm:\n"
        "      hosts: kvm01\n"  # Ansible accepts a single name as a string
        "      children: prod\n"
        "    prod:\n"
        "      hosts:\n"
        "        p1: &common {ansible_user: ops, ansible_port: 2200}\n"
        "        p2:\n"
        "          <<: *common\n"
        "          ansible_port: 2201\n"
    )
    loaded = load_inventory(str(inv))
    assert loaded.groups["kvm"].children == ("prod",)
    assert list(loaded.hosts) == ["kvm01", "p1", "p2"]
    assert (loaded.hosts["p2"].user, loaded.hosts["p2"].port) == ("ops", 2201)
    assert loaded.hosts["p1"].groups == ("kvm", "prod")


def test_yaml_top_level_groups_without_all(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("kvm:\n  hosts:\n    kvm01:\nxen:\n  hosts:\n    xen01:\n    kvm01:\n")
    loaded = load_inventory(str(inv))
    assert loaded.groups["all"].children == ("ungrouped", "kvm", "xen")
    assert loaded.hosts["kvm01"].groups == ("kvm", "xen")


def test_json_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"all": {"hosts": {"kvm01": {"ansible_port": 2222}}}}))
    assert load_inventory(str(inv)).hosts["kvm01"].port == 2222


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("inv.yaml", "kvm01 a=1\n", "yaml"),  # the extension decides
        ("inv.yml", "", "yaml"),
        ("inv.json", "{}", "yaml"),
        ("hosts.ini", "all:\n  hosts:\n", "ini"),
        ("hosts.cfg", "kvm01\n", "ini"),
        ("hosts", "all:\n  hosts:\n    kvm01:\n", "yaml"),  # sniffed: a YAML mapping
        ("hosts", "kvm01\nkvm02\n", "ini"),
        ("hosts", "[kvm]\nkvm01\n", "ini"),
        ("hosts", "# c\nall:\n  hosts: [\n", "yaml"),  # broken YAML is reported as YAML
        ("hosts", "---\n- a\n", "yaml"),
    ],
)
def test_detect_format(name: str, text: str, fmt: str) -> None:
    assert detect_format(name, text) == fmt


def test_example_inventories_load() -> None:
    root = Path(__file__).parent.parent / "inventories"
    yaml_inv = load_inventory(str(root / "example-fleet.yaml"))
    ini_inv = load_inventory(str(root / "hosts.ini"))
    assert list(yaml_inv.hosts) == list(ini_inv.hosts)
    assert [h.address for h in yaml_inv.hosts.values()] == [
        h.address for h in ini_inv.hosts.values()
    ]
    for spec in yaml_inv.hosts.values():
        assert spec.address.startswith(("127.", "192.0.2.")) or spec.address.endswith(
            ".example.net"
        )


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    inv = tmp_path / "hosts"
    inv.write_bytes(b"\xef\xbb\xbf[kvm]\r\nkvm01 ansible_port=2222\r\n")
    assert load_inventory(str(inv)).hosts["kvm01"].port == 2222
