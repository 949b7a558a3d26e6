"""Per-host known_hosts from the inventory (`-o UserKnownHostsFile=` in the ssh args),
collected against the real OpenSSH sshd on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sshd_util

from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect
from fleetmon.inventory import load_inventory
from fleetmon.model import HostSpec, RawResult, Status

pytestmark = pytest.mark.sshd


def _collect(inventory: Path, known_hosts: str | None) -> list[RawResult]:
    hosts = list(load_inventory(str(inventory)).hosts.values())

    def probe(_: HostSpec) -> ProbeOptions:
        return ProbeOptions(interval_s=0.2, hypervisor="none")

    opts = CollectOptions(interval_s=0.2, known_hosts=known_hosts)
    return asyncio.run(collect(hosts, opts, probe))


def _args(sshd: sshd_util.Sshd, tmp_path: Path, ssh_args: str) -> Path:
    return sshd.inventory(1, tmp_path, vars={"ansible_ssh_common_args": ssh_args})


def _wrong_key_file(sshd: sshd_util.Sshd, tmp_path: Path) -> Path:
    other = sshd_util.keygen(tmp_path / "other_host_key")
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[{sshd.host}]:{sshd.port} {other.with_suffix('.pub').read_text()}")
    return wrong


@pytest.mark.parametrize("run_wide", ["empty", None])
def test_the_inventory_s_known_hosts_file_is_used_with_checks_on(
    sshd: sshd_util.Sshd, tmp_path: Path, run_wide: str | None
) -> None:
    inv = _args(sshd, tmp_path, f"-o UserKnownHostsFile={sshd.known_hosts}")
    (spec,) = load_inventory(str(inv)).hosts.values()
    assert (spec.known_hosts, spec.host_key_checking) == (str(sshd.known_hosts), True)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    # The run-wide file (an empty one, or the default ~/.ssh/known_hosts) is not consulted.
    [r] = _collect(inv, str(empty) if run_wide else None)
    assert r.status is Status.OK, r.reason
    assert empty.read_text() == ""


def test_a_wrong_known_hosts_file_in_the_inventory_is_a_mismatch(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    wrong = _wrong_key_file(sshd, tmp_path)
    inv = _args(sshd, tmp_path, f"-o UserKnownHostsFile={wrong}")
    # The right file run-wide does not rescue it: the host's own setting wins, as `ssh -o`.
    [r] = _collect(inv, str(sshd.known_hosts))
    assert r.status is Status.HOSTKEY_MISMATCH
    assert r.reason == sshd_util.changed_key_reason(sshd.port, wrong)


def test_an_inventory_known_hosts_file_without_the_host_is_unknown(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    empty = tmp_path / "kh_empty"
    empty.write_text("")
    inv = _args(sshd, tmp_path, f"-o UserKnownHostsFile={empty}")
    [r] = _collect(inv, str(sshd.known_hosts))
    assert r.status is Status.HOSTKEY_MISMATCH
    assert r.reason == (
        "unknown host, not a changed key: "
        f"no host key for [{sshd.host}]:{sshd.port} in {empty} (use --accept-new-host-keys)"
    )


def test_dev_null_and_strict_checking_off_connects_to_any_key(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    # Ansible's usual "trust anything" pair: no file, and no check.
    inv = _args(sshd, tmp_path, "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no")
    [r] = _collect(inv, str(_wrong_key_file(sshd, tmp_path)))
    assert r.status is Status.OK, r.reason


def test_the_report_says_whom_known_hosts_is_not_used_for(
    sshd: sshd_util.Sshd, tmp_path: Path
) -> None:
    """--known-hosts was silently not used for a host whose inventory sets its own file."""
    from fleetmon.analyse.pipeline import host_key_notes

    own = HostSpec("a", "a.example", known_hosts=str(tmp_path / "kh"))
    plain = HostSpec("b", "b.example")
    local = HostSpec("c", "localhost", connection="local", known_hosts="/x")
    assert host_key_notes([own, plain, local], False) == ()
    assert host_key_notes([own, plain, local], False, "kh_empty") == (
        "--known-hosts kh_empty not used for 1 host(s) whose inventory sets UserKnownHostsFile"
        " (the inventory's wins, as ssh -o does): a",
    )
    inv = _args(sshd, tmp_path, f"-o UserKnownHostsFile={sshd.known_hosts}")
    empty = tmp_path / "kh_empty"
    empty.write_text("")
    from clirun import fleetmon

    r = fleetmon("run", inv, "-q", "--no-rules", "--history", "none", "--known-hosts", empty)
    assert r.returncode == 0, r.stderr
    assert f"WARNING: --known-hosts {empty} not used for 1 host(s)" in r.stdout
