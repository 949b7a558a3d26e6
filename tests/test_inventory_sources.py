"""Inventory sources as Ansible takes them: folders, several sources, scripts, `--list` JSON,
host lists, empty inventories; folders and precedence across sources checked against
ansible-core itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from ansible_oracle import connections, environment, inventory_list, program
from clirun import fleetmon

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory, render_graph, render_list, scriptrun
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.template import Renderer


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


FOLDER = {
    "10-web.ini": "[web]\nweb1\nweb2 http_port=8080\n[web:vars]\nrole=web\n",
    "20-db.yml": "db:\n  hosts:\n    db1:\n  vars:\n    role: db\n",
    "sub/30-more.ini": "[web]\nweb3\n",
    "group_vars/web.yml": "from_group_vars: yes\n",
    "host_vars/db1.yml": "db_port: 5432\n",
    "00-notes.md": "[nope]\nnot-a-host\n",
    "05-readme.txt": "not-a-host\n",
    "06-old.ini~": "[web]\nbackup-host\n",
    "07-ansible.cfg": "[defaults]\n",
    "08-x.retry": "retry-host\n",
    ".hidden.ini": "[web]\nhidden-host\n",
}


@pytest.mark.slow
def test_folder_as_ansible_reads_it(tmp_path: Path) -> None:
    _write(tmp_path / "inv", FOLDER)
    inv = load_inventory(str(tmp_path / "inv"))
    assert list(inv.hosts) == ["web1", "web2", "web3", "db1"]
    assert inv.hosts["web1"].vars == {"role": "web", "from_group_vars": True}
    assert inv.hosts["db1"].vars == {"role": "db", "db_port": 5432}
    oracle = inventory_list(tmp_path / "inv", home=tmp_path / "home")
    assert json.loads(render_list(inv)) == oracle


@pytest.mark.slow
def test_several_sources_merge_with_ansible_precedence(tmp_path: Path) -> None:
    # Each source's group_vars in turn (Ansible's vars plugins loop over the sources outside
    # the groups): b's group_vars/prod beats a's group_vars/web although web is prod's child.
    _write(
        tmp_path,
        {
            "a/hosts.ini": "[web]\nweb1 x=host\nweb2\n[prod:children]\nweb\n[all:vars]\nz=inv\n",
            "a/group_vars/web.yml": "y: a-web\nz: a-web\nw: a-web\n",
            "a/group_vars/all.yml": "y: a-all\n",
            "b/hosts.yml": "web:\n  hosts:\n    web2:\n      x: b-host\n    web3:\n",
            "b/group_vars/all.yml": "y: b-all\n",
            "b/group_vars/prod.yml": "w: b-prod\n",
            "b/host_vars/web1.yml": "x: b-host-vars\n",
        },
    )
    sources = [str(tmp_path / "a" / "hosts.ini"), str(tmp_path / "b" / "hosts.yml")]
    inv = load_inventory(sources)
    assert inv.hosts["web1"].vars == {"z": "a-web", "y": "a-web", "w": "b-prod", "x": "b-host-vars"}
    assert inv.path == ",".join(sources)
    oracle = inventory_list(*sources, home=tmp_path / "home")
    assert json.loads(render_list(inv)) == oracle


@pytest.mark.slow
def test_the_current_folders_vars_are_the_playbook_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ansible` and `ansible-inventory` read the current folder's group_vars/ and
    host_vars/ (the playbook folder's) above each source's own: the usual project, an
    ansible.cfg and vars at the top, inventories below. Before, fleetmon read only the
    sources' and connected kvm01 as inv_user to 127.0.0.1:22. The project's own folder is
    also the second source's: Ansible reads its files at both levels."""
    _write(
        tmp_path / "proj",
        {
            "inventories/prod/hosts": "[kvm]\nkvm01 ansible_host=127.0.0.1\nkvm02\n",
            "inventories/prod/group_vars/all.yml": "ansible_user: inv_user\nz: prod-all\n",
            "inventories/prod/group_vars/kvm.yml": "y: prod-kvm\nw: prod-kvm\n",
            "inventories/prod/host_vars/kvm02.yml": "x: prod-host\n",
            "extra.ini": "[web]\nweb1\n[kvm]\nkvm02\n",
            "group_vars/all.yml": "ansible_user: monitor\nansible_port: 2299\ny: play-all\n",
            "group_vars/kvm.yml": "w: play-kvm\n",
            "host_vars/kvm01.yml": "ansible_host: 127.0.0.2\n",
            "host_vars/kvm02.yml": "x: play-host\n",
        },
    )
    proj = tmp_path / "proj"
    monkeypatch.chdir(proj)
    for sources in (["inventories/prod/hosts"], ["inventories/prod/hosts", "extra.ini"]):
        inv = load_inventory(sources)
        oracle = inventory_list(*sources, home=tmp_path / "home", cwd=proj)
        assert json.loads(render_list(inv)) == oracle
    kvm01 = load_inventory("inventories/prod/hosts").hosts["kvm01"]
    assert (kvm01.address, kvm01.port, kvm01.user) == ("127.0.0.2", 2299, "monitor")
    assert (kvm01.vars["w"], kvm01.vars["y"]) == ("play-kvm", "prod-kvm")
    monkeypatch.chdir(tmp_path)  # elsewhere: only the sources' own
    kvm01 = load_inventory("proj/inventories/prod/hosts").hosts["kvm01"]
    assert (kvm01.address, kvm01.port, kvm01.user) == ("127.0.0.1", 22, "inv_user")


