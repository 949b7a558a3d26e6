"""A guest seen from both sides: the VM row of the lab hypervisor and a stand-in guest host
linked by the real domain UUID the guest read from its own SMBIOS (captures of one run), by
`fleetmon_vm_of`, and judged by the shipped pair rule."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
from clirun import fleetmon as fleetmon_cli
from lab.guest import console_sections
from probetext import section

from fleetmon.analyse.pipeline import analyse_host, report_from_hosts
from fleetmon.model import HostReport, HostSpec, RawResult, Row, RunInfo, Status
from fleetmon.render.html import render_html
from fleetmon.render.json import render_json
from fleetmon.render.text import render_text

CAPTURE = Path(__file__).parent / "data" / "fleetmon-capture" / "lab-guest"
UUID = "fa0c3cdd-b482-4d73-b722-e38c429839bf"
GUEST_NONCE = "00000000000000ff"
RUN = RunInfo("0.1.0", "2026-11-30T05:41:00Z", 1.0, "inv.yaml")


def hypervisor(name: str = "kvm-lab") -> HostReport:
    """The lab hypervisor, probed for real while the stand-in guest ran."""
    text = (CAPTURE / "hypervisor-probe.txt").read_text(encoding="utf-8")
    spec = HostSpec(name, "127.0.0.1")
    return analyse_host(RawResult(spec, Status.OK, stdout=text, nonce="1ab0c0ffee000014"))


def guest_output(uuid: str | None = None) -> str:
    """The stand-in guest's probe output: what it printed on its console, as sections."""
    secs = console_sections((CAPTURE / "guest-console.txt").read_text(encoding="utf-8"))
    if uuid is not None:
        secs[0, "product_uuid"] = uuid + "\n"
    return "".join(section(s, n, t, nonce=GUEST_NONCE) for (s, n), t in secs.items())


def guest(name: str = "guest01", uuid: str | None = None, **var: str) -> HostReport:
    spec = HostSpec(name, "192.0.2.10", vars=var)
    raw = RawResult(spec, Status.OK, stdout=guest_output(uuid), nonce=GUEST_NONCE)
    return analyse_host(raw)


def test_the_capture_is_one_machine_seen_twice() -> None:
    assert (CAPTURE / "virsh-domuuid.txt").read_text() == UUID + "\n"
    g = guest()
    assert g.status is Status.OK, g.error
    assert g.product_uuid == UUID  # its own SMBIOS UUID, as libvirt named the domain
    hv = hypervisor()
    vm = next(r for r in hv.rows_of("vm") if r.name == "fmctr-guest")
    assert vm.labels["uuid"] == UUID
    assert vm.metrics["vm.host_rss_bytes"] == 170610688  # its QEMU's cgroup


def test_linked_by_uuid_both_ways_with_both_views_side_by_side() -> None:
    report = report_from_hosts([hypervisor(), guest()], RUN)
    hv, g = report.hosts
    vm = next(r for r in hv.rows_of("vm") if r.name == "fmctr-guest")
    assert vm.labels["guest_host"] == "guest01"
    assert all("guest_host" not in r.labels for r in hv.rows_of("vm") if r is not vm)
    (pair,) = g.rows_of("guest")
    assert pair.name == "kvm-lab/fmctr-guest"
    assert pair.labels == {"hypervisor": "kvm-lab", "vm": "fmctr-guest", "matched_by": "uuid",
                           "uuid": UUID}  # fmt: skip
    m = pair.metrics
    assert m["guest.vcpu_delay_pct"] == vm.metrics["vm.vcpu_delay_pct"]
    assert m["guest.vm_cpu_pct"] == vm.metrics["vm.cpu_pct"]
    assert m["guest.balloon_bytes"] == vm.metrics["vm.mem_current_bytes"]
    assert m["guest.host_rss_bytes"] == 170610688
    assert m["guest.steal_pct"] == g.metrics["cpu.steal_pct"]
    assert m["guest.busy_pct"] == g.metrics["cpu.busy_pct"]
    assert m["guest.mem_available_bytes"] == g.metrics["mem.available_bytes"]
    assert m["guest.mem_total_bytes"] == 62160 * 1024  # the guest's MemTotal
    doc = json.loads(render_json(report))
    assert doc["hosts"][1]["guests"][0]["labels"]["hypervisor"] == "kvm-lab"
    assert "Guests seen from both sides" in render_text(report)


