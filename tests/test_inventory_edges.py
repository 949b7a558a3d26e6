"""What Ansible reads with a warning is read with a warning (file:line, did you mean), and
INI values become what Ansible makes of them; both checked against ansible-core."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ansible_oracle import inventory_list, run

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory, render_host, render_list

DATA = Path(__file__).parent / "data" / "inventories"
WARN = sorted(p.name for p in (DATA / "warn").iterdir())

INI_VALUES = (
    "h1 a=set() b=\"b'single'\" c=... d=1+2j e=(1,2) f={1,2} g=0x1F h=1_000 i=-3 j=+4 k=07"
    " l=u'x' m=r'\\d' n=[1,{2:3}] o=None p=true q=1e3 r='a b' s=not#comment"
    " t=\"{1: b'x', 'k': (1, ...)}\" u=frozenset() v=\"'{{ x }}'\"\n"
)
TOML = """\
[all.vars]
ntp = "192.0.2.1"

[kvm]
children = ["prod"]
vars = { fleetmon_hypervisor = "kvm", ports = [22, 2222] }

[kvm.hosts]
"kvm[01:03]" = { ansible_user = "ops" }
"kvm09:2222" = {}

[prod.hosts.kvm01]
rack = 7
"""
MIXED_YAML = """\
all:
  children:
    kvm:
      host:
        kvm01:
      hosts:
        kvm02:
      vars: ansible_user=ops
    web:
      hostz: web1
      hosts: web2
      children: db