@pytest.mark.slow
def test_the_current_folder_as_a_source_s_own_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inv.ini` in the current folder: its vars files are the source's and the playbook
    folder's, read once (they were read twice, "" and the cwd being two cache keys: each
    warning printed twice, 5,000 host_vars files 5.8 s against 2.6 s from elsewhere) and
    layered at both levels as Ansible does."""
    _write(
        tmp_path,
        {
            "inv.ini": "[kvm]\nh1 x=inv\nh2\n[kvm:vars]\ny=inv\n",
            "group_vars/all.yml": "y: all\ny: all-again\n",
            "group_vars/kvm.yml": "z: kvm\n",
            "host_vars/h2.yml": "x: host-vars\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    inv = load_inventory("inv.ini")
    assert [w.split(": ", 1)[0] for w in inv.warnings] == ["group_vars/all.yml:2"]
    oracle = inventory_list("inv.ini", home=tmp_path / "home", cwd=tmp_path)
    assert json.loads(render_list(inv)) == oracle


@pytest.mark.parametrize("depth", [500, 100_000])
def test_a_script_s_json_nested_too_deeply_is_an_input_error(tmp_path: Path, depth: int) -> None:
    """A variable nested 500 levels (or 100,000: past json's own recursion) in a script's
    output crashed with internal error: RecursionError (exit 70); a YAML one is refused."""
    doc = '{"_meta": {"hostvars": {}}, "g": {"hosts": ["h"], "vars": {"x": %s}}}'
    (tmp_path / "out.json").write_text(doc % ("[" * depth + "]" * depth))
    script = _script(tmp_path / "inv.sh", f"cat {tmp_path / 'out.json'}\n")
    res = fleetmon("inventory", script, "--graph")
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr == (
        f"fleetmon: error: {script}: `--list` output: nested too deeply (more than 100 levels"
        " of lists and objects)\n"
    )


def test_script_and_its_failures(tmp_path: Path) -> None:
    good = _script(
        tmp_path / "inv.sh",
        'case "$1" in\n'
        '--list) echo \'{"kvm": ["k1", "k2"], "xen": {"hosts": ["x1"], "vars": {"v": 1},'
        ' "children": ["kvm"]}}\' ;;\n'
        '--host) echo "{\\"who\\": \\"$2\\"}" ;;\n'
        "esac\n",
    )
    inv = load_inventory(str(good))
    assert list(inv.groups["xen"].children) == ["kvm"]
    assert inv.hosts["k1"].vars == {"v": 1, "who": "k1"}  # no _meta: asked --host per host
    failing = _script(tmp_path / "fail.sh", "echo 'cannot reach the CMDB' >&2\nexit 3\n")
    hanging = _script(tmp_path / "hang.sh", "sleep 30\n")
    garbled = _script(tmp_path / "bad.sh", 'printf \'{\\n  "kvm": ["k1",]\\n}\\n\'\n')
    cases = [
        (failing, 60.0, f"{failing}: inventory script `{failing} --list` exited 3: "),
        (hanging, 0.3, f"{hanging}: inventory script `{hanging} --list` did not finish "),
        (garbled, 60.0, f"{garbled}:2: `--list` output is not valid JSON: Expecting value"),
    ]
    for script, timeout_s, message in cases:
        with pytest.raises(InventoryError) as e:
            load_inventory(str(script), script_timeout_s=timeout_s)
        assert str(e.value).startswith(message)
    with pytest.raises(InventoryError) as e:
        load_inventory(str(failing))
    assert str(e.value).endswith("exited 3: cannot reach the CMDB")


def test_a_script_printing_a_number_of_5000_digits_is_an_input_error(tmp_path: Path) -> None:
    # json.loads raises a ValueError (not a JSONDecodeError) for it: was exit 70.
    big = _script(tmp_path / "big.sh", f'echo \'{{"all": {{"vars": {{"x": {"9" * 5000}}}}}}}\'\n')
    with pytest.raises(InventoryError) as e:
        load_inventory(str(big))
    assert str(e.value) == f"{big}: `--list` output: a number of more than 4,300 digits"


def test_saved_list_json_and_host_lists(tmp_path: Path) -> None:
    saved = tmp_path / "inventory.json"
    saved.write_text(
        json.dumps(
            {
                "_meta": {"hostvars": {"k1": {"ansible_host": "10.0.0.1"}}},
                "all": {"children": ["ungrouped", "kvm"]},
                "kvm": {"hosts": ["k1"], "vars": {"fleetmon_hypervisor": "kvm"}},
            }
        )
    )
    inv = load_inventory(str(saved))
    assert inv.hosts["k1"].address == "10.0.0.1"
    assert inv.hosts["k1"].vars["fleetmon_hypervisor"] == "kvm"
    inv = load_inventory("web1, web2:2222,")
    assert [(h.name, h.port) for h in inv.hosts.values()] == [("web1", 22), ("web2", 2222)]
    assert render_graph(inv) == "@all:\n  |--@ungrouped:\n  |  |--web1\n  |  |--web2\n"


def test_plugin_configs(tmp_path: Path) -> None:
    _write(tmp_path, {"inv/aws_ec2.yml": "plugin: amazon.aws.aws_ec2\n", "inv/h.ini": "a\n"})
    inv = load_inventory(str(tmp_path / "inv"))
    assert list(inv.hosts) == ["a"]
    assert inv.warnings == (
        f"{tmp_path}/inv/aws_ec2.yml: inventory plugin 'amazon.aws.aws_ec2' is not run by "
        f"fleetmon: give it the JSON of `ansible-inventory -i {tmp_path}/inv/aws_ec2.yml "
        "--list > inventory.json` instead (skipped)",
    )


