"""Bad inventories: each is one InventoryError line with file:line and key path.

The corpus is tests/data/inventories/bad/: each file's first line is `# expect: <message>`.
Values fleetmon cannot use load as Ansible loads them and skip the host that ends up with
one: tests/data/inventories/unusable/, each file's first line `# skip: <reason>`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from clirun import fleetmon

import fleetmon.inventory.load as inventory_load
from fleetmon.errors import InputError, InventoryError
from fleetmon.inventory import load_inventory, render_graph, render_host, unreadable_key_files
from fleetmon.inventory.connect import plan_hosts

DATA = Path(__file__).parent / "data" / "inventories"
BAD = sorted(p.name for p in (DATA / "bad").iterdir() if p.read_text().startswith("# expect: "))


UNUSABLE = sorted(p.name for p in (DATA / "unusable").iterdir())


def _expected(name: str, folder: str = "bad", head: str = "# expect: ") -> str:
    return (DATA / folder / name).read_text().splitlines()[0].removeprefix(head)


def _error(path: str) -> str:
    with pytest.raises(InventoryError) as e:
        load_inventory(path)
    message = str(e.value)
    assert "\n" not in message
    assert isinstance(e.value, InputError)  # the CLI's exit 4
    return message


def test_corpus_is_complete() -> None:
    assert len(BAD) >= 25
    # fleetmon_thresholds left it: a bad one is an input error (test_rules_eval), no host skipped.
    assert len(UNUSABLE) >= 12


@pytest.mark.parametrize("name", UNUSABLE)
def test_an_unusable_value_skips_its_host(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value fleetmon cannot use (a ProxyCommand, a port that is no number...) was an
    error at load, failing every host; it now skips the host that ends up with it, naming
    the variable and its file:line, and the inventory loads as Ansible loads it."""
    monkeypatch.chdir(DATA / "unusable")
    inv = load_inventory(name)
    (planned,) = plan_hosts(inv, list(inv.hosts.values()))
    assert planned.skip == _expected(name, "unusable", "# skip: ")


@pytest.mark.parametrize("name", BAD)
def test_bad_inventory(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "bad")
    assert _error(name) == _expected(name)