def test_the_vm_tables_link_to_the_guest_host_and_back() -> None:
    report = report_from_hosts([hypervisor(), guest()], RUN)
    page = render_html(report)
    anchors = {h.name: f"host-{h.name}" for h in report.hosts}
    assert f'id="{anchors["guest01"]}"' in page
    assert f'id="{anchors["kvm-lab"]}"' in page
    # The hypervisor's VM table: the VM's name links to its guest's section, which it names.
    assert f'<a href="#{anchors["guest01"]}">fmctr-guest</a> <i>host guest01</i>' in page
    # And back: the guest's table of its pair links to the hypervisor's section.
    assert f'<a href="#{anchors["kvm-lab"]}">kvm-lab/fmctr-guest</a> <i>on kvm-lab</i>' in page
    text = render_text(report)
    assert "fmctr-guest (host guest01)" in text  # the text report's VM tables
    assert "kvm-lab/fmctr-guest" in text  # its guests table, on the guest's line


def test_linked_by_the_inventory_variable() -> None:
    other = "00000000-0000-4000-8000-000000000001"  # its own UUID matches no VM
    g = guest(uuid=other, fleetmon_vm_of="kvm-lab/fmctr-guest")
    _, linked = report_from_hosts([hypervisor(), g], RUN).hosts
    assert linked.rows_of("guest")[0].labels["matched_by"] == "inventory"


def test_an_unmatched_variable_is_a_note_and_no_uuid_no_link() -> None:
    g = guest(uuid="00000000-0000-4000-8000-000000000001", fleetmon_vm_of="kvm-lab/nope")
    hv, unlinked = report_from_hosts([hypervisor(), g], RUN).hosts
    assert unlinked.rows_of("guest") == ()
    assert "fleetmon_vm_of: no VM 'kvm-lab/nope' in this run" in unlinked.notes
    assert all("guest_host" not in r.labels for r in hv.rows_of("vm"))


@pytest.mark.parametrize(
    ("text", "uuid"),
    [
        ("FA0C3CDD-B482-4D73-B722-E38C429839BF\n", UUID),  # some firmware prints upper case
        ("not a uuid\n", None),
        ("Not Settable\n", None),  # dmidecode's word for an unset one, if a wrapper gives it
        # AMI's placeholder, shipped by many boards: one value on thousands of machines
        ("03000200-0400-0500-0006-000700080009\n", None),
        ("00020003-0004-0005-0006-000700080009\n", None),  # the same, read byte-swapped
        ("", None),
    ],
)
def test_product_uuid_parsing(text: str, uuid: str | None) -> None:
    from fleetmon.sources.uuids import parse_product_uuid

    assert parse_product_uuid(text) == uuid


def _pair_host(steal: float, delay: float) -> HostReport:
    row = Row("kvm-lab/web", {"guest.steal_pct": steal, "guest.vcpu_delay_pct": delay},
              {"hypervisor": "kvm-lab", "vm": "web"})  # fmt: skip
    return dataclasses.replace(guest(), rows={**guest().rows, "guest": (row,)})


@pytest.mark.parametrize(
    ("steal", "delay", "severity"),
    [(25.0, 0.5, "warning"), (0.5, 25.0, "warning"), (20.0, 18.0, "ok"), (0.0, 0.0, "ok")],
)
def test_the_shipped_pair_rule(steal: float, delay: float, severity: str) -> None:
    import fleetmon
    from fleetmon.rules import evaluate, load_rules

    rules = load_rules([str(Path(fleetmon.__file__).parent / "playbooks" / "linux-host.yaml")])
    h = _pair_host(steal, delay)
    (judged,), _ = evaluate(rules, [h], {h.name: HostSpec(h.name, "192.0.2.10")}, {})
    (f,) = [f for f in judged.findings if f.rule == "guest-steal-vs-delay"]
    assert f.severity.value == severity
    if severity == "warning":
        assert f.message.startswith("guest01 as VM web on kvm-lab: steal ")


def test_a_guest_of_another_site_is_paired_in_the_merged_report(tmp_path: Path) -> None:
    """Each site's run sees one side; `merge` pairs them as one run over both would (the
    guests' product_uuid is read back from the JSON)."""
    sites = {"paris": report_from_hosts([hypervisor()], RUN),
             "lyon": report_from_hosts([guest()], RUN)}  # fmt: skip
    for name, rep in sites.items():
        assert not rep.hosts[0].rows_of("guest")
        (tmp_path / f"{name}.json").write_text(render_json(rep))
    res = fleetmon_cli("merge", tmp_path / "paris.json", tmp_path / "lyon.json", "--format", "json")
    assert res.returncode in (0, 1, 2), res.stderr
    merged = {h["name"]: h for h in json.loads(res.stdout)["hosts"]}
    one_run = json.loads(render_json(report_from_hosts([hypervisor(), guest()], RUN)))
    want = {h["name"]: h for h in one_run["hosts"]}
    assert merged["guest01"]["product_uuid"] == UUID
    assert merged["guest01"]["guests"] == want["guest01"]["guests"]
    (vm,) = [v for v in merged["kvm-lab"]["vms"] if v["name"] == "fmctr-guest"]
    assert vm["labels"]["guest_host"] == "guest01"