def test_empty_inventories_load_and_a_run_of_nothing_is_unknown(tmp_path: Path) -> None:
    for name, text in [("e.yml", ""), ("c.ini", "# nothing\n[kvm]\n"), ("n.yml", "all:\n")]:
        (tmp_path / name).write_text(text)
        inv = load_inventory(str(tmp_path / name))
        assert dict(inv.hosts) == {}
    r = fleetmon("run", tmp_path / "c.ini", "-q")
    assert r.returncode == 3
    assert r.stdout == ""
    assert r.stderr == f"fleetmon: {tmp_path}/c.ini: the inventory has no hosts to collect\n"


def test_cli_takes_several_sources(tmp_path: Path) -> None:
    _write(tmp_path, {"a.ini": "[kvm]\nk1\n", "b.ini": "[kvm]\nk2\n"})
    r = fleetmon("inventory", "-i", tmp_path / "a.ini", "--inventory", tmp_path / "b.ini")
    assert r.stdout == "@all:\n  |--@ungrouped:\n  |--@kvm:\n  |  |--k1\n  |  |--k2\n"
    r = fleetmon("inventory", tmp_path / "a.ini", tmp_path / "b.ini", "--graph")
    assert r.stdout.endswith("|--k1\n  |  |--k2\n")


def test_graph_of_one_group_as_ansible_inventory_draws_it(tmp_path: Path) -> None:
    """`--graph GROUP` (ansible-inventory's optional argument), compared with ansible-core;
    `--graph INVENTORY` with no other source still reads it as the inventory."""
    _write(tmp_path, {"h.ini": "[kvm]\nk1\nk2\n[xen]\nx1\n[hv:children]\nkvm\nxen\n"})
    inv = tmp_path / "h.ini"
    for group in ("hv", "xen"):
        ours = fleetmon("inventory", inv, "--graph", group)
        theirs = subprocess.run(
            [program("ansible-inventory"), "-i", str(inv), "--graph", group],
            env=environment(tmp_path / "home"), capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, ours.stdout) == (0, theirs.stdout)
    whole = fleetmon("inventory", "--graph", inv)
    assert whole.stdout == fleetmon("inventory", inv, "--graph").stdout
    assert whole.stdout.startswith("@all:\n")
    bad = fleetmon("inventory", inv, "--graph", "kvn")
    assert bad.returncode == 4
    assert bad.stderr == f"fleetmon: error: {inv}: no group 'kvn' (did you mean 'kvm'?)\n"