def test_libyaml_is_used() -> None:
    # The 50,000-host budget and the YAML messages above are libyaml's (CSafeLoader).
    assert yaml.__with_libyaml__


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "bad/vault-file.yml",
            "bad/vault-file.yml: vault-encrypted file: no vault password was given "
            "(--vault-password-file, --vault-id or --ask-vault-pass)",
        ),
        (
            "bad-host-vars/hosts",
            "bad-host-vars/host_vars/kvm01:1: expected a mapping of variables, got a sequence",
        ),
        (
            "no-such-inventory.yaml",
            "no-such-inventory.yaml: cannot read: No such file or directory",
        ),
    ],
)
def test_bad_files(path: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    assert _error(path) == message


def test_an_unusable_group_vars_value_skips_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    inv = load_inventory("bad-group-vars/inventory.yaml")
    assert [p.skip for p in plan_hosts(inv, list(inv.hosts.values()))] == [
        "ansible_port (bad-group-vars/group_vars/kvm.yml:2): expected an integer, got 'twenty-two'"
    ]


def test_a_group_priority_ansible_cannot_read_fails_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ansible int()s a group's ansible_group_priority as it reads the group (the source
    fails); elsewhere (a host's, a group_vars file's) it is any variable."""
    monkeypatch.chdir(tmp_path)
    Path("gp.ini").write_text("[dmz]\nd1\n[dmz:vars]\nansible_group_priority=high\n")
    assert (
        _error("gp.ini")
        == "gp.ini:4: dmz.vars.ansible_group_priority: expected an integer, got 'high'"
    )
    Path("gp.ini").write_text("[dmz]\nd1 ansible_group_priority=high\n")
    Path("group_vars").mkdir()
    Path("group_vars/dmz.yml").write_text("ansible_group_priority: high\n")
    inv = load_inventory("gp.ini")
    assert [p.skip for p in plan_hosts(inv, list(inv.hosts.values()))] == [None]


def test_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("hosts.ini").write_bytes(b"[kvm]\nkvm01\nk\xe9vm02\n")
    assert _error("hosts.ini") == "hosts.ini:3: not UTF-8 text"


def test_a_binary_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled inventory program (no `#!`: Ansible runs it, fleetmon does not) was
    "not UTF-8 text" at some line, which did not say why."""
    monkeypatch.chdir(tmp_path)
    elf = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00\x01\x00\x00\x00\x88\xff"
    Path("terraform-inventory").write_bytes(elf)
    Path("terraform-inventory").chmod(0o755)
    assert _error("terraform-inventory") == (
        "terraform-inventory: not UTF-8 text: this looks like a binary, not an inventory file,"
        " nor an inventory script (fleetmon runs executables that start with a `#!` line only)"
    )
    Path("hosts.ini").write_text("kvm01\n")
    Path("host_vars").mkdir()
    Path("host_vars/kvm01").write_bytes(elf)
    assert _error("hosts.ini") == (
        "host_vars/kvm01: not UTF-8 text: this looks like a binary, not a vars file"
    )


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fleetmon-unreadable-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        monkeypatch.chdir(folder)
        Path("hosts.ini").write_text("kvm01\n")
        Path("hosts.ini").chmod(0)
        if os.geteuid() != 0:
            assert _error("hosts.ini") == "hosts.ini: cannot read: Permission denied"
            return
        # Root reads any file: ask from a forked child that became the user nobody.
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                os.write(write_end, _error("hosts.ini").encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as fh:
            message = fh.read().decode()
        os.waitpid(pid, 0)
    finally:
        shutil.rmtree(folder)
    assert message == "hosts.ini: cannot read: Permission denied"


def test_unreadable_vars_dir_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("group_vars").mkdir()
    Path("group_vars/all").mkdir()
    os.symlink("missing-target.yml", "group_vars/all/broken.yml")
    Path("hosts.ini").write_text("kvm01\n")
    assert load_inventory("hosts.ini").hosts["kvm01"].vars == {}  # a dangling link: not a file
    Path("group_vars/all/x.yml").write_text("a: [1\n")
    assert _error("hosts.ini") == (
        "group_vars/all/x.yml:2: invalid YAML: did not find expected ',' or ']'"
    )


def test_unknown_host_and_group_in_views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    inv = load_inventory("basic.yaml")
    with pytest.raises(InventoryError) as e:
        render_host(inv, "kvm1")
    assert str(e.value) == "basic.yaml: no host 'kvm1' in the inventory (did you mean 'kvm01'?)"
    with pytest.raises(InventoryError) as e:
        render_graph(inv, "kvn")
    assert str(e.value) == "basic.yaml: no group 'kvn' (did you mean 'kvm'?)"
    assert render_graph(inv, "prod") == "@prod:\n  |--kvm01\n"


def test_an_unreadable_key_file_skips_its_host_naming_the_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("id_ok").write_text("not really a key\n")
    Path("inv.yaml").write_text(
        "all:\n"
        "  vars:\n"
        "    ansible_ssh_private_key_file: id_ok\n"
        "  hosts:\n"
        "    a:\n"
        "    b:\n"
        "      ansible_ssh_private_key_file: id_missing\n"
        "    c:\n"
        "      ansible_connection: local\n"
        "      ansible_ssh_private_key_file: id_missing_but_local\n"
    )
    inv = load_inventory("inv.yaml")
    assert unreadable_key_files(inv, [inv.hosts["a"], inv.hosts["c"]]) == {}
    # Was an InventoryError (exit 4) for the whole run; now those hosts alone.
    assert unreadable_key_files(inv, inv.hosts.values()) == {
        "b": "ansible_ssh_private_key_file (inv.yaml:7): "
        "cannot read key file 'id_missing': No such file or directory",
    }


def test_a_fifo_or_device_is_refused_not_read_forever(tmp_path: Path) -> None:
    """A FIFO with no writer blocked the read forever; /dev/zero ran out of memory (exit 70).
    Regular files are read, symlinks followed; a pipe only where it is named on the command
    line (`-i <(command)`, `--limit @<(command)`), and one nobody writes to reads as empty."""
    (tmp_path / "pipes").mkdir()  # beside no group_vars/
    fifo = tmp_path / "pipes" / "fifo.yaml"
    os.mkfifo(fifo)
    link = tmp_path / "pipes" / "link.yaml"
    link.symlink_to(fifo)
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n")
    (tmp_path / "group_vars").mkdir()
    os.mkfifo(tmp_path / "group_vars" / "all.yml")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "inv.yaml").write_text("all:\n  hosts:\n    a:\n")
    cases = [
        (["inventory", "/dev/zero", "--list"], "/dev/zero: an inventory file must be a regular "),
        (
            ["inventory", inv, "--list"],
            f"{tmp_path}/group_vars/all.yml: a vars file must be a regular file, not a FIFO",
        ),
        (["run", alone / "inv.yaml", "--limit", f"@{fifo}"], f"--limit '@{fifo}' is empty"),
    ]
    for args, message in cases:
        r = fleetmon(*args, timeout=60)
        assert (r.returncode, r.stdout) == (4, ""), r.stderr
        assert message in r.stderr, r.stderr
        assert r.stderr.startswith("fleetmon: error: ")
        assert r.stderr.count("\n") == 1
    for named in (fifo, link):  # nobody writes: an empty inventory, as Ansible's
        r = fleetmon("inventory", named, "--list", timeout=60)
        assert r.returncode == 0, r.stderr
        assert "ungrouped" not in json.loads(r.stdout)
    r = subprocess.run(  # bash's process substitution: a pipe read to its end
        ["bash", "-c", 'exec "$0" -m fleetmon inventory <(printf "$1") --list', sys.executable,
         "all:\n  hosts:\n    web1:\n"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert json.loads(r.stdout)["ungrouped"]["hosts"] == ["web1"], r.stderr


def test_an_inventory_past_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory_load, "MAX_INVENTORY_BYTES", 1000)
    inv = tmp_path / "hosts.ini"
    inv.write_text("kvm01\n" * 200)
    with pytest.raises(InventoryError) as e:
        load_inventory(str(inv))
    assert (
        str(e.value)
        == f"{inv}: an inventory file may be 1,000 bytes at most; this one is 1,200 bytes"
    )
    inv.write_text("kvm01\n" * 100)
    assert list(load_inventory(str(inv)).hosts) == ["kvm01"]
