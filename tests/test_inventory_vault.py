"""Ansible Vault: texts made by the real ansible-vault open in fleetmon, and the reverse.

The format and the password sources are compared with ansible-core itself (a test
dependency run as a program, see ansible_oracle.py); inventories with vault values load
without a password, and only hosts that need such a value to connect are skipped.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest
from ansible_oracle import connections, inventory_list, run
from clirun import fleetmon

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory, render_host, render_list
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.values import Vaulted
from fleetmon.inventory.vault import Secret, VaultError, decrypt, decrypt_text, encrypt
from fleetmon.inventory.vaultpass import VaultOptions, load_secrets

SALT = b"0123456789abcdef0123456789abcdef"  # 32 bytes, as ansible-vault's random salt


def _vault(home: Path, *args: str, stdin: str | None = None, **env: str) -> str:
    """`ansible-vault ARGS` in `home`; its stdout."""
    r = run("ansible-vault", *args, home=home, stdin=stdin, **env)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Vault texts made by the real ansible-vault (one batch: it starts slowly)."""
    home = tmp_path_factory.mktemp("vault")
    (home / "pw").write_text("correct horse\n")
    (home / "dev-pw").write_text("dev-secret")
    plain = home / "plain.yml"
    plain.write_text("ansible_user: vaulted-user\nmotd: 'héllo'\n", encoding="utf-8")
    _vault(home, "encrypt", "--vault-password-file", "pw", "plain.yml")
    salted = {"ANSIBLE_VAULT_ENCRYPT_SALT": SALT.decode()}
    return {
        "file": plain.read_text(),
        "string": _vault(home, "encrypt_string", "--vault-password-file", "pw", "s3cret"),
        "id": _vault(home, "encrypt_string", "--vault-id", "dev@dev-pw", "for dev"),
        "salted": _vault(
            home,
            "encrypt",
            "--vault-password-file",
            "pw",
            "--output",
            "-",
            "-",
            stdin="hello\n",
            **salted,
        ),
        "salted_id": _vault(
            home,
            "encrypt",
            "--vault-id",
            "dev@dev-pw",
            "--output",
            "-",
            "-",
            stdin="hello\n",
            **salted,
        ),
    }


PW = Secret("default", b"correct horse")
DEV = Secret("dev", b"dev-secret")


def _block(vault_string: str) -> str:
    """The ciphertext of `ansible-vault encrypt_string` output (`!vault |` + indented)."""
    return textwrap.dedent(vault_string.split("|", 1)[1]).strip() + "\n"


def test_ansible_vault_file_opens(made: dict[str, str]) -> None:
    assert made["file"].startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert decrypt_text(made["file"], [PW]) == "ansible_user: vaulted-user\nmotd: 'héllo'\n"


def test_ansible_vault_strings_open(made: dict[str, str]) -> None:
    assert decrypt(_block(made["string"]), [PW]) == b"s3cret"
    # 1.2 with a vault id: the secret of that id is tried first, but any that opens it does.
    assert _block(made["id"]).startswith("$ANSIBLE_VAULT;1.2;AES256;dev\n")
    assert decrypt(_block(made["id"]), [PW, DEV]) == b"for dev"
    assert decrypt(_block(made["id"]), [Secret("other", b"dev-secret")]) == b"for dev"


def test_encrypt_is_byte_identical_to_ansible_vault(made: dict[str, str]) -> None:
    assert encrypt(b"hello\n", PW, SALT) == made["salted"]
    assert encrypt(b"hello\n", DEV, SALT) == made["salted_id"]