@pytest.mark.slow
def test_a_script_s_old_shape_group_variables_are_unsafe(tmp_path: Path) -> None:
    """A group that is an object of variables is a host of that name whose variables
    "cannot be templated" (Ansible's decoder trusts only `vars` and `_meta.hostvars`):
    fleetmon rendered `{{ inventory_hostname }}-ops` and connected as legacy-ops."""
    listing = {
        "web": {"hosts": ["w1"], "vars": {"ansible_user": "{{ inventory_hostname }}-web"}},
        "legacy": {
            "ansible_host": "127.0.0.50",
            "ansible_user": "{{ inventory_hostname }}-ops",
            "nested": {"a": ["{{ x }}", 1]},
        },
        "_meta": {"hostvars": {"w1": {"ansible_host": "127.0.0.51"}}},
    }
    (tmp_path / "out.json").write_text(json.dumps(listing))
    script = _script(tmp_path / "inv.sh", f"cat {tmp_path / 'out.json'}\n")
    home = tmp_path / "home"
    inv = load_inventory(str(script))
    assert json.loads(render_list(inv)) == inventory_list(script, home=home)
    oracle = connections("-i", script, home=home)
    plans = plan_hosts(inv, list(inv.hosts.values()), (), Renderer(inv, (), str(home), {}))
    assert {
        p.spec.name: [p.spec.address, p.spec.port, p.spec.user, None, "ssh"] for p in plans
    } == oracle
    assert oracle["legacy"][2] == "{{ inventory_hostname }}-ops"
    assert oracle["w1"][2] == "w1-web"


def _kill(pid_file: Path) -> None:
    """End the process a test's script left behind (by its id, if it is still there)."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_script_printing_past_the_inventory_size_limit_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's output was read whole, without a limit: `exec yes` grew by 1 GB/s until
    "internal error: MemoryError" (exit 70); it may print what a file may hold."""
    assert scriptrun.MAX_INVENTORY_BYTES == 256 << 20  # the files' limit (inputfile.py)
    monkeypatch.setattr(scriptrun, "MAX_INVENTORY_BYTES", 1 << 20)
    endless = _script(tmp_path / "endless.sh", f"echo $$ > {tmp_path}/pid\nexec yes xxxxxxxx\n")
    started = time.monotonic()
    with pytest.raises(InventoryError) as e:
        load_inventory(str(endless))
    assert time.monotonic() - started < 10
    assert str(e.value) == (
        f"{endless}: inventory script `{endless} --list` printed more than 1 MiB, an inventory"
        " file's limit (killed)"
    )
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)  # killed, and reaped


def test_a_script_s_detached_helper_holding_its_output_is_not_waited_for(
    tmp_path: Path,
) -> None:
    """A script that printed its JSON at once but left a `setsid` helper holding stdout was
    waited for until the helper ended (151 s, past the timeout), then called hung."""
    listing = '{"g": {"hosts": ["a"]}, "_meta": {"hostvars": {}}}'
    pid = tmp_path / "pid"
    daemon = _script(
        tmp_path / "daemon.sh", f"setsid sleep 60 &\necho $! > {pid}\necho '{listing}'\n"
    )
    try:
        started = time.monotonic()
        inv = load_inventory(str(daemon), script_timeout_s=20)
        assert time.monotonic() - started < 10
    finally:
        _kill(pid)
    assert list(inv.hosts) == ["a"]
    assert list(inv.warnings) == [
        f"{daemon}: inventory script `{daemon} --list` exited but left a process holding its"
        " output open: not waited for"
    ]
    # A helper that keeps printing is not waited for past the deadline either.
    chatty = _script(
        tmp_path / "chatty.sh",
        f"setsid sh -c 'while :; do echo; sleep 0.1; done' &\necho $! > {pid}\necho '{listing}'\n",
    )
    try:
        with pytest.raises(InventoryError) as e:
            load_inventory(str(chatty), script_timeout_s=2)
    finally:
        _kill(pid)
    assert str(e.value) == (
        f"{chatty}: inventory script `{chatty} --list` exited, but a process it left kept"
        " printing to its output past 2 s (killed)"
    )
    # A script that closes its output and goes on running is still killed at the deadline.
    closed = _script(tmp_path / "closed.sh", f"echo '{listing}'\nexec >&- 2>&-\nsleep 30\n")
    started = time.monotonic()
    with pytest.raises(InventoryError) as e:
        load_inventory(str(closed), script_timeout_s=1)
    assert time.monotonic() - started < 10
    assert (
        str(e.value)
        == f"{closed}: inventory script `{closed} --list` did not finish within 1 s (killed)"
    )