xen: [xen01]
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", WARN)
def test_read_with_a_warning_as_ansible(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(DATA / "warn" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    expected = (tmp_path / name).read_text().splitlines()[0].removeprefix("# warn: ")
    inv = load_inventory(name)
    assert inv.warnings == (expected,)
    assert json.loads(render_list(inv)) == inventory_list(tmp_path / name, home=tmp_path / "home")


@pytest.mark.slow
def test_ini_values_mixed_yaml_and_toml_as_ansible(tmp_path: Path) -> None:
    (tmp_path / "values.ini").write_text(INI_VALUES)
    (tmp_path / "mixed.yml").write_text(MIXED_YAML)
    (tmp_path / "hosts.toml").write_text(TOML)
    for name in ("values.ini", "mixed.yml", "hosts.toml"):
        mine = json.loads(render_list(load_inventory(str(tmp_path / name)), show_secrets=True))
        assert mine == inventory_list(tmp_path / name, home=tmp_path / "home"), name
    hostvars = json.loads(render_list(load_inventory(str(tmp_path / "values.ini"))))
    assert hostvars["_meta"]["hostvars"]["h1"]["b"] == {"__ansible_unsafe": "single"}
    warnings = load_inventory(str(tmp_path / "mixed.yml")).warnings
    assert [w.removeprefix(f"{tmp_path}/mixed.yml:") for w in warnings] == [
        "4: all.children.kvm.host: unknown key: skipped, as Ansible skips it "
        "(did you mean 'hosts'?)",
        "8: all.children.kvm.vars: not a mapping: Ansible reads 'ansible_user=ops' as the name "
        "of a variable with no value (write `vars: {name: value}`)",
        "10: all.children.web.hostz: unknown key: skipped, as Ansible skips it "
        "(did you mean 'hosts'?)",
        "13: xen: not a group (a mapping with hosts, children or vars): skipped, as Ansible "
        "skips it; got a sequence",
    ]


REPEATED_YAML = """\
all:
  hosts:
    web01: {ansible_port: 2201, tier: front}
    web02:
  hosts:
    web01: &common {ansible_user: ops, rack: 1}
    web03:
    web01:
      <<: *common
      rack: 2
  vars: {ntp: a, ntp: b}
  children:
    kvm:
      hosts: {kvm01: {z: {p: 1, p: 2}}}
"""


@pytest.mark.slow
def test_host_shows_unsafe_text_plain_as_ansible(tmp_path: Path) -> None:
    """`ansible-inventory --host` prints `!unsafe` text as itself, nested too (`--list` marks
    it `__ansible_unsafe`); fleetmon's --host showed the --list markers."""
    (tmp_path / "u.yml").write_text(
        "all:\n  hosts:\n    h1:\n      a: !unsafe 'plain'\n"
        "      b: [!unsafe 'x{{y', {c: !unsafe 'z'}]\n      v: !vault |\n"
        "        $ANSIBLE_VAULT;1.1;AES256\n        3132\n"
    )
    (tmp_path / "values.ini").write_text(INI_VALUES)
    for name, host in (("u.yml", "h1"), ("values.ini", "h1")):
        mine = render_host(load_inventory(str(tmp_path / name)), host, show_secrets=True)
        r = run("ansible-inventory", "-i", tmp_path / name, "--host", host, home=tmp_path / "h")
        assert r.returncode == 0, r.stderr
        assert json.loads(mine) == json.loads(r.stdout), name
    shown = json.loads(render_host(load_inventory(str(tmp_path / "u.yml")), "h1"))
    assert (shown["a"], shown["b"]) == ("plain", ["x{{y", {"c": "z"}])


@pytest.mark.slow
def test_repeated_keys_keep_the_last_value_as_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yml").write_text(REPEATED_YAML)
    (tmp_path / "inv" / "group_vars").mkdir()
    (tmp_path / "inv" / "group_vars" / "kvm.yml").write_text("role: a\nrole: b\n")
    monkeypatch.chdir(tmp_path)
    inv = load_inventory("inv/hosts.yml")
    assert json.loads(render_list(inv)) == inventory_list(
        tmp_path / "inv" / "hosts.yml", home=tmp_path / "home"
    )
    said = "its last value is used, as Ansible uses it"
    assert inv.warnings == (
        f"inv/hosts.yml:5: duplicate key 'hosts': {said}",
        f"inv/hosts.yml:8: duplicate key 'web01': {said}",
        f"inv/hosts.yml:10: duplicate key 'rack': {said}",
        f"inv/hosts.yml:11: duplicate key 'ntp': {said}",
        f"inv/hosts.yml:14: duplicate key 'p': {said}",
        f"inv/group_vars/kvm.yml:2: duplicate key 'role': {said}",
    )


NOT_TEXT = [
    (
        "all:\n  children:\n    no:\n      hosts:\n        a:\n",
        "3: all.children.no: a group name must be a string (YAML reads no as the boolean "
        "false): quote it ('no':)",
        "Invalid empty/false group name provided: False",
    ),
    (
        "all:\n  children:\n    on:\n",
        "3: all.children.on: a group name must be a string (YAML reads on as the boolean "
        "true): quote it ('on':)",
        "expected a string but got <class 'bool'> for True",
    ),
    (
        "2024:\n  hosts:\n    a:\n",
        "1: 2024: a group name must be a string (YAML reads 2024 as a number): quote it ('2024':)",
        "Unable to add group 2024: Invalid group name supplied, expected a string",
    ),
    (
        "all:\n  hosts: 7\n",
        "2: all.hosts: a host name must be a string (YAML reads 7 as a number): quote it ('7')",
        'Invalid "hosts" entry for "all" group, requires a dictionary',
    ),
    (
        "all:\n  children: off\n",
        "2: all.children: a group name must be a string (YAML reads off as the boolean "
        "false): quote it ('off')",
        'Invalid "children" entry for "all" group, requires a dictionary',
    ),
    (
        "all:\n  hosts:\n    yes:\n",
        "3: all.hosts.yes: a host name must be a string (YAML reads yes as the boolean "
        "true): quote it ('yes':)",
        "Host pattern True must be a string.",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("text", "message", "ansible_says"), NOT_TEXT)
def test_names_yaml_reads_as_not_text_are_refused_as_ansible_refuses_them(
    text: str, message: str, ansible_says: str, tmp_path: Path
) -> None:
    (tmp_path / "inv.yml").write_text(text)
    with pytest.raises(InventoryError) as e:
        load_inventory(str(tmp_path / "inv.yml"))
    assert str(e.value) == f"{tmp_path}/inv.yml:{message}"
    # Ansible's yaml plugin refuses the file (its other plugins then fail on it too).
    r = run(
        "ansible-inventory",
        "-i",
        tmp_path / "inv.yml",
        "--list",
        home=tmp_path / "home",
        ANSIBLE_INVENTORY_ENABLED="yaml",
    )
    assert "Failed to parse inventory with 'yaml' plugin" in r.stderr
    assert ansible_says in " ".join(r.stderr.split())
    assert json.loads(r.stdout)["_meta"]["hostvars"] == {}


def test_group_names_ansible_warns_about(tmp_path: Path) -> None:
    (tmp_path / "h.ini").write_text("[k8s-master]\nm1\n[ok_name]\nn1\n[9lives]\nc1\n")
    assert load_inventory(str(tmp_path / "h.ini")).warnings == (
        "group names with characters other than letters, digits and _ (Ansible warns about "
        f"them; they are not usable as variable names in templates): 'k8s-master' "
        f"({tmp_path}/h.ini:1), '9lives' ({tmp_path}/h.ini:5)",
    )


def test_toml_errors_name_the_line_or_key(tmp_path: Path) -> None:
    cases = [
        ("[kvm]\nhosts = 1\n", "bad.toml: kvm.hosts: expected a table of hosts, got 1"),
        ("[kvm\n", "bad.toml:1: invalid TOML: Expected ']' at the end of a table declaration"),
        (
            "[kvm.hosts]\n'web[1:' = {}\n",
            "bad.toml: kvm.hosts.web[1:: host 'web[1:' ends in ':' (reserved for a port number)",
        ),
    ]
    for text, message in cases:
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(InventoryError) as e:
            load_inventory(str(tmp_path / "bad.toml"))
        assert str(e.value) == f"{tmp_path}/{message}"