def test_ansible_vault_opens_ours(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("correct horse")
    (tmp_path / "ours.txt").write_text(encrypt("héllo\n".encode(), PW, os.urandom(32)))
    out = _vault(tmp_path, "view", "--vault-password-file", "pw", "ours.txt")
    assert out == "héllo\n"


@pytest.mark.parametrize(
    ("text", "secrets", "message"),
    [
        ("$ANSIBLE_VAULT;1.1;AES256\n", [], "no vault password was given"),
        ("$ANSIBLE_VAULT;1.1\n3132\n", [PW], "malformed vault text: no $ANSIBLE_VAULT;"),
        ("$ANSIBLE_VAULT;1.1;AES256\nzz\n", [PW], "malformed vault text: the body is not hex"),
        ("$ANSIBLE_VAULT;1.1;AES256\n3132\n", [PW], "malformed vault text: expected salt, HMAC"),
        (
            encrypt(b"x", PW, SALT).replace("AES256", "DES"),
            [PW],
            "vault cipher 'DES' is not supported",
        ),
    ],
)
def test_bad_vault_texts(text: str, secrets: list[Secret], message: str) -> None:
    with pytest.raises(VaultError) as e:
        decrypt(text, secrets)
    assert str(e.value).startswith(message)


def test_wrong_password_and_tampering() -> None:
    text = encrypt(b"data", DEV, SALT)
    with pytest.raises(VaultError) as e:
        decrypt(text, [PW, Secret("x", b"nope")])
    assert str(e.value) == (
        "no vault password given opens this vault text (vault id 'dev'); tried: default, x"
    )
    lines = text.splitlines()
    flipped = lines[-1][:-1] + ("0" if lines[-1][-1] != "0" else "1")
    with pytest.raises(VaultError, match="no vault password given opens"):
        decrypt("\n".join([*lines[:-1], flipped]), [DEV])  # the HMAC catches it
    assert "dev-secret" not in repr(DEV)


# --- where the passwords come from -------------------------------------------------------


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_password_sources_in_ansible_order(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("  from-file \n")
    plain = _script(tmp_path / "script.sh", "printf 'from-script\\n\\n'\n")
    client = _script(
        tmp_path / "vault-client.sh", 'test "$1" = --vault-id && printf "client-%s\\n" "$2"\n'
    )
    asked: list[str] = []
    opts = VaultOptions(
        vault_ids=(f"prod@{client}", "ops@prompt"),
        password_files=(str(tmp_path / "file"),),
        ask=True,
        config_ids=(f"cfg@{plain}",),
        config_file=str(tmp_path / "file"),
    )
    secrets = load_secrets(opts, prompt=lambda text: asked.append(text) or f" typed{len(asked)} ")
    assert [(s.vault_id, s.password) for s in secrets] == [
        ("cfg", b"from-script"),
        ("prod", b"client-prod"),
        ("ops", b"typed1"),
        ("default", b"from-file"),
        ("default", b"from-file"),
        ("default", b"typed2"),
    ]
    assert asked == ["Vault password (ops): ", "Vault password: "]


def test_password_source_failures(tmp_path: Path) -> None:
    (tmp_path / "good").write_text("pw")
    client = _script(tmp_path / "x-client", "echo no such id >&2; exit 2\n")
    failing = _script(tmp_path / "fail.sh", "echo boom >&2; exit 3\n")
    warnings: list[str] = []
    secrets = load_secrets(
        VaultOptions(password_files=(str(tmp_path / "missing"), str(tmp_path / "good"))),
        warn=warnings.append,
    )
    assert secrets == [Secret("default", b"pw")]
    assert warnings == [f"vault password file {tmp_path}/missing was not found"]
    with pytest.raises(InventoryError) as e:
        load_secrets(VaultOptions(vault_ids=(f"dev@{client}",)))
    assert str(e.value) == (
        f"vault password client script {client} has no password for vault id 'dev': no such id"
    )
    with pytest.raises(InventoryError) as e:
        load_secrets(VaultOptions(password_files=(failing,)))
    assert str(e.value) == f"vault password script {failing} exited 3"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InventoryError, match="is empty"):
        load_secrets(VaultOptions(password_files=(str(tmp_path / "empty"),)))
    with pytest.raises(InventoryError, match="empty vault password from the prompt"):
        load_secrets(VaultOptions(ask=True), prompt=lambda _: "")


# --- inventories with vault values ------------------------------------------------------


def _inventory(tmp_path: Path) -> Path:
    user = encrypt(b"vaulted-user", PW, SALT)
    secret = encrypt(b"hunter2", PW, SALT)
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n"
        "  hosts:\n"
        "    plain:\n"
        "      ansible_connection: local\n"
        "      ansible_become_password: !vault |\n"
        + textwrap.indent(secret, " " * 8)
        + "    needs:\n"
        "      ansible_connection: local\n"
        "      ansible_user: !vault |\n" + textwrap.indent(user, " " * 8)
    )
    return inv


