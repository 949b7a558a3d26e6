"""ansible-core, the oracle of the inventory tests: its programs run as subprocesses.

ansible-core is a test dependency only (GPL-3.0, the `test` extra): fleetmon never imports
it. Every call runs with an empty ansible.cfg, a private HOME and no colour, so the answers
depend on the inventory alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent


def program(name: str) -> str:
    """The path of an ansible-core program installed beside this Python."""
    path = BIN / name
    if not path.exists():
        pytest.fail(
            f"{name} is missing: ansible-core is a test dependency (pip install -e '.[test]')"
        )
    return str(path)


def environment(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for ansible: no user config, no colour, no deprecation noise."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "empty-ansible.cfg"
    cfg.write_text("")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        "HOME": str(home),
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_HOME": str(home / ".ansible"),
        **extra,
    }


def run(
    name: str,
    *args: str | os.PathLike[str],
    home: Path,
    cwd: Path | None = None,
    stdin: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run an ansible-core program; the completed process (output as text)."""
    return subprocess.run(
        [program(name), *map(str, args)],
        cwd=cwd or home,
        env=environment(home, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def inventory_list(
    *sources: str | os.PathLike[str], home: Path, cwd: Path | None = None, **env: str
) -> Any:
    """`ansible-inventory -i SOURCE... --list` as data (run in `cwd`, else in `home`)."""
    args = [a for s in sources for a in ("-i", str(s))]
    r = run("ansible-inventory", *args, "--list", home=home, cwd=cwd, **env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


#: What `connections` asks ansible for each host: the values fleetmon connects with.
CONNECTION = (
    "{{ [ansible_host | default(inventory_hostname), ansible_port | default(22), "
    "ansible_user | default(None), ansible_ssh_private_key_file | default(None), "
    "ansible_connection | default('ssh')] }}"
)


def parse_debug(stdout: str) -> dict[str, Any]:
    """`ansible -o -m debug` output: each host's msg, or "failed: REASON"."""
    found: dict[str, Any] = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+) \| (SUCCESS|FAILED!) => (.*)$", line)
        if m:
            data = json.loads(m.group(3))
            found[m.group(1)] = data["msg"] if m.group(2) == "SUCCESS" else "failed: " + data["msg"]
    return found


def connections(
    *args: str | os.PathLike[str], home: Path, cwd: Path | None = None, **env: str
) -> dict[str, Any]:
    """Each host's rendered [address, port, user, key file, connection] as Ansible has them
    when it connects (`ansible all -m debug`: rendered, nothing connected), or why it fails."""
    r = run(
        "ansible",
        "all",
        *args,
        "-o",
        "-m",
        "ansible.builtin.debug",
        "-a",
        f"msg={CONNECTION}",
        home=home,
        cwd=cwd,
        **env,
    )
    return parse_debug(r.stdout)