def test_a_guest_of_another_site_named_by_the_variable_is_paired_in_the_merged_report(
    tmp_path: Path,
) -> None:
    """`fleetmon_vm_of` naming another site's VM: its site's run says it found no such host;
    `merge` pairs them as one run over both would, and that note is gone."""
    other = "00000000-0000-4000-8000-000000000001"  # its own UUID matches no VM
    g = guest(uuid=other, fleetmon_vm_of="kvm-lab/fmctr-guest")
    sites = {"paris": report_from_hosts([hypervisor()], RUN),
             "lyon": report_from_hosts([g], RUN)}  # fmt: skip
    assert any(
        n.startswith("fleetmon_vm_of: no host 'kvm-lab'") for n in sites["lyon"].hosts[0].notes
    )
    for name, rep in sites.items():
        (tmp_path / f"{name}.json").write_text(render_json(rep))
    res = fleetmon_cli("merge", tmp_path / "paris.json", tmp_path / "lyon.json", "--format", "json")
    assert res.returncode in (0, 1, 2), res.stderr
    merged = {h["name"]: h for h in json.loads(res.stdout)["hosts"]}
    one_run = json.loads(render_json(report_from_hosts([hypervisor(), g], RUN)))
    want = {h["name"]: h for h in one_run["hosts"]}
    assert merged["guest01"]["guests"] == want["guest01"]["guests"]
    assert merged["guest01"]["guests"][0]["labels"]["matched_by"] == "inventory"
    assert merged["guest01"]["notes"] == want["guest01"]["notes"]
    (vm,) = [v for v in merged["kvm-lab"]["vms"] if v["name"] == "fmctr-guest"]
    assert vm["labels"]["guest_host"] == "guest01"


def test_the_live_modes_link_by_the_inventory_variable_too() -> None:
    """`top` and `serve` build each host's report from its spec as `run` does: a guest
    linked only by `fleetmon_vm_of` is linked there too, streaming or down."""
    from fleetmon.cli.live import LiveFleet, Plan
    from fleetmon.collect.stream import Link
    from fleetmon.sources.sections import split_output

    other = "00000000-0000-4000-8000-000000000001"  # its own UUID matches no VM
    hv_spec = HostSpec("kvm-lab", "127.0.0.1")
    g_spec = HostSpec("guest01", "192.0.2.10", vars={"fleetmon_vm_of": "kvm-lab/fmctr-guest"})
    specs = (hv_spec, g_spec)
    live = LiveFleet(argparse.Namespace(delay=2.0), Plan(None, specs, (), specs, None, ()))  # type: ignore[arg-type]
    hv_text = (CAPTURE / "hypervisor-probe.txt").read_text(encoding="utf-8")
    live.on_pair(0, split_output(hv_text, "1ab0c0ffee000014"))
    live.on_pair(1, split_output(guest_output(other), GUEST_NONCE))
    _, linked = report_from_hosts(live.host_reports(), RUN).hosts
    assert linked.vm_of == "kvm-lab/fmctr-guest"
    assert linked.rows_of("guest")[0].labels["matched_by"] == "inventory"
    down = Link(g_spec)
    down.enter("down", Status.UNREACHABLE, "connect refused")
    live.on_change(1, down)
    assert live.host_reports()[1].vm_of == "kvm-lab/fmctr-guest"


def _with_vm(hv: HostReport, name: str, metrics: dict[str, object]) -> HostReport:
    """`hv` with its VM `name` given other metrics (same labels, same UUID)."""
    vms = tuple(Row(r.name, metrics, r.labels) if r.name == name else r  # type: ignore[arg-type]
                for r in hv.rows_of("vm"))  # fmt: skip
    return dataclasses.replace(hv, rows={**hv.rows, "vm": vms})


def test_a_migrated_vm_is_paired_with_its_running_copy_not_the_shut_off_one() -> None:
    """After a live migration the domain stays defined, shut off, on the source: one UUID
    on two hypervisors. The guest runs on the one where it is active, whatever the order."""
    source = _with_vm(hypervisor("kvm-b"), "fmctr-guest", {"vm.state": "shutoff"})
    for hosts in ([hypervisor("kvm-a"), source, guest()], [source, hypervisor("kvm-a"), guest()]):
        g = report_from_hosts(hosts, RUN).hosts[2]
        (pair,) = g.rows_of("guest")
        assert pair.labels["hypervisor"] == "kvm-a"
        assert pair.metrics["guest.vcpu_delay_pct"] is not None