def test_inline_vault_values_load_without_a_password(tmp_path: Path) -> None:
    inv = load_inventory(str(_inventory(tmp_path)))
    assert isinstance(inv.hosts["needs"].vars["ansible_user"], Vaulted)
    assert inv.hosts["needs"].user is None
    # As ansible-inventory --list: the ciphertext, a password or not.
    oracle = inventory_list(tmp_path / "inv.yml", home=tmp_path / "home")
    mine = json.loads(render_list(inv))
    assert mine == oracle
    plain, needs = plan_hosts(inv, list(inv.hosts.values()))
    assert plain.skip is None
    assert needs.skip == (
        f"ansible_user ({tmp_path}/inv.yml:14): vault-encrypted: no vault password was given "
        "(--vault-password-file, --vault-id or --ask-vault-pass)"
    )
    _, needs = plan_hosts(inv, list(inv.hosts.values()), [PW])
    assert needs.skip is None
    assert needs.spec.user == "vaulted-user"
    assert isinstance(needs.spec.vars["ansible_user"], Vaulted)  # never decrypted into vars
    assert '"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\\n' in render_host(inv, "plain")


def test_encrypted_files(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        encrypt(b"ansible_user: from-vault\n", PW, SALT)
    )
    (tmp_path / "hosts.ini").write_text(encrypt(b"[kvm]\nkvm01\nkvm02\n", PW, SALT))
    inv = load_inventory(str(tmp_path / "hosts.ini"), [PW])
    assert list(inv.hosts) == ["kvm01", "kvm02"]
    assert inv.hosts["kvm01"].user == "from-vault"
    with pytest.raises(InventoryError) as e:
        load_inventory(str(tmp_path / "hosts.ini"))
    assert str(e.value) == (
        f"{tmp_path}/hosts.ini: vault-encrypted file: no vault password was given "
        "(--vault-password-file, --vault-id or --ask-vault-pass)"
    )
    with pytest.raises(InventoryError) as e:
        load_inventory(str(tmp_path / "hosts.ini"), [DEV])
    assert str(e.value) == (
        f"{tmp_path}/hosts.ini: vault-encrypted file: no vault password given opens this "
        "vault text; tried: dev"
    )


