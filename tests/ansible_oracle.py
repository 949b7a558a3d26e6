"""ansible-core, the oracle of the inventory tests: its programs run as subprocesses.

ansible-core is a test dependency only (GPL-3.0, the `test` extra): fleetmon never imports
it. Every call runs with an empty ansible.cfg, a private HOME and no colour, so the answers
depend on the inventory alone.
"""

from __future__ import annotations

import json
import os
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


def inventory_list(*sources: str | os.PathLike[str], home: Path, **env: str) -> Any:
    """`ansible-inventory -i SOURCE... --list` as data."""
    args = [a for s in sources for a in ("-i", str(s))]
    r = run("ansible-inventory", *args, "--list", home=home, **env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
