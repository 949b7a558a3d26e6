"""InfluxDB line protocol (render.influx): measurements per scope, fields typed by the
catalogue, escaping of every name, nanosecond timestamps of the host's second sample."""

from __future__ import annotations

import dataclasses

import pytest
import reportfactory as rf
from test_row_scopes import with_pods  # noqa: F401 (a fixture)

from fleetmon.model import Report, Row, catalog
from fleetmon.model.series import influx_kind, measurement
from fleetmon.render.influx import (
    escape_measurement,
    escape_tag,
    field_value,
    render_influx,
    string_field,
)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("kvm01", "kvm01"),
        ("x,y=z", r"x\,y\=z"),
        ("a b", r"a\ b"),
        ('a"b\nc}', r'a"b\nc}'),  # a newline cannot be written: shown as an escape
        ("bell\x07", r"bell\x07"),
        ("trail\\", r"trail\x5c"),  # InfluxDB reads a final backslash as an escape
        ("mid\\dle", "mid\\dle"),
    ],
)
def test_tags_are_escaped(text: str, escaped: str) -> None:
    assert escape_tag(text) == escaped


def test_measurements_and_string_fields_are_escaped() -> None:
    assert escape_measurement("a,b c=d") == r"a\,b\ c=d"
    assert string_field('say "hi"\\ now\n') == r'"say \"hi\"\\ now\n"'


def test_a_fields_type_comes_from_the_catalogue() -> None:
    kinds = {m.name: influx_kind(m) for m in catalog.ALL.values()}
    assert kinds["cpu.count"] == "integer"
    assert kinds["mem.total_bytes"] == "integer"
    assert kinds["vm.cpu_pct"] == "float"
    assert kinds["host.rebooted"] == "boolean"
    assert kinds["vm.state"] == "string"
    assert field_value(3, "float") == "3.0"  # an int where a float is due stays a float
    assert field_value(3.0, "integer") == "3i"
    assert field_value(float("nan"), "float") is None
    assert field_value(None, "float") is None
    assert field_value(True, "boolean") == "true"


def test_an_integer_is_written_as_read_and_one_past_int64_left_out() -> None:
    """Before, an integer went through float: 2**53 + 1 was written 2**53, and a u64 counter
    past int64 (the probe takes 20 digits) as `99999999999859884032i`, which InfluxDB
    refused with the row's whole line, every run. Left out, the field keeps its type."""
    assert field_value(2**53 + 1, "integer") == "9007199254740993i"
    assert field_value(2**63 - 1, "integer") == "9223372036854775807i"
    assert field_value(-(2**63), "integer") == "-9223372036854775808i"
    assert field_value(2**63, "integer") is None
    assert field_value(10**20 - 1, "integer") is None
    assert field_value(-(2**63) - 1, "integer") is None
    assert field_value(1e30, "integer") is None
    assert field_value(float("inf"), "integer") is None
    assert field_value(2.5e3, "integer") == "2500i"
    assert field_value(True, "integer") == "1i"
    report = rf.sample_report()
    kvm01 = report.hosts[0]
    big = {**kvm01.metrics, "mem.total_bytes": 10**20 - 1}
    host = dataclasses.replace(kvm01, metrics=big)
    (line,) = _lines(dataclasses.replace(report, hosts=(host,)), "fleetmon_host")
    assert "mem_total_bytes=" not in line
    assert "mem_available_bytes=" in line  # the rest of the line is written


def _lines(report: Report, measurement_: str) -> list[str]:
    text = render_influx(report)
    assert text.endswith("\n")
    return [x for x in text.splitlines() if x.startswith(f"{measurement_},")]


def test_one_measurement_per_scope_with_the_hosts_timestamp() -> None:
    report = rf.sample_report()
    kvm01 = dataclasses.replace(report.hosts[0], sampled_at_ns=1_764_126_000_123_456_789)
    report = dataclasses.replace(report, hosts=(kvm01, *report.hosts[1:]))
    vm1 = next(x for x in _lines(report, "fleetmon_vm") if ",vm=vm1 " in x)
    tags, fields, ts = vm1.split(" ")
    assert tags == "fleetmon_vm,host=kvm01,vm=vm1"
    assert ts == "1764126000123456789"
    assert "cpu_pct=97.4" in fields.split(",")
    assert 'state="running"' in fields.split(",")
    assert "vcpus=4i" in fields.split(",")
    host = next(
        x for x in _lines(report, "fleetmon_host") if x.startswith("fleetmon_host,host=kvm01 ")
    )
    assert "cpu_count=32i" in host
    assert "rebooted=false" in host
    assert host.endswith(" 1764126000123456789")
    # Without its own clock reading a line carries the run's start.
    web01 = next(x for x in _lines(report, "fleetmon_host") if "host=web01 " in x)
    assert web01.endswith(" 1795662000000000000")
    nic = next(x for x in _lines(report, "fleetmon_nic") if ",nic=vnet2," in x)
    assert nic.startswith("fleetmon_nic,host=kvm01,nic=vnet2,vm=vm1 ")
    fs = next(x for x in _lines(report, "fleetmon_fs") if "host=web01," in x)
    assert fs.startswith("fleetmon_fs,host=web01,mountpoint=/ used_pct=88.0,")


def test_every_host_has_an_up_line_and_a_failed_one_nothing_else() -> None:
    report = rf.sample_report()
    text = render_influx(report)
    up = [x for x in text.splitlines() if x.startswith("fleetmon_host_up,")]
    assert len(up) == len(report.hosts)
    assert "fleetmon_host_up,host=kvm03,status=unreachable up=0i 1795662000000000000" in up
    assert [x for x in text.splitlines() if "host=kvm03," in x or "host=kvm03 " in x] == [
        "fleetmon_host_up,host=kvm03,status=unreachable up=0i 1795662000000000000"
    ]
    run = text.splitlines()[-1]
    assert run == (
        "fleetmon_run,inventory=inventories/prod.yaml,limit=kvm:web hosts=9i,collected=6i,"
        "failed=3i,"
        "exit_code=2i 1795662000000000000"
    )