def test_cli_reads_vault_passwords(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    (tmp_path / "pw").write_text("correct horse\n")
    r = fleetmon("run", inv, "--format", "json", "-q", "--no-rules")
    report = json.loads(r.stdout)
    statuses = {h["name"]: (h["status"], h["error"]) for h in report["hosts"]}
    assert statuses["plain"] == ("ok", None)
    assert statuses["needs"][0] == "skipped"
    assert statuses["needs"][1].startswith(f"ansible_user ({inv}:14): vault-encrypted: no vault")
    r = fleetmon(
        "run",
        inv,
        "--format",
        "json",
        "-q",
        "--no-rules",
        env={"ANSIBLE_VAULT_PASSWORD_FILE": str(tmp_path / "pw")},
    )
    assert [h["status"] for h in json.loads(r.stdout)["hosts"]] == ["ok", "ok"]
    r = fleetmon("inventory", inv, "--host", "plain", "--vault-password-file", tmp_path / "pw")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ansible_become_password"]["__ansible_vault"].startswith("$ANS")
    r = fleetmon("inventory", inv, "--list", "--vault-password-file", tmp_path / "missing")
    assert r.returncode == 4
    # One line: the error, not a warning saying it first.
    assert r.stderr == f"fleetmon: error: vault password file {tmp_path}/missing was not found\n"
    # Another source gives a password: the missing one is a warning, and the command works.
    r = fleetmon("inventory", inv, "--host", "plain", "--vault-password-file",
                 tmp_path / "missing", "--vault-password-file", tmp_path / "pw")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        f"fleetmon: warning: vault password file {tmp_path}/missing was not found\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "cfg", "env"),
    [
        (["--vault-id", "prod@~/prod.txt"], None, {}),  # no shell expands `~` after `@`
        (["--vault-password-file=~/prod.txt"], None, {}),  # nor after `=`
        (["--vault-id", "prod@$VDIR/prod.txt"], None, {}),  # a quoted `$VDIR`
        ([], "vault_identity_list = prod@~/prod.txt", {}),
        ([], "vault_identity_list = prod@$VDIR/prod.txt", {}),
        ([], "vault_password_file = $VDIR/prod.txt", {}),
        ([], None, {"ANSIBLE_VAULT_PASSWORD_FILE": "~/prod.txt"}),
        ([], None, {"ANSIBLE_VAULT_IDENTITY_LIST": "prod@$VDIR/prod.txt"}),
    ],
)
def test_password_file_paths_expand_as_ansible_expands_them(
    tmp_path: Path, args: list[str], cfg: str | None, env: dict[str, str]
) -> None:
    """`~` and `$VAR` in a password source: fleetmon said "vault password file ~/prod.txt
    was not found" (exit 4) where ansible-inventory opens it (unfrackpath)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "prod.txt").write_text("correct horse\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "h1.yml").write_text(encrypt(b"ansible_user: admin\n", PW, SALT))
    (tmp_path / "inv.yml").write_text("all:\n  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n")
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[defaults]\n{cfg}\n" if cfg else "")
    env = {**env, "HOME": str(home), "VDIR": str(home), "ANSIBLE_CONFIG": str(config)}
    inv = tmp_path / "inv.yml"
    oracle = run("ansible-inventory", "-i", inv, "--host", "h1", *args, home=home, **env)
    assert oracle.returncode == 0, oracle.stderr
    r = fleetmon("inventory", "-i", inv, "--host", "h1", *args, env=env)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert json.loads(r.stdout) == json.loads(oracle.stdout)
    assert json.loads(r.stdout)["ansible_user"] == "admin"


def test_password_source_paths_name_the_expanded_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pw").write_text("pw\n")
    script = _script(tmp_path / "pw-client", 'printf "%s-pw" "$2"\n')
    opts = VaultOptions(vault_ids=("a@~/pw", "b@~/pw-client", "c@$HOME/pw"))
    assert [s.password for s in load_secrets(opts)] == [b"pw", b"b-pw", b"pw"]
    assert script == str(tmp_path / "pw-client")
    with pytest.raises(InventoryError) as e:
        load_secrets(VaultOptions(password_files=("~/missing",)))
    assert str(e.value) == f"vault password file {tmp_path}/missing was not found"


@pytest.mark.slow
def test_json_markers_in_json_vars_files_and_inventories(tmp_path: Path) -> None:
    """`{"__ansible_vault": ...}` in a vars file or YAML-shaped inventory written as JSON:
    Ansible's loader reads JSON first, with its decoder, so it is a vault value (an
    `__ansible_unsafe` one unsafe text); fleetmon took the object as is and skipped the host
    ("expected a non-empty string, got {'__ansible_vault': ...}")."""
    vault = encrypt(b"admin", PW, SALT)
    (tmp_path / "pw").write_text("correct horse\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.json").write_text(
        json.dumps(
            {
                "ansible_user": {"__ansible_vault": vault},
                "ansible_port": 2222,
                # Ansible's object hook: a marker whatever other keys, unsafe before vault.
                "v": {"__ansible_unsafe": "u", "k": 1},
                "w": {"__ansible_vault": vault, "__ansible_unsafe": "z"},
            }
        )
    )
    (tmp_path / "hosts").write_text("[web]\nw1 ansible_host=127.0.0.4\n")
    host = {"ansible_host": "127.0.0.5", "ansible_user": {"__ansible_vault": vault}}
    unsafe = {"ansible_user": {"__ansible_unsafe": "{{ inventory_hostname }}-ops"}}
    (tmp_path / "yinv.json").write_text(json.dumps({"all": {"hosts": {"j1": host, "j2": unsafe}}}))
    # A marker that is not text fails Ansible's decoder: the file is read as YAML, and the
    # markers are plain objects (no user Ansible can connect as, fleetmon skips the host).
    odd = {"ansible_user": {"__ansible_unsafe": "u"}, "x": {"__ansible_vault": 5}}
    (tmp_path / "odd.json").write_text(json.dumps({"all": {"hosts": {"j3": odd}}}))
    home = tmp_path / "home"
    for inv in ("hosts", "yinv.json"):
        args = ("-i", inv, "--vault-password-file", "pw")
        oracle = connections(*args, home=home, cwd=tmp_path)
        loaded = load_inventory(str(tmp_path / inv))
        plans = plan_hosts(loaded, list(loaded.hosts.values()), [PW])
        assert all(p.skip is None for p in plans), [p.skip for p in plans]
        mine = {p.spec.name: [p.spec.address, p.spec.port, p.spec.user, None, "ssh"] for p in plans}
        assert mine == oracle
        listed = inventory_list(inv, home=home, cwd=tmp_path)
        assert json.loads(render_list(loaded)) == listed
    assert oracle["j2"][2] == "{{ inventory_hostname }}-ops"  # unsafe: never rendered
    oracle = connections("-i", "odd.json", home=home, cwd=tmp_path)
    assert "has an invalid value" in oracle["j3"]
    loaded = load_inventory(str(tmp_path / "odd.json"))
    (j3,) = plan_hosts(loaded, [loaded.hosts["j3"]])
    assert j3.skip == (
        f"ansible_user ({tmp_path}/odd.json:1): expected a non-empty string, got "
        "{'__ansible_unsafe': 'u'}"
    )
