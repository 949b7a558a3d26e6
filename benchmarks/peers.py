"""The peers (I/O): parallel-ssh and Ansible in their own venv, and how each runs the probe.

They are benchmark baselines, never fleetmon dependencies: `ensure_peers()` creates
benchmarks/.venv-peers with pip the first time (PyPI) and reuses it after.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from measure import BENCH_DIR, log

PEERS_VENV = BENCH_DIR / ".venv-peers"
PEERS_PY = PEERS_VENV / "bin" / "python"
ANSIBLE = PEERS_VENV / "bin" / "ansible"
PEER_PACKAGES = ("parallel-ssh", "ansible-core", "py-spy")


def ensure_peers() -> str | None:
    """Create the peers venv when missing; None when ready, else why it could not be made."""
    if PEERS_PY.exists() and ANSIBLE.exists():
        check = subprocess.run(
            [str(PEERS_PY), "-c", "import pssh.clients"], capture_output=True, check=False
        )
        if check.returncode == 0:
            return None
    log(f"creating {PEERS_VENV} ({', '.join(PEER_PACKAGES)})")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run(
            [str(PEERS_PY), "-m", "pip", "install", "-q", *PEER_PACKAGES],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot install the peers: {exc}"
    return None


def command_line(remote_command: str, script: str) -> str:
    """The probe as one command line, for peers that cannot feed a script on stdin.

    `sh -s` reading stdin becomes `sh -c SCRIPT`: the same script, the same shell work.
    """
    return remote_command.replace("sh -s", "sh -c " + shlex.quote(script))


def pssh_argv(job_path: Path) -> list[str]:
    """argv of the parallel-ssh client on a job file."""
    return [str(PEERS_PY), str(BENCH_DIR / "pssh_client.py"), str(job_path)]


def ansible_inventory(job: dict[str, Any], path: Path) -> Path:
    """An Ansible YAML inventory of the job's hosts."""
    hosts = {
        name: {"ansible_host": address, "ansible_port": port}
        for name, address, port in job["hosts"]
    }
    doc = {
        "all": {
            "hosts": hosts,
            "vars": {
                "ansible_user": job["user"],
                "ansible_ssh_private_key_file": job["key"],
                "fleetmon_hypervisor": job.get("hypervisor", "auto"),
            },
        }
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def ansible_run(
    job: dict[str, Any], inventory: Path, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of `ansible all -m raw -a PROBE -f FORKS`.

    ControlMaster is off: every host of the benchmark is the same sshd address, and a shared
    master (Ansible's default ControlPersist) would multiplex all of them over one connection.
    Host keys are verified against the same known_hosts file fleetmon uses.
    """
    home = workdir / "ansible-home"
    home.mkdir(exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "SSH_AUTH_SOCK"
    }
    env.update(
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_HOST_KEY_CHECKING="True",
        ANSIBLE_SSH_ARGS=(
            "-o ControlMaster=no -o ControlPersist=no -o BatchMode=yes"
            f" -o UserKnownHostsFile={job['known_hosts']} -o StrictHostKeyChecking=yes"
        ),
        ANSIBLE_TIMEOUT=str(int(job["connect_timeout_s"])),
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    argv = [
        str(ANSIBLE),
        "all",
        "-i",
        str(inventory),
        "-m",
        "raw",
        "-a",
        job["command_line"],
        "-f",
        str(job["forks"]),
    ]
    return argv, env


def count_ansible_ok(stdout_text: str) -> int:
    """Hosts Ansible reports as done (`name | CHANGED | rc=0 >>`)."""
    return sum(1 for line in stdout_text.splitlines() if " | CHANGED | rc=0" in line)