def test_findings_are_lines_of_their_own() -> None:
    text = render_influx(rf.sample_report(), groups=True)
    finding = next(
        x for x in text.splitlines() if x.startswith("fleetmon_finding,") and "kvm01" in x
    )
    assert finding == (
        r"fleetmon_finding,groups=\,kvm\,prod\,,host=kvm01,rule=vm-cpu-saturated,scope=vm,"
        r'severity=critical,subject=vm1 message="vm1 vm.cpu_pct 97.4",value=97.4,'
        r'threshold="~:95" 1795662000000000000'
    )


def test_site_and_hypervisor_tag_every_line_of_a_host() -> None:
    text = render_influx(rf.sited_report(), groups=True)
    lines = text.splitlines()
    vm1 = next(x for x in lines if x.startswith("fleetmon_vm,") and ",vm=vm1 " in x)
    assert vm1.startswith(
        r"fleetmon_vm,groups=\,kvm\,prod\,,host=kvm01,hypervisor=kvm,site=paris,vm=vm1 "
    )
    assert (
        r"fleetmon_host_up,groups=\,kvm\,prod\,,host=kvm01,hypervisor=kvm,site=paris,status=ok"
        " up=1i " in text
    )
    assert (
        "fleetmon_host_up,groups=\\,kvm\\,,host=kvm03,site=paris,status=unreachable up=0i " in text
    )
    finding = next(x for x in lines if x.startswith("fleetmon_finding,") and "kvm01" in x)
    assert finding.startswith(r"fleetmon_finding,groups=\,kvm\,prod\,,host=kvm01,hypervisor=kvm,"
                              "rule=vm-cpu-saturated,scope=vm,severity=critical,site=paris,"
                              "subject=vm1 ")  # fmt: skip
    for line in lines:
        tags = set(line.split(" ")[0].split(",")[1:])  # no escaped space in these hosts' tags
        if "host=kvm01" in tags:
            assert {"hypervisor=kvm", "site=paris"} <= tags, line
        if "host=web01" in tags:  # no site, no hypervisor: no tag
            assert not {t for t in tags if t.startswith(("site=", "hypervisor="))}, line


def test_hostile_names_stay_inside_their_tags() -> None:
    lines = render_influx(rf.hostile_report(), groups=True).splitlines()
    evil = [x for x in lines if x.startswith("fleetmon_vm,") and r"host=x\,y\=z" in x]
    assert len(evil) == 3
    for line in evil:
        # measurement+tags, fields, timestamp: exactly two unescaped spaces
        unescaped = line.replace("\\ ", "").replace('" ', "")
        assert unescaped.count(" ") == 2, line
    assert any(r',vm=a"b\nc} ' in x for x in evil)
    assert any(r",vm=back\ slash\x5c " in x for x in evil)
    assert all("\n" not in x for x in lines)


@pytest.mark.usefixtures("with_pods")
def test_a_new_scope_is_a_measurement_without_an_edit() -> None:
    pods = (Row("web", {"pod.state": "running", "pod.cpu_pct": 97.5, "pod.mem_bytes": 3 << 30}),)
    h = dataclasses.replace(rf.sample_report().hosts[0], rows={"pod": pods})
    (line,) = _lines(Report(rf.RUN, (h,), {}, 0), measurement("pod"))
    assert line == (
        'fleetmon_pod,host=kvm01,pod=web state="running",cpu_pct=97.5,mem_bytes=3221225472i '
        "1795662000000000000"
    )


def test_containers_are_tagged_container() -> None:
    ctrs = (Row("web", {"ctr.cpu_pct": 150.0, "ctr.oom_kills": 3}),)
    h = dataclasses.replace(rf.sample_report().hosts[0], rows={"ctr": ctrs})
    (line,) = _lines(Report(rf.RUN, (h,), {}, 0), measurement("ctr"))
    assert (
        line
        == "fleetmon_ctr,container=web,host=kvm01 cpu_pct=150.0,oom_kills=3i 1795662000000000000"
    )


def test_the_runs_own_points_carry_its_limit() -> None:
    """fleetmon_run and the fleet's findings are tagged with the run's inventory and limit:
    two runs of one inventory's parts started in the same second are two points each."""
    report = rf.sample_report()
    run = dataclasses.replace(report.run, inventory="inv.yaml", limit="site paris")
    lines = render_influx(dataclasses.replace(report, run=run)).splitlines()
    run_line = next(x for x in lines if x.startswith("fleetmon_run,"))
    assert run_line.startswith(r"fleetmon_run,inventory=inv.yaml,limit=site\ paris hosts=")
    fleet = next(x for x in lines if x.startswith("fleetmon_finding,") and "fleet-busy" in x)
    assert fleet.startswith(
        r"fleetmon_finding,inventory=inv.yaml,limit=site\ paris,rule=fleet-busy,scope=fleet,"
    )
    host = next(x for x in lines if x.startswith("fleetmon_finding,host=kvm01"))
    assert "inventory=" not in host
    assert "limit=" not in host
    run = dataclasses.replace(report.run, inventory="inv.yaml", limit=None)
    whole = render_influx(dataclasses.replace(report, run=run)).splitlines()
    assert next(x for x in whole if x.startswith("fleetmon_run,")).startswith(
        "fleetmon_run,inventory=inv.yaml hosts="
    )
