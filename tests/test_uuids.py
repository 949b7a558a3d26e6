"""The domains' UUIDs: parsed from virsh and xl, carried as a VM row's `uuid` label."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.model import HostSpec, RawResult, Status
from fleetmon.sources.uuids import parse_virsh_uuids, parse_xl_uuids

DATA = Path(__file__).parent / "data"
STANDINS = Path(__file__).parent / "bin" / "xen-standins"


def test_virsh_list_uuid_name_capture() -> None:
    text = (DATA / "fleetmon-capture" / "virsh-q-list-all-uuid-name-testdriver.txt").read_text()
    assert parse_virsh_uuids(text) == {
        "test": "6695eb01-f6a4-8304-79aa-97f2502e193f",
        "db-1": "b4d2189b-35de-4ce7-a664-3be76e58108c",
        "web 3": "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
    }


def test_virsh_errors_and_plain_lists_give_no_uuids() -> None:
    # An older virsh refusing the pair, a failed connection, a plain `--name` list.
    assert parse_virsh_uuids("error: command 'list' doesn't support option --uuid\n") == {}
    assert parse_virsh_uuids("error: failed to connect to the hypervisor\n") == {}
    assert parse_virsh_uuids("vm1\nvm2\n") == {}


def test_xl_list_verbose_leaves_dom0_out() -> None:
    text = (STANDINS / "data" / "docs-xl-list-v.txt").read_text()
    assert parse_xl_uuids(text) == {
        "win": "6a9b6a2c-7f3e-4a1e-9d3b-0c1d2e3f4a5b",
        "linux": "b1a8e0e2-2f4d-4c6a-8e9f-1a2b3c4d5e6f",
    }
    plain = (DATA / "xen-docs" / "xl-list-example.txt").read_text()
    assert parse_xl_uuids(plain) == {}  # an xl without -v support: keyed by name


def test_the_probe_asks_once_per_run() -> None:
    script = build_script(ProbeOptions(nonce="ab" * 8))
    assert 'virsh -q -c "$FM_URI" list --all --uuid --name' in script
    assert "xl list -v" in script
    assert script.count("fm 0 vm_uuids") == 2  # kvm and xen branches, after the samples


def test_xen_vm_rows_carry_their_uuid() -> None:
    """The real probe run by a local sh against the xl/xentop stand-ins, then analysed."""
    opts = ProbeOptions(hypervisor="xen", interval_s=0.1, nonce="cd" * 8)
    env = {**os.environ, "PATH": f"{STANDINS}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["sh", "-c", REMOTE_COMMAND], input=build_script(opts), capture_output=True,
        text=True, env=env, timeout=60, check=True, cwd="/",
    )  # fmt: skip
    raw = RawResult(HostSpec("xen01", "local"), Status.OK, stdout=proc.stdout, nonce=opts.nonce)
    host = analyse_host(raw)
    assert {r.name: r.labels.get("uuid") for r in host.rows_of("vm")} == {
        "win": "6a9b6a2c-7f3e-4a1e-9d3b-0c1d2e3f4a5b",
        "linux": "b1a8e0e2-2f4d-4c6a-8e9f-1a2b3c4d5e6f",
    }
