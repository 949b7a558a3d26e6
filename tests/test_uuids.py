"""The domains' UUIDs: parsed from virsh and xl, carried as a VM row's `uuid` label."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab.guest import console_sections
from probetext import section

from fleetmon.analyse.guests import link_guests
from fleetmon.analyse.pipeline import analyse_host
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.sources.uuids import parse_virsh_uuids, parse_xl_uuids

DATA = Path(__file__).parent / "data"
STANDINS = Path(__file__).parent / "bin" / "xen-standins"
CAPTURE = DATA / "fleetmon-capture" / "lab-guest"


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


def _xen_probe() -> RawResult:
    """The real probe run by a local sh against the xl/xentop stand-ins."""
    opts = ProbeOptions(hypervisor="xen", interval_s=0.1, nonce="cd" * 8)
    env = {**os.environ, "PATH": f"{STANDINS}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["sh", "-c", REMOTE_COMMAND], input=build_script(opts), capture_output=True,
        text=True, env=env, timeout=60, check=True, cwd="/",
    )  # fmt: skip
    return RawResult(HostSpec("xen01", "local"), Status.OK, stdout=proc.stdout, nonce=opts.nonce)


def test_xen_vm_rows_carry_their_uuid() -> None:
    """The real probe's output against the stand-ins, analysed."""
    host = analyse_host(_xen_probe())
    assert {r.name: r.labels.get("uuid") for r in host.rows_of("vm")} == {
        "win": "6a9b6a2c-7f3e-4a1e-9d3b-0c1d2e3f4a5b",
        "linux": "b1a8e0e2-2f4d-4c6a-8e9f-1a2b3c4d5e6f",
    }


def _xen_guest(xen_uuid: str | None, smbios: str | None = None) -> HostReport:
    """The lab guest's own /proc (tests/data/fleetmon-capture/lab-guest) with no SMBIOS
    section, as a Xen PV or PVH guest reads none (or `smbios`), and the probe's `xen_uuid`
    section: what drivers/xen/sys-hypervisor.c prints in /sys/hypervisor/uuid (`%pU\\n`)."""
    secs = console_sections((CAPTURE / "guest-console.txt").read_text(encoding="utf-8"))
    del secs[0, "product_uuid"]
    if smbios is not None:
        secs[0, "product_uuid"] = smbios + "\n"
    if xen_uuid is not None:
        secs[0, "xen_uuid"] = xen_uuid + "\n"
    out = "".join(section(s, n, t, nonce="ef" * 8) for (s, n), t in secs.items())
    raw = RawResult(HostSpec("pv01", "192.0.2.11"), Status.OK, stdout=out, nonce="ef" * 8)
    return analyse_host(raw)


def test_the_probe_reads_the_xen_domain_uuid_any_user_may() -> None:
    raw = _xen_probe()
    assert "rd /sys/hypervisor/uuid" in build_script(ProbeOptions(nonce="ab" * 8))
    # This machine is no Xen guest: the file is absent, the section empty and failed.
    assert f"@@fleetmon-{raw.nonce}@@ begin 0 xen_uuid\n\n" in raw.stdout
    assert f"@@fleetmon-{raw.nonce}@@ end 0 xen_uuid 1\n" in raw.stdout


def test_a_xen_pv_guest_is_paired_by_its_domain_uuid() -> None:
    xen = analyse_host(_xen_probe())
    g = _xen_guest("b1a8e0e2-2f4d-4c6a-8e9f-1a2b3c4d5e6f")  # `linux` in xl list -v
    assert g.status is Status.OK, g.error
    assert g.product_uuid == "b1a8e0e2-2f4d-4c6a-8e9f-1a2b3c4d5e6f"
    xen, g = link_guests((xen, g))
    (pair,) = g.rows_of("guest")
    assert pair.name == "xen01/linux"
    assert pair.labels["matched_by"] == "uuid"
    assert next(r for r in xen.rows_of("vm") if r.name == "linux").labels["guest_host"] == "pv01"


def test_dom0_and_a_guest_off_xen_have_no_xen_uuid() -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    assert _xen_guest(nil).product_uuid is None  # dom0's handle
    assert _xen_guest(None).product_uuid is None
    # SMBIOS's UUID, when the guest has one and reads it, comes first (a nested dom0's).
    smbios = "fa0c3cdd-b482-4d73-b722-e38c429839bf"
    assert _xen_guest(nil, smbios).product_uuid == smbios
    assert _xen_guest("b1a8e0e2-2f4d-4c6a-8e9f-1a2b3c4d5e6f", smbios).product_uuid == smbios
