"""Connection types: every Ansible connection loads; those fleetmon cannot use are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_oracle import run
from clirun import fleetmon

from fleetmon.inventory import load_inventory
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.vars import connection_kind

MIXED = """\
all:
  hosts:
    here:
      ansible_connection: local
    long-local:
      ansible_connection: ansible.builtin.local
    long-ssh:
      ansible_connection: ansible.builtin.ssh
    smart:
      ansible_connection: smart
  children:
    containers:
      hosts:
        box:
          ansible_connection: community.docker.docker
        box2:
          ansible_connection: docker
    windows:
      hosts:
        win:
          ansible_connection: winrm
          ansible_port: not-checked-for-a-skipped-host
    switches:
      hosts:
        sw:
          ansible_connection: ansible.netcommon.network_cli
        typo:
          ansible_connection: shh
"""


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ssh", "ssh"),
        ("smart", "ssh"),
        ("paramiko", "ssh"),
        ("ansible.builtin.paramiko_ssh", "ssh"),
        ("ansible.builtin.ssh", "ssh"),
        ("ansible.legacy.ssh", "ssh"),
        ("local", "local"),
        ("ansible.builtin.local", "local"),
        ("docker", "docker"),
        ("community.docker.docker", "community.docker.docker"),
        ("ansible.builtin.winrm", "ansible.builtin.winrm"),
    ],
)
def test_connection_kind(name: str, kind: str) -> None:
    assert connection_kind(name) == kind


def test_unusable_connections_are_skipped_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    # A skipped host's other variables are not its problem: winrm's port is never checked.
    path.write_text(MIXED.replace("not-checked-for-a-skipped-host", "5986"))
    inv = load_inventory(str(path))
    plan = {p.spec.name: p for p in plan_hosts(inv, list(inv.hosts.values()))}
    assert {n: p.spec.connection for n, p in plan.items() if p.skip is None} == {
        "here": "local",
        "long-local": "local",
        "long-ssh": "ssh",
        "smart": "ssh",
    }
    assert {n: p.skip for n, p in plan.items() if p.skip is not None} == {
        "box": "connection 'community.docker.docker': fleetmon collects over ssh or local only",
        "box2": "connection 'docker': fleetmon collects over ssh or local only",
        "win": "connection 'winrm': fleetmon collects over ssh or local only",
        "sw": "connection 'ansible.netcommon.network_cli': fleetmon collects over ssh or local "
        "only",
        "typo": "connection 'shh': fleetmon collects over ssh or local only (did you mean 'ssh'?)",
    }


def test_run_reports_skipped_hosts_and_limit_hides_them(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n"
        "  hosts:\n"
        "    here:\n"
        "      ansible_connection: ansible.builtin.local\n"
        "    box:\n"
        "      ansible_connection: community.docker.docker\n"
    )
    r = fleetmon("run", path, "--format", "json", "-q", "--no-rules")
    hosts = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert hosts["here"]["status"] == "ok"
    assert hosts["box"]["status"] == "skipped"
    assert hosts["box"]["error"] == (
        "connection 'community.docker.docker': fleetmon collects over ssh or local only"
    )
    assert r.returncode == 3  # a host not collected is UNKNOWN, as any other (--unreachable)
    r = fleetmon("run", path, "--format", "json", "-q", "--no-rules", "--limit", "!box")
    assert r.returncode == 0, r.stderr
    assert [h["name"] for h in json.loads(r.stdout)["hosts"]] == ["here"]
    r = fleetmon("run", path, "-q", "--no-rules")
    row = "box     box        skipped   connection 'community.docker.docker': fleetmon collects"
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("box ")] == [
        f"{row} over ssh or local only"
    ]


OVERRIDDEN = """\
[lan]
l1 ansible_connection=local ansible_ssh_common_args='-o ProxyJump=b1'
l2 ansible_connection=local
[lan:vars]
ansible_ssh_common_args='-o ProxyCommand="nc -x proxy:1080 %h %p"'
[dmz]
d1
[dmz:vars]
ansible_port=abc
"""


def test_an_unusable_value_skips_only_the_hosts_that_end_up_with_it(tmp_path: Path) -> None:
    """A ProxyCommand fleetmon cannot follow on `lan:vars` failed the whole inventory (exit
    4), though l1 overrides it, and a bad port on `dmz:vars` failed a run of `-l lan`: the
    value is checked per host on the value it ends up with, as Ansible uses it."""
    path = tmp_path / "ov.ini"
    path.write_text(OVERRIDDEN)
    r = fleetmon("inventory", path, "--host", "l1")
    oracle = run("ansible-inventory", "-i", path, "--host", "l1", home=tmp_path / "home")
    assert (r.returncode, oracle.returncode) == (0, 0), r.stderr + oracle.stderr
    assert json.loads(r.stdout) == json.loads(oracle.stdout)
    r = fleetmon("run", path, "-l", "lan", "--format", "json", "-q", "--no-rules")
    hosts = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert r.returncode == 3, r.stderr
    assert (hosts["l1"]["status"], hosts["l1"]["error"]) == ("ok", None)
    assert (hosts["l2"]["status"], hosts["l2"]["error"]) == (
        "skipped",
        f"ansible_ssh_common_args ({path}:5): ProxyCommand 'nc -x proxy:1080 %h %p' is not "
        "supported: use -o ProxyJump=[user@]bastion[:port] (or ProxyCommand='ssh -W %h:%p "
        "[user@]bastion')",
    )
    inv = load_inventory(str(path))
    assert [p.skip for p in plan_hosts(inv, [inv.hosts["d1"]])] == [
        f"ansible_port ({path}:9): expected an integer, got 'abc'"
    ]


def test_an_unusable_connection_is_the_reason_before_other_values(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(MIXED)  # winrm's port is no number: the connection is the reason
    inv = load_inventory(str(path))
    assert [p.skip for p in plan_hosts(inv, [inv.hosts["win"]])] == [
        "connection 'winrm': fleetmon collects over ssh or local only"
    ]


def test_an_unreadable_key_file_skips_only_its_host(tmp_path: Path) -> None:
    """One host_vars file naming a key rotated away stopped the whole run (exit 4, no host
    collected): that host is skipped now, naming the variable and where it is set."""
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n"
        "  hosts:\n"
        "    here:\n"
        "      ansible_connection: local\n"
        "    rotated:\n"
        "      ansible_host: 192.0.2.7\n"
        f"      ansible_ssh_private_key_file: {tmp_path}/id_gone\n"
    )
    r = fleetmon("run", path, "--format", "json", "-q", "--no-rules")
    assert r.returncode == 3, r.stderr
    hosts = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert (hosts["here"]["status"], hosts["here"]["error"]) == ("ok", None)
    assert (hosts["rotated"]["status"], hosts["rotated"]["error"]) == (
        "skipped",
        f"ansible_ssh_private_key_file ({path}:7): cannot read key file "
        f"'{tmp_path}/id_gone': No such file or directory",
    )


def test_a_host_deadline_not_past_the_interval_skips_that_host(tmp_path: Path) -> None:
    """A host's own fleetmon_timeout at or under the interval would time it out on every run:
    it is skipped with the variable's place, the others are collected."""
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n"
        "  hosts:\n"
        "    here:\n"
        "      ansible_connection: local\n"
        "      fleetmon_timeout: 30\n"
        "    hasty:\n"
        "      ansible_connection: local\n"
        "      fleetmon_timeout: 0.3\n"
    )
    r = fleetmon("run", path, "--interval", "0.3", "--format", "json", "-q", "--no-rules")
    hosts = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert r.returncode == 3, r.stderr
    assert (hosts["here"]["status"], hosts["here"]["error"]) == ("ok", None)
    assert (hosts["hasty"]["status"], hosts["hasty"]["error"]) == (
        "skipped",
        f"fleetmon_timeout ({path}:8): 0.3 s must exceed the interval between the samples"
        " (0.3 s), or the host always times out",
    )
    r = fleetmon("run", path, "--interval", "0.2", "--format", "json", "-q", "--no-rules")
    hosts = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert hosts["hasty"]["status"] != "skipped"  # 0.3 s past 0.2: tried (in time or not)