def test_a_uuid_on_two_running_vms_or_two_guests_links_nothing() -> None:
    """Cloned VMs (one UUID running on two hypervisors), or two guests reporting one UUID
    (clones, a firmware placeholder): which is which is unknown, so no pair and a note."""
    hosts = report_from_hosts([hypervisor("kvm-a"), hypervisor("kvm-b"), guest()], RUN).hosts
    assert hosts[2].rows_of("guest") == ()
    assert any("kvm-a/fmctr-guest" in n and "kvm-b/fmctr-guest" in n for n in hosts[2].notes)
    hv, g1, g2 = report_from_hosts([hypervisor(), guest("guest01"), guest("guest02")], RUN).hosts
    assert g1.rows_of("guest") == g2.rows_of("guest") == ()
    assert all("guest_host" not in r.labels for r in hv.rows_of("vm"))
    assert any("guest01" in n and "guest02" in n for n in g1.notes)


def test_an_unmatched_variable_says_whether_its_hypervisor_was_down_or_is_unknown() -> None:
    """`no VM 'kvm-lab/fmctr-guest'` read as the VM gone when its hypervisor was down."""
    other = "00000000-0000-4000-8000-000000000001"
    down = analyse_host(RawResult(HostSpec("kvm-lab", "127.0.0.1"), Status.UNREACHABLE,
                                  reason="connect refused"))  # fmt: skip
    g = guest(uuid=other, fleetmon_vm_of="kvm-lab/fmctr-guest")
    notes = report_from_hosts([down, g], RUN).hosts[1].notes
    assert (
        "fleetmon_vm_of: kvm-lab was not collected (unreachable): VM 'fmctr-guest' not paired"
        in notes
    )
    assert not any("no VM" in n for n in notes)
    typo = guest(uuid=other, fleetmon_vm_of="kvm-lba/fmctr-guest")
    notes = report_from_hosts([hypervisor(), typo], RUN).hosts[1].notes
    assert "fleetmon_vm_of: no host 'kvm-lba' in this run: VM 'fmctr-guest' not paired" in notes


def test_a_guest_reading_its_uuid_in_the_other_byte_order_is_paired() -> None:
    """SMBIOS before 2.6 left the first three fields' byte order open: the kernel reads them
    big-endian below 2.6 (drivers/firmware/dmi_scan.c dmi_save_uuid), so firmware that
    wrote them little-endian anyway shows them swapped against libvirt's UUID."""
    swapped = "dd3c0cfa-82b4-734d-b722-e38c429839bf"
    _, g = report_from_hosts([hypervisor(), guest(uuid=swapped)], RUN).hosts
    (pair,) = g.rows_of("guest")
    assert pair.name == "kvm-lab/fmctr-guest"
    assert pair.labels["matched_by"] == "uuid-swapped"
    assert pair.labels["uuid"] == UUID
    odd = dataclasses.replace(guest(), product_uuid="not a uuid")  # as a merged JSON may say
    assert report_from_hosts([hypervisor(), odd], RUN).hosts[1].rows_of("guest") == ()


def test_top_s_drill_view_shows_the_pair_both_ways() -> None:
    """As the text report's tables do: the hypervisor's VM names its guest host, the guest's
    pair names its hypervisor (in its row's name)."""
    from fleetmon.render.top import host_detail

    report = report_from_hosts([hypervisor(), guest()], RUN)
    hv_lines = [ln.text for ln in host_detail(report, "kvm-lab", 200, 100)]
    assert any(t.startswith("fmctr-guest (host guest01)  ") for t in hv_lines), hv_lines
    assert any(t.startswith("fmlab1  ") for t in hv_lines)  # not a guest: its name alone
    g_lines = [ln.text for ln in host_detail(report, "guest01", 200, 100)]
    assert any(t.startswith("kvm-lab/fmctr-guest  ") for t in g_lines), g_lines


def test_the_variable_and_the_uuid_naming_two_vms_is_a_note() -> None:
    """A stale `fleetmon_vm_of` (the VM renamed or moved, its old definition left shut off)
    pairs the guest with another VM's figures: the inventory still wins, and says so."""
    g = guest(fleetmon_vm_of="kvm-lab/fmlab1")  # its own UUID is fmctr-guest's
    _, linked = report_from_hosts([hypervisor(), g], RUN).hosts
    assert linked.rows_of("guest")[0].name == "kvm-lab/fmlab1"
    assert ("fleetmon_vm_of names VM kvm-lab/fmlab1, its SMBIOS UUID VM kvm-lab/fmctr-guest:"
            " paired as the inventory says") in linked.notes  # fmt: skip
    agree = guest(fleetmon_vm_of="kvm-lab/fmctr-guest")
    _, linked = report_from_hosts([hypervisor(), agree], RUN).hosts
    assert not any("SMBIOS UUID" in n for n in linked.notes)
