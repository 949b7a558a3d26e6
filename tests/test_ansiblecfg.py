"""ansible.cfg: which file Ansible uses, the settings fleetmon honours, and the run without
an inventory argument."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_oracle import environment, parse_debug, program, run
from clirun import fleetmon

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory
from fleetmon.inventory.ansiblecfg import AnsibleConfig, find_config, load_config, parse_config
from fleetmon.inventory.connect import plan_hosts


def _ansible_config_file(cwd: Path, home: Path) -> str:
    """The config file ansible-core itself picks (`ansible-config dump`'s CONFIG_FILE)."""
    env = environment(home)
    del env["ANSIBLE_CONFIG"]
    env["HOME"] = str(home)
    r = subprocess.run(
        [program("ansible-config"), "dump", "--only-changed"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return next(ln for ln in r.stdout.splitlines() if ln.startswith("CONFIG_FILE()")).split()[-1]


@pytest.mark.slow
def test_file_order_is_ansibles(tmp_path: Path) -> None:
    home, here = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    here.mkdir()
    (home / ".ansible.cfg").write_text("[defaults]\nremote_user = from-home\n")
    (here / "ansible.cfg").write_text("[defaults]\nremote_user = from-cwd ; a comment\n")
    env = {"HOME": str(home)}
    assert find_config(env, str(here)) == (str(here / "ansible.cfg"), [])
    assert _ansible_config_file(here, home) == str(here / "ansible.cfg")
    assert load_config(env, str(here)).remote_user == "from-cwd"
    # A world-writable folder's ansible.cfg could be anyone's: Ansible skips it, and warns.
    here.chmod(0o777)
    path, warnings = find_config(env, str(here))
    assert path == str(home / ".ansible.cfg")
    assert warnings == [
        f"{here}/ansible.cfg: ignored: the folder is world-writable (anyone could have written it)"
    ]
    assert _ansible_config_file(here, home) == str(home / ".ansible.cfg")
    # ANSIBLE_CONFIG comes first, a folder meaning its ansible.cfg.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    assert find_config({**env, "ANSIBLE_CONFIG": str(tmp_path)}, str(here)) == (
        str(tmp_path / "ansible.cfg"),
        [],
    )


CFG = """\
[defaults]
inventory = hosts.ini, /srv/other.yml
remote_user = monitor
remote_port = 2299
private_key_file = keys/id_ed25519
host_key_checking = False
forks = 25
timeout = 30
vault_password_file = ~/.vault_pass
vault_identity_list = dev@dev.txt, prod@prompt

[ssh_connection]
ssh_args = -o ControlPath=%h -o ProxyJump=bastion
"""


def test_settings(tmp_path: Path) -> None:
    cfg = parse_config(CFG, str(tmp_path / "ansible.cfg"), {"HOME": "/home/u"}, "/cwd")
    assert cfg == AnsibleConfig(
        file=str(tmp_path / "ansible.cfg"),
        inventory=(str(tmp_path / "hosts.ini"), "/srv/other.yml"),
        remote_user="monitor",
        remote_port=2299,
        private_key_file=str(tmp_path / "keys/id_ed25519"),
        host_key_checking=False,
        forks=25,
        timeout=30,
        vault_password_file=os.path.expanduser("~/.vault_pass"),
        vault_identity_list=("dev@dev.txt", "prod@prompt"),
        ssh_args="-o ControlPath=%h -o ProxyJump=bastion",  # raw: no % interpolation
    )
    env = {"ANSIBLE_REMOTE_USER": "ops", "ANSIBLE_INVENTORY": "a.ini,b.ini", "ANSIBLE_FORKS": "3"}
    cfg = parse_config(CFG, str(tmp_path / "ansible.cfg"), env, "/cwd")
    assert (cfg.remote_user, cfg.inventory, cfg.forks) == ("ops", ("/cwd/a.ini", "/cwd/b.ini"), 3)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[defaults]\nforks = many\n", {}, "ansible.cfg:2: [defaults] forks: expected an integer"),
        (
            "[defaults]\nremote_port = 70000\n",
            {},
            "ansible.cfg:2: [defaults] remote_port: expected a port number 1-65535, got 70000",
        ),
        (
            "[defaults]\n\nhost_key_checking = perhaps\n",
            {},
            "ansible.cfg:3: [defaults] host_key_checking: expected a boolean",
        ),
        (
            "[ssh_connection]\nssh_args = -o ProxyCommand='nc %h %p'\n",
            {},
            "ansible.cfg:2: [ssh_connection] ssh_args: ProxyCommand 'nc %h %p' is not supported",
        ),
        (
            "[ssh_connection]\nssh_common_args = -o ProxyCommand='nc %h %p'\n",
            {},
            "ansible.cfg:2: [ssh_connection] ssh_common_args: ProxyCommand 'nc %h %p' is not",
        ),
        ("[ssh_connection]\ntimeout = soon\n", {}, "ansible.cfg:2: [ssh_connection] timeout:"),
        (
            "[privilege_escalation]\nbecome = perhaps\n",
            {},
            "ansible.cfg:2: [privilege_escalation] become: expected a boolean",
        ),
        ("forks = 3\n", {}, "ansible.cfg:1: invalid ansible.cfg: File contains no section"),
        ("", {"ANSIBLE_TIMEOUT": "soon"}, "environment variable ANSIBLE_TIMEOUT: expected an"),
    ],
)
def test_bad_settings_name_their_line(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(InventoryError) as e:
        parse_config(text, "ansible.cfg", env, "/cwd")
    assert str(e.value).startswith(message)


def test_host_defaults_yield_to_host_variables(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "a\nb ansible_user=own ansible_port=22 ansible_ssh_args='-J other'\n"
    )
    cfg = parse_config(CFG, str(tmp_path / "ansible.cfg"), {}, str(tmp_path))
    inv = load_inventory(str(tmp_path / "hosts.ini"))
    a, b = (
        p.spec for p in plan_hosts(inv, list(inv.hosts.values()), (), None, cfg.host_defaults())
    )
    assert (a.user, a.port, a.proxy_jump, a.host_key_checking) == (
        "monitor", 2299, "bastion", False
    )  # fmt: skip
    assert a.key_file == str(tmp_path / "keys/id_ed25519")
    assert (b.user, b.port, b.proxy_jump) == ("own", 22, "other")
    assert "ansible_user" not in a.vars  # defaults are not the host's variables


def test_run_without_an_inventory_uses_the_configured_one(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
    )
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = hosts.yml\nforks = 0\n")
    env = {"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    r = fleetmon("inventory", "--graph", env=env)
    assert r.stdout == "@all:\n  |--@ungrouped:\n  |  |--here\n"
    r = fleetmon("run", "-q", "--no-rules", env=env)
    assert r.returncode == 4
    assert (
        r.stderr
        == f"fleetmon: error: {tmp_path}/ansible.cfg: forks must be greater than 0, got 0\n"
    )
    r = fleetmon("run", "-q", "--no-rules", "--format", "json", env={**env, "ANSIBLE_FORKS": "2"})
    assert r.returncode == 0, r.stderr
    r = fleetmon("run", "-q", env={"ANSIBLE_CONFIG": str(tmp_path / "none.cfg")})
    assert r.returncode == 4
    assert r.stderr.startswith("fleetmon: error: no inventory: name one (fleetmon run INVENTORY)")


def test_a_missing_configured_key_names_ansible_cfg(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("kvm01 ansible_host=192.0.2.1\n")
    (tmp_path / "ansible.cfg").write_text("[defaults]\nprivate_key_file = no-such-key\n")
    r = fleetmon(
        "run", tmp_path / "hosts.ini", env={"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    )
    assert r.returncode == 4
    assert r.stderr == (
        f"fleetmon: error: cannot read key file '{tmp_path}/no-such-key': No such file or "
        "directory (private_key_file of ansible.cfg or ANSIBLE_PRIVATE_KEY_FILE)\n"
    )


def _ansible_settings(cfg: Path, home: Path, **env: str) -> dict[str, Any]:
    """The settings ansible-core takes from an ansible.cfg: the base ones (DEFAULT_...) and
    the ssh connection plugin's (`ssh.NAME`), as `ansible-config dump --only-changed`."""
    found: dict[str, Any] = {}
    for kind in ("base", "connection"):
        r = run("ansible-config", "dump", "--only-changed", "-t", kind, "--format", "json",
                home=home, ANSIBLE_CONFIG=str(cfg), **env)  # fmt: skip
        assert r.returncode == 0, r.stderr
        for entry in json.loads(r.stdout):
            if "name" in entry:
                found[entry["name"]] = entry["value"]
            for plugin, options in entry.items():
                if plugin == "ssh":
                    found.update({f"ssh.{o['name']}": o["value"] for o in options})
    return found


QUOTED = """\
[defaults]
remote_user = "ops"
vault_identity_list = "dev@dev.txt", 'prod@prompt' , ci@'ci.txt'
[ssh_connection]
ssh_args = "-o ProxyJump=jump.example.com -o ServerAliveInterval=15"
"""


@pytest.mark.slow
def test_quoted_values_are_unquoted_as_ansible_unquotes_them(tmp_path: Path) -> None:
    """`remote_user = "ops"` logged in as `"ops"`, and a quoted ssh_args was one argument, so
    the jump host was `jump.example.com -o ServerAliveInterval=15`; Ansible's ensure_type
    unquotes a text setting of an ini file (a list's items one by one)."""
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(QUOTED)
    oracle = _ansible_settings(cfg, tmp_path / "home")
    mine = parse_config(QUOTED, str(cfg), {}, str(tmp_path))
    assert (mine.remote_user, oracle["DEFAULT_REMOTE_USER"], oracle["ssh.remote_user"]) == (
        "ops", "ops", "ops"
    )  # fmt: skip
    assert mine.ssh_args == oracle["ssh.ssh_args"]
    assert list(mine.vault_identity_list) == oracle["DEFAULT_VAULT_IDENTITY_LIST"]
    assert mine.vault_identity_list == ("dev@dev.txt", "prod@prompt", "ci@'ci.txt'")
    (tmp_path / "hosts.ini").write_text("k1\n")
    inv = load_inventory(str(tmp_path / "hosts.ini"))
    (k1,) = (p.spec for p in plan_hosts(inv, [inv.hosts["k1"]], (), None, mine.host_defaults()))
    assert (k1.user, k1.proxy_jump) == ("ops", "jump.example.com")
    # The environment's values are not unquoted (Ansible neither), a list's items are.
    env = {"ANSIBLE_REMOTE_USER": '"env"', "ANSIBLE_VAULT_IDENTITY_LIST": "'a@b'"}
    mine = parse_config(QUOTED, str(cfg), env, str(tmp_path))
    oracle = _ansible_settings(cfg, tmp_path / "home", **env)
    assert mine.remote_user == oracle["ssh.remote_user"] == '"env"'
    assert list(mine.vault_identity_list) == oracle["DEFAULT_VAULT_IDENTITY_LIST"] == ["a@b"]


SSH_CONNECTION = """\
[defaults]
timeout = 30
[ssh_connection]
timeout = 7
ssh_common_args = -o ProxyJump=bastion.example -o UserKnownHostsFile=/etc/fleet/known
ssh_extra_args = -o StrictHostKeyChecking=no
"""


@pytest.mark.slow
def test_ssh_connection_settings_are_the_ssh_plugins(tmp_path: Path) -> None:
    """`[ssh_connection] ssh_common_args = -o ProxyJump=bastion` took Ansible through the
    bastion while fleetmon dialled the host directly, and `[ssh_connection] timeout` (or
    ANSIBLE_SSH_TIMEOUT) was not the connect timeout: ansible-core's ssh plugin reads them."""
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(SSH_CONNECTION)
    oracle = _ansible_settings(cfg, tmp_path / "home")
    mine = parse_config(SSH_CONNECTION, str(cfg), {}, str(tmp_path))
    assert (mine.timeout, mine.ssh_common_args, mine.ssh_extra_args) == (
        oracle["ssh.timeout"], oracle["ssh.ssh_common_args"], oracle["ssh.ssh_extra_args"]
    ) == (7, SSH_CONNECTION.splitlines()[4][18:], "-o StrictHostKeyChecking=no")  # fmt: skip
    (tmp_path / "hosts.ini").write_text("k1\nk2 ansible_ssh_common_args='-J own'\n")
    inv = load_inventory(str(tmp_path / "hosts.ini"))
    k1, k2 = (p.spec for p in plan_hosts(inv, list(inv.hosts.values()), (), None,
                                         mine.host_defaults()))  # fmt: skip
    assert (k1.proxy_jump, k1.known_hosts, k1.host_key_checking) == (
        "bastion.example", "/etc/fleet/known", False
    )  # fmt: skip
    assert k2.proxy_jump == "own"  # the host's own variable wins, as in Ansible
    env = {"ANSIBLE_SSH_TIMEOUT": "9", "ANSIBLE_SSH_COMMON_ARGS": "-J env.example"}
    mine = parse_config(SSH_CONNECTION, str(cfg), env, str(tmp_path))
    oracle = _ansible_settings(cfg, tmp_path / "home", **env)
    assert (mine.timeout, mine.ssh_common_args) == (
        oracle["ssh.timeout"], oracle["ssh.ssh_common_args"]
    ) == (9, "-J env.example")  # fmt: skip


BECOME = "[privilege_escalation]\nbecome = True\nbecome_user = virt\n"


@pytest.mark.slow
def test_become_is_the_configured_one(tmp_path: Path) -> None:
    """`[privilege_escalation] become = True` (an unprivileged remote_user) had Ansible run
    everything through sudo, fleetmon ran virsh as the user (no VMs, or denied)."""
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(BECOME)
    oracle = _ansible_settings(cfg, tmp_path / "home")
    mine = parse_config(BECOME, str(cfg), {}, str(tmp_path))
    assert (mine.become, mine.become_user) == (
        oracle["DEFAULT_BECOME"], oracle["DEFAULT_BECOME_USER"]
    ) == (True, "virt")  # fmt: skip
    (tmp_path / "hosts.ini").write_text("k1\nk2 ansible_become=false\n")
    inv = load_inventory(str(tmp_path / "hosts.ini"))
    k1, k2 = (p.spec for p in plan_hosts(inv, list(inv.hosts.values()), (), None,
                                         mine.host_defaults()))  # fmt: skip
    assert (k1.become, k1.become_user, k2.become) == (True, "virt", False)
    env = {"ANSIBLE_BECOME": "no"}
    mine = parse_config(BECOME, str(cfg), env, str(tmp_path))
    assert mine.become is _ansible_settings(cfg, tmp_path / "home", **env)["DEFAULT_BECOME"]
    assert mine.become is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # Ansible reads any quoted boolean as false (checking off): refused, not guessed.
        (
            'host_key_checking = "True"',
            "ansible.cfg:2: [defaults] host_key_checking: expected a boolean (true/false, "
            "yes/no), got '\"True\"': write it without quotes",
        ),
        ("remote_port = '22'", "ansible.cfg:2: [defaults] remote_port: expected an integer"),
    ],
)
def test_quoted_values_ansible_does_not_unquote_are_refused(line: str, message: str) -> None:
    with pytest.raises(InventoryError) as e:
        parse_config(f"[defaults]\n{line}\n", "ansible.cfg", {}, "/cwd")
    assert str(e.value) == message or str(e.value).startswith(message)


def test_an_empty_quoted_value_is_no_value() -> None:
    cfg = parse_config("[defaults]\nremote_user = ''\n", "ansible.cfg", {}, "/cwd")
    assert cfg.remote_user is None


HKC_HOSTS = """\
[k]
k1 ansible_ssh_host_key_checking=false
k2 ansible_host_key_checking=false
k3 ansible_host_key_checking=false ansible_ssh_host_key_checking=true
k4 ansible_host_key_checking=true ansible_ssh_host_key_checking=false
k5
[g]
k6 ansible_host_key_checking=true
[g:vars]
ansible_ssh_host_key_checking=false
"""
HKC_LOOKUP = (
    "msg={{ lookup('config', 'host_key_checking', plugin_type='connection', plugin_name='ssh') }}"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cfg", "env"),
    [
        ("", {}),
        ("[defaults]\nhost_key_checking = False\n[ssh_connection]\nhost_key_checking = True\n", {}),
        ("[ssh_connection]\nhost_key_checking = False\n[defaults]\nhost_key_checking = True\n", {}),
        ("[ssh_connection]\nhost_key_checking = False\n", {"ANSIBLE_HOST_KEY_CHECKING": "True"}),
        (
            "",
            {"ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_SSH_HOST_KEY_CHECKING": "True"},
        ),
        ("", {"ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_SSH_HOST_KEY_CHECKING": "False"}),
    ],
)
def test_host_key_checking_from_every_source_ansible_reads(
    tmp_path: Path, cfg: str, env: dict[str, str]
) -> None:
    """ansible_ssh_host_key_checking, ANSIBLE_SSH_HOST_KEY_CHECKING and `[ssh_connection]
    host_key_checking` were ignored (keys checked where Ansible does not): the ssh plugin's
    option as Ansible resolves it, vars over environment over file, the later of each."""
    (tmp_path / "hosts.ini").write_text(HKC_HOSTS)
    config = tmp_path / "ansible.cfg"
    config.write_text(cfg)
    r = run("ansible", "all", "-i", "hosts.ini", "-o", "-m", "ansible.builtin.debug",
            "-a", HKC_LOOKUP, home=tmp_path / "home", cwd=tmp_path,
            ANSIBLE_CONFIG=str(config), **env)  # fmt: skip
    oracle = parse_debug(r.stdout)
    assert len(oracle) == 6, r.stdout + r.stderr
    defaults = parse_config(cfg, str(config), env, str(tmp_path)).host_defaults()
    inv = load_inventory(str(tmp_path / "hosts.ini"))
    plans = plan_hosts(inv, list(inv.hosts.values()), (), None, defaults)
    assert {p.spec.name: p.spec.host_key_checking for p in plans} == oracle
