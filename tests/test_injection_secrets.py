"""Nothing from the inventory reaches a shell unquoted; secrets never reach an output.

Harmless payloads (each would `touch` a marker file in the test's own folder) go into every
inventory variable that reaches the probe or the SSH connection; no marker may appear.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sshd_util
import yaml
from clirun import fleetmon

from fleetmon.inventory import load_inventory
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.vault import Secret, encrypt


def _payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"$(touch {m}-dollar)",
        f"`touch {m}-backtick`",
        f"; touch {m}-semicolon",
        f"' ; touch {m}-squote ; '",
        f'" ; touch {m}-dquote ; "',
        f"| touch {m}-pipe",
        f"&& touch {m}-and",
    ]


#: The variables the payloads go into, and a host that uses them.
_HOSTILE_VARS = (
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ansible_become_user",
    "fleetmon_virsh_uri",
    "ansible_host",
)


def test_a_newline_in_a_connection_variable_skips_that_host(tmp_path: Path) -> None:
    """A payload on a line of its own never gets as far as a connection: the host is
    skipped, naming the variable, file and line (issue 16: not "unexpected error:
    SASLPrepError"; an error at load before, which failed every other host too)."""
    marker = tmp_path / "MARKER"
    for var in _HOSTILE_VARS:
        inv = tmp_path / "newline.yaml"
        value = f"\ntouch {marker}-newline\n"
        inv.write_text(yaml.safe_dump({"all": {"hosts": {"kvm07": {var: value}}}}))
        r = fleetmon("run", inv, "--interval", "0.2", "--format", "json", "-q", "--no-rules")
        assert r.returncode == 3, r.stderr
        (host,) = json.loads(r.stdout)["hosts"]
        assert (host["status"], host["error"]) == (
            "skipped",
            f"{var} ({inv}:4): control characters are not allowed, got {value!r}",
        )
    assert not list(tmp_path.glob("MARKER*"))


def test_a_newline_in_a_vaulted_user_skips_that_host_with_the_reason(tmp_path: Path) -> None:
    """A `!vault` value is only decrypted when connecting: the same check makes that host
    skipped, with the variable and its place, and the others are collected."""
    secret = Secret("default", b"correct horse")
    user = encrypt(b"root\ntouch /tmp/x", secret, b"0" * 32)
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    ok:\n      ansible_user: root\n    kvm07:\n"
        "      ansible_user: !vault |\n" + textwrap.indent(user, " " * 8)
    )
    loaded = load_inventory(str(inv))
    ok, bad = plan_hosts(loaded, list(loaded.hosts.values()), [secret])
    assert (ok.skip, bad.skip) == (
        None,
        f"ansible_user ({inv}:6): control characters are not allowed, got 'root\\ntouch /tmp/x'",
    )


@pytest.mark.sshd
def test_payloads_in_every_variable_touch_nothing(tmp_path: Path, sshd: sshd_util.Sshd) -> None:
    marker = tmp_path / "MARKER"
    hosts: dict[str, Any] = {}
    for i, p in enumerate(_payloads(marker)):
        # The local connection runs the real probe here with the payloads in the virsh URI
        # and the become user (fleetmon_hypervisor kvm forces the virsh path).
        hosts[f"local{i}"] = {
            "ansible_connection": "local",
            "fleetmon_hypervisor": "kvm",
            "fleetmon_virsh_uri": p,
            "ansible_become": True,
            "ansible_become_user": p,
        }
        # Through the real sshd: the user name, the key file and the jump host.
        hosts[f"ssh{i}"] = {
            "ansible_host": sshd.host,
            "ansible_port": sshd.port,
            "ansible_user": p,
            "ansible_ssh_private_key_file": str(sshd.client_key),
            "fleetmon_virsh_uri": p,
        }
    inv = tmp_path / "hostile.yaml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}), encoding="utf-8")
    out = tmp_path / "r.json"
    r = fleetmon(
        "run", inv, "--interval", "0.2", "--known-hosts", sshd.known_hosts,
        "--connect-timeout", "20", "--timeout", "60", "--format", "json", "-o", out,
    )  # fmt: skip
    assert r.returncode in (0, 1, 2, 3), r.stderr
    doc = json.loads(out.read_text())
    statuses = {h["name"]: h["status"] for h in doc["hosts"]}
    assert len(statuses) == 2 * len(_payloads(marker))
    # The hostile virsh URI is passed to virsh as one argument: the host is still collected.
    assert all(statuses[f"local{i}"] == "ok" for i in range(len(_payloads(marker))))
    # ... and the payload did reach virsh/sudo, as one argument, which refused it.
    notes = {h["name"]: " ".join(h["notes"]) for h in doc["hosts"]}
    assert all("virsh domstats failed" in notes[f"local{i}"] for i in range(len(hosts) // 2))
    # A key file path is only ever opened, never run: an unreadable one skips its host.
    for i, p in enumerate(_payloads(marker)):
        keyinv = tmp_path / f"key{i}.yaml"
        keyinv.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "hosts": {
                            "k": {
                                "ansible_host": sshd.host,
                                "ansible_port": sshd.port,
                                "ansible_ssh_private_key_file": p,
                            }
                        }
                    }
                }
            ),
            encoding="utf-8",
        )
        r = fleetmon(
            "run",
            keyinv,
            "--interval",
            "0.2",
            "--known-hosts",
            sshd.known_hosts,
            "--format",
            "json",
        )
        assert r.returncode == 3, r.stderr
        [host] = json.loads(r.stdout)["hosts"]
        assert host["status"] == "skipped"
        lines = keyinv.read_text().splitlines()
        line = 1 + next(n for n, t in enumerate(lines) if "ansible_ssh_private_key_file" in t)
        assert host["error"] == (
            f"ansible_ssh_private_key_file ({keyinv}:{line}): cannot read key file {p!r}: "
            "No such file or directory"
        )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("MARKER")) == []


SECRET = "s3cr3t-Pa55-do-not-print"


def test_secrets_never_reach_reports_logs_or_debug(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "here": {
                            "ansible_connection": "local",
                            "ansible_become_password": SECRET,
                            "ansible_ssh_pass": SECRET,
                            "ansible_password": SECRET,
                            "fleetmon_hypervisor": "none",
                        }
                    }
                }
            }
        ),
        encoding="utf-8",
    )
    outs = {
        "json": tmp_path / "r.json",
        "html": tmp_path / "r.html",
        "junit": tmp_path / "r.xml",
    }
    raw = tmp_path / "raw"
    r = fleetmon(
        "--debug", "run", inv, "--interval", "0.2", "--format", "text", "--json", outs["json"],
        "--html", outs["html"], "--junit", outs["junit"], "--save-raw", raw,
    )  # fmt: skip
    assert r.returncode in (0, 1, 2, 3), r.stderr
    texts = [r.stdout, r.stderr] + [p.read_text() for p in outs.values()]
    texts += [p.read_text(errors="replace") for p in raw.rglob("*") if p.is_file()]
    assert len(texts) >= 7
    assert all(SECRET not in t for t in texts)
    replay = fleetmon("--debug", "report", raw, "--format", "json")
    assert SECRET not in replay.stdout + replay.stderr
