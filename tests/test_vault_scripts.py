"""Vault password scripts and inventory scripts are bounded in time: one that hangs is killed
with what it started and named in a one-line error, where Ansible would wait forever (a cron
run with a hung password helper never ended). On a terminal a password script can still
prompt on /dev/tty, as in Ansible.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import ROOT, read_terminal

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory
from fleetmon.inventory.scriptrun import SCRIPT_TIMEOUT_S
from fleetmon.inventory.vaultpass import VaultOptions, load_secrets


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _hanging(path: Path, pids: Path) -> str:
    """A script that starts a child and waits for it forever, both ids written to `pids`."""
    return _script(path, f"sleep 600 &\necho $$ $! > {pids}\nwait\n")


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie left for a reaper that is not ours is not running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def _assert_all_gone(pids: Path) -> None:
    found = [int(p) for p in pids.read_text().split()]
    assert len(found) == 2
    deadline = time.monotonic() + 5  # SIGKILL is delivered, not waited for
    while any(map(_alive, found)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in found if _alive(p)]


def test_the_default_timeout_is_the_inventory_scripts_one() -> None:
    assert SCRIPT_TIMEOUT_S == 60.0


@pytest.mark.parametrize(
    ("name", "kind", "slug"),
    [
        ("pass.sh", "vault password script", "{}"),
        ("pass-client", "vault password client script", "dev@{}"),
    ],
)
def test_a_hanging_password_script_is_killed_with_what_it_started(
    tmp_path: Path, name: str, kind: str, slug: str
) -> None:
    pids = tmp_path / "pids"
    script = _hanging(tmp_path / name, pids)
    opts = VaultOptions(vault_ids=(slug.format(script),))
    started = time.monotonic()
    with pytest.raises(InventoryError) as e:
        load_secrets(opts, script_timeout_s=1)
    assert time.monotonic() - started < 10
    assert str(e.value) == f"{kind} {script} did not finish within 1 s (killed)"
    _assert_all_gone(pids)


def test_a_hanging_password_script_is_a_warning_when_another_source_gives_one(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    script = _hanging(tmp_path / "pass.sh", pids)
    (tmp_path / "pw").write_text("pw\n")
    warnings: list[str] = []
    opts = VaultOptions(password_files=(script, str(tmp_path / "pw")))
    secrets = load_secrets(opts, warn=warnings.append, script_timeout_s=1)
    assert [s.password for s in secrets] == [b"pw"]
    assert warnings == [f"vault password script {script} did not finish within 1 s (killed)"]
    _assert_all_gone(pids)


def test_a_password_script_still_gives_its_password(tmp_path: Path) -> None:
    script = _script(tmp_path / "pass.sh", "printf 'hunter2\\n'\n")
    client = _script(tmp_path / "pw-client", 'test "$2" = dev && echo "for-$2"\n')
    opts = VaultOptions(vault_ids=(f"dev@{client}",), password_files=(script,))
    assert [s.password for s in load_secrets(opts, script_timeout_s=5)] == [b"for-dev", b"hunter2"]


def test_a_hanging_inventory_script_is_killed_with_what_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = _hanging(tmp_path / "inv.sh", pids)
    with pytest.raises(InventoryError) as e:
        load_inventory(script, script_timeout_s=1)
    assert str(e.value) == (
        f"{script}: inventory script `{script} --list` did not finish within 1 s (killed)"
    )
    _assert_all_gone(pids)


#: Run in a session whose controlling terminal is a pty: each script's password, or error.
_ON_A_TERMINAL = """
import sys
from fleetmon.errors import InventoryError
from fleetmon.inventory.vaultpass import VaultOptions, load_secrets
for script in sys.argv[1:]:
    try:
        print(load_secrets(VaultOptions(password_files=(script,)), script_timeout_s=1)[0].password)
    except InventoryError as e:
        print(e)
"""


def test_on_a_terminal_a_password_script_can_prompt_on_dev_tty(tmp_path: Path) -> None:
    """A script in a session of its own has no terminal: `/dev/tty` cannot be opened. On a
    terminal it stays in fleetmon's, as in Ansible, and is still bounded in time."""
    tty = _script(tmp_path / "tty.sh", "exec 3</dev/tty && echo from-tty\n")
    hang = _script(tmp_path / "hang.sh", "exec sleep 600\n")
    master, slave = os.openpty()
    proc = subprocess.Popen(
        ["setsid", "--ctty", sys.executable, "-c", _ON_A_TERMINAL, tty, hang],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(slave)
    try:
        chunks = read_terminal(master, 30)
    finally:
        os.close(master)
        assert proc.wait(timeout=30) == 0
    said = b"".join(chunks).decode().replace("\r\n", "\n")
    assert said == f"b'from-tty'\nvault password script {hang} did not finish within 1 s (killed)\n"
