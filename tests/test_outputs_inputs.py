"""No output is written over, or into, what its command reads: the inventory, its group_vars
and host_vars, rule files, vault password files, known_hosts and key files.

`fleetmon run inv.yaml --html inv.yaml` replaced the inventory with the HTML report (exit 2,
no error) and the next cron run failed on it; so did `--json group_vars/all.yaml`, `--junit
rules.yaml`, and `-r X --html X` in `report` and `merge`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import ROOT

_RULES = """\
- name: site
  hosts: all
  rules:
    - name: busy
      expr: "cpu.busy_pct > 99"
      severity: warning
      message: "busy"
"""


def _fleetmon(cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`python -m fleetmon ARGS...` run in `cwd` (the playbook folder of the inventory)."""
    return subprocess.run(
        [sys.executable, "-m", "fleetmon", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def _tree(tmp: Path) -> dict[str, Path]:
    """An inventory file; an inventory folder with group_vars/ and host_vars/; a rule file,
    a vault password file, a known_hosts file and a key file."""
    (tmp / "ivd" / "group_vars").mkdir(parents=True)
    (tmp / "ivd" / "host_vars").mkdir()
    (tmp / "work").mkdir()
    paths = {
        "inv": tmp / "inv.yaml",
        "ivd": tmp / "ivd",
        "group_vars": tmp / "ivd" / "group_vars" / "all.yaml",
        "host_vars": tmp / "ivd" / "host_vars" / "h1.yaml",
        "rules": tmp / "rules.yaml",
        "vault": tmp / "vault.pass",
        "known_hosts": tmp / "known_hosts",
        "key": tmp / "id_test",
    }
    inventory = (
        "all:\n  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n"
        f"      ansible_ssh_private_key_file: {paths['key']}\n"
    )
    paths["inv"].write_text(inventory)
    (tmp / "ivd" / "hosts.yaml").write_text(inventory)
    paths["group_vars"].write_text("site: one\n")
    paths["host_vars"].write_text("rack: two\n")
    paths["rules"].write_text(_RULES)
    paths["vault"].write_text("secret\n")
    paths["known_hosts"].write_text("")
    paths["key"].write_text("")
    return paths


def _texts(tmp: Path) -> dict[Path, str]:
    return {p: p.read_text() for p in sorted(tmp.rglob("*")) if p.is_file()}


def _run_args(paths: dict[str, Path], inv: Path, option: str, out: Path) -> list[object]:
    return [
        "run", inv, "--history", "none", "-q", "--connect-timeout", "1", "-r", paths["rules"],
        "--vault-password-file", paths["vault"], "--known-hosts", paths["known_hosts"],
        option, out, "--no-lock",
    ]  # fmt: skip


@pytest.mark.parametrize("option", ["-o", "--html", "--json", "--junit", "--prom-textfile"])
@pytest.mark.parametrize(
    ("inventory", "target", "verb", "shown"),
    [
        ("inv", "inv", "over", "inv"),
        ("inv", "rules", "over", "rules"),
        ("inv", "vault", "over", "vault"),
        ("inv", "known_hosts", "over", "known_hosts"),
        ("inv", "key", "over", "key"),
        ("ivd", "ivd/hosts.yaml", "into", "ivd"),  # every file of a folder source is read
        ("ivd", "group_vars", "into", "ivd"),
        ("ivd", "host_vars", "into", "ivd"),
    ],
)
def test_run_refuses_an_output_over_what_it_reads(
    tmp_path: Path, option: str, inventory: str, target: str, verb: str, shown: str
) -> None:
    paths = _tree(tmp_path)
    out = paths.get(target, tmp_path / target)
    before = _texts(tmp_path)
    res = _fleetmon(tmp_path / "work", *_run_args(paths, paths[inventory], option, out))
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr == (
        f"fleetmon: error: {option} {out} would write {verb} {paths[shown]}, which this"
        " command reads: write the report elsewhere\n"
    )
    assert _texts(tmp_path) == before  # nothing replaced, nothing half-written


def test_the_playbook_folders_vars_are_spared_too(tmp_path: Path) -> None:
    """Ansible reads group_vars/ and host_vars/ of the current folder as well: run there."""
    paths = _tree(tmp_path)
    before = _texts(tmp_path)
    out = Path("host_vars/h1.yaml")
    res = _fleetmon(tmp_path / "ivd", *_run_args(paths, paths["inv"], "--html", out))
    assert (res.returncode, res.stderr) == (
        4,
        "fleetmon: error: --html host_vars/h1.yaml would write into host_vars, which this"
        " command reads: write the report elsewhere\n",
    )
    assert _texts(tmp_path) == before


def test_report_and_merge_refuse_an_output_over_a_rule_file(tmp_path: Path) -> None:
    paths = _tree(tmp_path)
    local = tmp_path / "local.ini"
    local.write_text("h1 ansible_connection=local\n")
    saved, report = tmp_path / "saved", tmp_path / "r.json"
    res = _fleetmon(tmp_path, "run", local, "--history", "none", "-q", "--interval", "0.1",
                    "--save-raw", saved, "--json", report, "-o", "/dev/null")  # fmt: skip
    assert res.returncode in (0, 1, 2, 3), res.stderr
    before = _texts(tmp_path)
    for command in (["report", saved, "--history", "none"], ["merge", report]):
        for option in ("-o", "--html", "--junit"):
            res = _fleetmon(tmp_path, *command, "-r", paths["rules"], option, paths["rules"])
            assert (res.returncode, res.stdout) == (4, "")
            assert res.stderr == (
                f"fleetmon: error: {option} {paths['rules']} would write over {paths['rules']},"
                " which this command reads: write the report elsewhere\n"
            )
    assert _texts(tmp_path) == before
    res = _fleetmon(tmp_path, "merge", report, "-r", paths["rules"], "-o", tmp_path / "m.txt")
    assert res.returncode in (0, 1, 2, 3), res.stderr  # another file: written


def test_a_vault_password_file_is_guarded_as_ansible_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--vault-id id@~/pw`: the file it opens is ~/pw expanded (unfrackpath), so that is
    the path an output may not be written over."""
    from fleetmon.cli.inputs import inventory_reads
    from fleetmon.inventory.ansiblecfg import AnsibleConfig
    from fleetmon.inventory.vaultpass import VaultOptions

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VDIR", str(tmp_path / "v"))
    monkeypatch.chdir(tmp_path)
    vault = VaultOptions(vault_ids=("a@~/pw", "b@prompt"), password_files=("$VDIR/pw", "rel"))
    assert inventory_reads(AnsibleConfig(), vault, []) == (
        f"{tmp_path}/pw",
        f"{tmp_path}/v/pw",
        f"{tmp_path}/rel",
    )
