"""The fleet simulator: captures it renders from, its hosts' numbers, its SSH faults, its CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
import yaml

from fleetmon.analyse.pipeline import analyse_host
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.errors import OptionError, ProbeParseError
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.sim.answer import Answer, ScriptInfo, parse_script
from fleetmon.sim.captures import DOMSTATS_GROUPS, SYSSTAT_DT_S, load_captures, read_capture
from fleetmon.sim.hosts import GUEST_CPU_MAX, HostProfile, endpoints, make_fleet, parse_faults
from fleetmon.sim.render import Moment, cpu_shares, fill_root, xl_list_line
from fleetmon.sim.server import CMDFAIL_STDERR, SimConfig, serve
from fleetmon.sources.sections import ProbeOutput, split_output

FLEETMON = str(Path(sys.executable).with_name("fleetmon"))
FAULTS = {"unreachable": 2, "timeout": 1, "garbage": 1, "auth": 1, "cmdfail": 1}
# The root line of this machine's `df -P -k` (the server takes the whole output at start).
DF_K = (
    "Filesystem              1024-blocks     Used Available Capacity Mounted on\n"
    "/dev/vda                  264212084 23586992  82803920      23% /\n"
)


def _block() -> str:
    """A random 127.x.y.0/24 so parallel runs and other helpers' tests do not collide."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"


# --- options ---------------------------------------------------------------------------


def test_faults_spec_is_parsed() -> None:
    assert parse_faults("unreachable=2,timeout=1,auth=0") == {
        "unreachable": 2,
        "timeout": 1,
        "auth": 0,
    }
    assert parse_faults(None) == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "unreachble=2",
            "--faults: unknown fault 'unreachble' (expected one of unreachable, timeout,"
            " garbage, auth, cmdfail)",
        ),
        ("timeout", "--faults: 'timeout' must be NAME=COUNT"),
        ("timeout=x", "--faults: 'timeout=x' must be NAME=COUNT"),
    ],
)
def test_bad_faults_spec_is_refused(spec: str, message: str) -> None:
    with pytest.raises(OptionError) as err:
        parse_faults(spec)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("base", "count", "message"),
    [
        (
            "10.0.0.1",
            3,
            "--base-address: 10.0.0.1 + 3 addresses leaves 127.0.0.0/8;"
            " the simulator listens on loopback addresses only",
        ),
        (
            "127.255.255.250",
            10,
            "--base-address: 127.255.255.250 + 10 addresses leaves 127.0.0.0/8;"
            " the simulator listens on loopback addresses only",
        ),
        ("localhost", 1, "--base-address: 'localhost' is not an IP address"),
    ],
)
def test_only_loopback_addresses_are_accepted(base: str, count: int, message: str) -> None:
    with pytest.raises(OptionError) as err:
        endpoints(base, count, 2222, 1)
    assert str(err.value) == message


def test_hosts_are_spread_over_addresses_and_ports() -> None:
    assert endpoints("127.0.1.254", 5, 2222, 2) == [
        ("127.0.1.254", 2222),
        ("127.0.1.254", 2223),
        ("127.0.1.255", 2222),
        ("127.0.1.255", 2223),
        ("127.0.2.0", 2222),
    ]


def test_the_same_seed_gives_the_same_fleet() -> None:
    where = endpoints("127.0.1.1", 50, 2222, 1)
    one = make_fleet(50, "mixed", 7, FAULTS, where)
    assert one == make_fleet(50, "mixed", 7, FAULTS, where)
    assert one != make_fleet(50, "mixed", 8, FAULTS, where)
    faults = sorted(h.fault for h in one if h.fault)
    assert faults == ["auth", "cmdfail", "garbage", "timeout", "unreachable", "unreachable"]
    assert {h.kind for h in one} == {"kvm", "xen", "linux"}
    assert [h.rack for h in one[18:22]] == ["rack01", "rack01", "rack02", "rack02"]
    # Every fleet has something to flag: a full filesystem and a starved machine.
    assert any(h.full_fs for h in one)
    assert any(h.steal_share > 0 or any(vm.delay_share >= 0.1 for vm in h.vms) for h in one)


def test_simulate_module_imports_no_asyncssh() -> None:
    # `fleetmon --help` builds the simulate parser: it must not pay for asyncssh.
    code = "import sys, fleetmon.cli.simulate; print('asyncssh' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"


# --- captures and rendering --------------------------------------------------------------


def test_counters_at_the_capture_reproduce_it_byte_for_byte() -> None:
    cap = load_captures()
    assert cap.net_dev.render(3.0, 0.0) == read_capture("sysstat/root2/proc/net/dev")
    diskstats = read_capture("sysstat/root2/proc/diskstats").splitlines(keepends=True)
    assert cap.diskstats.render(1.0, 0.0) == "".join(ln for ln in diskstats if " sds " not in ln)
    assert dict(cap.pressure)["io"].render(1.0, 0.0) == read_capture(
        "sysstat/root2/proc/pressure/io"
    )


def test_counters_advance_at_the_captured_rate() -> None:
    cap = load_captures()
    # wlp5s0 received 10000 bytes and 500 packets between root1 and root2.
    one_later = cap.net_dev.render(1.0, SYSSTAT_DT_S).splitlines()[-1].split()
    assert one_later[:3] == ["wlp5s0:", "60085311", "56481"]
    # Scale 2 over the same time: twice the rate.
    assert cap.net_dev.render(2.0, SYSSTAT_DT_S).splitlines()[-1].split()[1] == "60095311"


def test_xl_list_rows_match_the_capture_layout() -> None:
    rows = read_capture("ganeti/test/data/xen-xl-list-4.0.1-four-instances.txt").splitlines()
    for row in rows[1:]:
        name, domid, mem, vcpus, state, secs = row.split()
        assert xl_list_line(name, int(domid), int(mem), int(vcpus), state, float(secs)) == row


def test_a_full_root_is_rounded_up_as_df_does() -> None:
    line = fill_root(DF_K, 0.985).splitlines()[1].split()
    assert line[2:5] == ["260248902", "3963182", "99%"]


def test_script_facts_come_from_the_real_probe() -> None:
    script = build_script(ProbeOptions(interval_s=2.5, hypervisor="kvm", nonce="abcdef0123"))
    # xentop's -d: whole seconds, rounded up.
    assert parse_script(script) == ScriptInfo("abcdef0123", 2.5, "kvm", xentop_delay_s=3)
    # The same script pasted into a command line (Ansible raw, pssh) is found there too.
    import shlex

    assert parse_script("sh -c " + shlex.quote(script)) == ScriptInfo(
        "abcdef0123", 2.5, "kvm", xentop_delay_s=3
    )
    assert parse_script("true") is None


def _analyse(host: HostProfile, interval_s: float = 10.0) -> tuple[ProbeOutput, HostReport]:
    # The answer is rendered at two moments, not served: a long interval costs no time and
    # makes the 1/100 s tick rounding negligible.
    opts = ProbeOptions(interval_s=interval_s, nonce="feedface01")
    info = parse_script(build_script(opts))
    assert info is not None
    ans = Answer(load_captures(), host, info, DF_K, "")
    t0 = 1_790_000_000.0
    text = ans.first(Moment(10.0, t0)) + ans.second(Moment(10.0 + interval_s, t0 + interval_s))
    spec = HostSpec(name=host.name, address=host.address)
    raw = RawResult(spec, Status.OK, stdout=text, exit_status=0, nonce=opts.nonce)
    return split_output(text, opts.nonce), analyse_host(raw)


def _fleet(kind: str, n: int = 40) -> tuple[HostProfile, ...]:
    return make_fleet(n, kind, 3, {}, endpoints("127.0.1.1", n, 2222, 1))


@pytest.mark.parametrize("kind", ["kvm", "xen", "linux"])
def test_every_section_of_the_probe_is_answered(kind: str) -> None:
    host = _fleet(kind)[0]
    out, report = _analyse(host)
    names = {name for (_, name) in out.sections}
    assert {"meta", "uptime", "stat", "meminfo", "diskstats", "net_dev", "df_k", "times"} <= names
    assert report.status is Status.OK, report.error
    hv = {"kvm": {"virsh_domstats", "virsh_nodeinfo"}, "xen": {"xl_list", "xl_info", "xentop"}}
    assert hv.get(kind, set()) <= names


def test_host_metrics_are_the_profile_s_numbers() -> None:
    checked = 0
    for host in _fleet("mixed"):
        _, report = _analyse(host)
        m = report.metrics
        s = cpu_shares(host)
        assert m["cpu.count"] == host.cpus
        assert m["mem.used_pct"] == pytest.approx(100 * host.mem_used_frac, abs=0.01)
        assert m["cpu.steal_pct"] == pytest.approx(100 * s["steal"], abs=0.5)
        assert m["uptime_s"] == pytest.approx(host.uptime_at_start_s + 20.0, abs=0.01)
        assert report.interval_s == pytest.approx(10.0, abs=0.011)
        busy = 100 * (1 - s["idle"] - s["iowait"])
        if (1 - s["idle"]) * 1.35 < 0.99:  # no core hit the 99 % cap
            assert m["cpu.busy_pct"] == pytest.approx(busy, abs=0.5)
            checked += 1
        else:
            assert m["cpu.busy_pct"] <= busy + 0.5
        for fs in report.rows_of("fs"):
            if fs.name == "/":
                assert (fs.metrics["fs.used_pct"] > 98) is host.full_fs
        rates = [
            v
            for row in report.rows_of("disk") + report.rows_of("nic")
            for v in row.metrics.values()
        ]
        assert all(v is None or v >= 0 for v in rates if isinstance(v, float))
    assert checked > 20


def test_kvm_guests_report_their_profile_s_load() -> None:
    host = next(h for h in _fleet("kvm") if any(not vm.running for vm in h.vms))
    _, report = _analyse(host)
    vms = {row.name: row.metrics for row in report.rows_of("vm")}
    assert set(vms) == {vm.name for vm in host.vms}
    running = [vm for vm in host.vms if vm.running]
    assert report.metrics["hv.vms_running"] == len(running)
    for vm in host.vms:
        m = vms[vm.name]
        if not vm.running:
            assert m["vm.state"] == "shutoff"
            continue
        assert m["vm.state"] == "running"
        assert m["vm.vcpus"] == vm.vcpus
        assert m["vm.cpu_pct"] == pytest.approx(100 * vm.cpu_share, abs=0.6)
        assert m["vm.vcpu_delay_pct"] == pytest.approx(100 * vm.delay_share, abs=0.6)
        assert m["vm.mem_max_bytes"] == vm.mem_kib * 1024
        assert m["vm.net_rx_bytes_per_s"] >= 0
        # The capture's net.0.rx.pkts/tx.pkts move on at their rate (7 in 2.73 s) times io_scale.
        for key in ("vm.net_rx_packets_per_s", "vm.net_tx_packets_per_s"):
            assert m[key] == pytest.approx(7 / 2.728612977 * vm.io_scale, abs=0.11), key
        assert "vm.disk_oo_per_s" not in m  # Xen's VBD_OO only: not offered by KVM
    # The tap devices in /proc/net/dev are labelled with their guest.
    taps = {n.labels.get("vm") for n in report.rows_of("nic") if n.name.startswith("vnet")}
    assert taps == {vm.name for vm in running}


def test_xen_guests_get_cpu_from_xl_list_time() -> None:
    # A simulated dom0 without xentop: VM CPU comes from the Δ of xl list's Time(s), which
    # the simulator advances at each guest's profile share.
    host = next(
        h
        for h in _fleet("xen")
        if len([vm for vm in h.vms if vm.running]) >= 2 and not h.has_xentop
    )
    out, report = _analyse(host)
    assert out.get(0, "xentop") is not None
    running = [vm for vm in host.vms if vm.running]
    vms = {row.name: row.metrics for row in report.rows_of("vm")}
    assert set(vms) == {vm.name for vm in running}  # a shut-off Xen domain does not exist
    for vm in running:
        m = vms[vm.name]
        # Time(s) has 0.1 s resolution: over 10 s that is 1 % of one vCPU either way.
        assert m["vm.cpu_pct"] == pytest.approx(100 * vm.cpu_share, abs=1.01 / vm.vcpus)
        assert m["vm.cpu_host_pct"] == pytest.approx(
            100 * vm.cpu_share * vm.vcpus / host.hv_cpus, abs=1.01 / host.hv_cpus
        )
        assert m["vm.disk_reads_per_s"] is None  # nothing but xentop gives those on Xen
    host_pcts = [vms[vm.name]["vm.cpu_host_pct"] for vm in running]
    assert report.metrics["hv.vm_cpu_pct"] == pytest.approx(
        sum(p for p in host_pcts if isinstance(p, float))
    )
    assert any(n.startswith("VM CPU figures from xl list's Time(s)") for n in report.notes)
    assert "hv.mem_overcommit_ratio" not in report.metrics  # no maximum without xentop
    assert any(n.startswith("memory overcommit not reported") for n in report.notes)


def test_most_xen_hosts_have_xentop_and_show_vm_disk_and_network() -> None:
    fleet = [h for h in make_fleet(200, "mixed", 0, {}, [("127.0.0.1", 0)] * 200)]
    xen_hosts = [h for h in fleet if h.kind == "xen"]
    assert 0.6 < sum(h.has_xentop for h in xen_hosts) / len(xen_hosts) < 1.0
    host = next(h for h in xen_hosts if h.has_xentop and sum(vm.running for vm in h.vms) >= 2)
    out, report = _analyse(host)
    assert out.get(0, "xentop") is not None
    vms = {row.name: row.metrics for row in report.rows_of("vm")}
    for vm in (vm for vm in host.vms if vm.running):
        m = vms[vm.name]
        # xentop's CPU(%) is exact over its own -d seconds.
        assert m["vm.cpu_pct"] == pytest.approx(100 * vm.cpu_share, abs=0.06)
        assert m["vm.cpu_host_pct"] == pytest.approx(
            100 * vm.cpu_share * vm.vcpus / host.hv_cpus, abs=0.06
        )
        for key in ("vm.disk_reads_per_s", "vm.disk_read_bytes_per_s", "vm.net_rx_bytes_per_s"):
            assert isinstance(m[key], float), key
            assert m[key] >= 0
        assert m["vm.mem_max_bytes"] == (vm.mem_kib + 1024) * 1024
        # VBD_OO moves one for four writes: each counter truncated, so ±1 of each over 10 s.
        assert m["vm.disk_oo_per_s"] == pytest.approx(m["vm.disk_writes_per_s"] / 4, abs=0.13)
        assert m["vm.disk_oo_per_s"] > 0
        assert "vm.net_rx_packets_per_s" not in m  # xentop counts no packets: not offered
    assert not any("xentop" in n for n in report.notes), report.notes
    ratio = report.metrics["hv.mem_overcommit_ratio"]
    running = [vm for vm in host.vms if vm.running]
    expected = sum((vm.mem_kib + 1024) * 1024 for vm in running) / (host.hv_mem_mib * 1024 * 1024)
    assert ratio == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["kvm", "xen", "mixed"])
def test_no_simulated_machine_gives_its_guests_more_cpu_than_it_has(kind: str) -> None:
    # xen0197 of the default mixed fleet asked for 124.7 % of its 16 CPUs (a report showed
    # 125.6 % guest CPU): guests are now fitted into GUEST_CPU_MAX of the CPUs they share.
    for h in make_fleet(1000, kind, 0, {}, [("127.0.0.1", 0)] * 1000):
        cpus = h.hv_cpus - h.cpus if h.kind == "xen" else h.cpus
        demand = sum(vm.vcpus * vm.cpu_share for vm in h.vms if vm.running)
        assert demand <= GUEST_CPU_MAX * cpus + 0.01, h.name


# --- the server -------------------------------------------------------------------------


async def _probe(sim_host: HostProfile, known: str, key: asyncssh.SSHKey) -> tuple[str, object]:
    opts = ProbeOptions(interval_s=0.3)
    try:
        async with (
            asyncio.timeout(10),  # generous: a loaded CI runner must not fake a timeout
            asyncssh.connect(
                sim_host.address,
                sim_host.port,
                known_hosts=asyncssh.import_known_hosts(known),
                client_keys=[key],
                username="sim",
                config=None,
            ) as conn,
        ):
            t0 = time.monotonic()
            r = await conn.run(REMOTE_COMMAND, input=build_script(opts).encode(), encoding=None)
            elapsed = time.monotonic() - t0
            if r.exit_status != 0:
                return "exit", (r.exit_status, r.stderr)
            try:
                out = split_output(r.stdout.decode(), opts.nonce)
            except (UnicodeDecodeError, ProbeParseError):
                return "garbage", len(r.stdout)
            other = await conn.run("true")
            return "ok", (out, elapsed, other.exit_status)
    except TimeoutError:
        return "timeout", None
    except ConnectionRefusedError:
        return "refused", None
    except asyncssh.PermissionDenied:
        return "denied", None


def test_the_server_plays_every_host_and_fault() -> None:
    async def main() -> None:
        cfg = SimConfig(hosts=20, kind="mixed", base_address=_block() + ".1", port=0, faults=FAULTS)
        async with serve(cfg) as sim:
            known = sim.known_hosts()
            results = await asyncio.gather(*(_probe(h, known, sim.client_key) for h in sim.hosts))
            seen: dict[str | None, set[str]] = {}
            for host, (kind, detail) in zip(sim.hosts, results, strict=True):
                seen.setdefault(host.fault, set()).add(kind)
                if host.fault == "cmdfail":
                    assert detail == (1, CMDFAIL_STDERR.encode())
                if kind == "ok":
                    out, elapsed, true_rc = detail  # type: ignore[misc]
                    up1 = float(out.text(1, "uptime").split()[0])
                    up2 = float(out.text(2, "uptime").split()[0])
                    # The uptime advances by the real time waited between the samples.
                    assert 0.29 <= up2 - up1 <= elapsed + 0.02
                    assert true_rc == 0
            assert seen == {
                None: {"ok"},
                "unreachable": {"refused"},
                "timeout": {"timeout"},
                "garbage": {"garbage"},
                "auth": {"denied"},
                "cmdfail": {"exit"},
            }
            assert sim.answers == 14

    asyncio.run(main())


def test_a_wrong_client_key_is_refused() -> None:
    async def main() -> None:
        cfg = SimConfig(hosts=1, base_address=_block() + ".1", port=0)
        async with serve(cfg) as sim:
            stranger = asyncssh.generate_private_key("ssh-ed25519")
            kind, _ = await _probe(sim.hosts[0], sim.known_hosts(), stranger)
            assert kind == "denied"

    asyncio.run(main())


def test_a_busy_port_is_an_input_error() -> None:
    address = _block() + ".1"
    with socket.socket() as holder:
        holder.bind((address, 0))
        holder.listen()
        port = holder.getsockname()[1]
        cmd = [FLEETMON, "simulate", "--hosts", "1", "--base-address", address]
        out = subprocess.run(
            [*cmd, "--port", str(port)], capture_output=True, text=True, timeout=60, check=False
        )
    assert out.returncode == 4
    assert (
        out.stderr
        == f"fleetmon: error: cannot listen on {address}:{port}: Address already in use\n"
    )


def test_latency_delays_every_answer() -> None:
    async def main() -> None:
        cfg = SimConfig(hosts=1, base_address=_block() + ".1", port=0, latency_ms=300)
        async with serve(cfg) as sim:
            kind, detail = await _probe(sim.hosts[0], sim.known_hosts(), sim.client_key)
            assert kind == "ok"
            _, elapsed, _ = detail  # type: ignore[misc]
            assert elapsed >= 0.3 + 0.3  # the interval, then the reply's latency

    asyncio.run(main())


# --- the command line, end to end --------------------------------------------------------


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    inv = tmp_path / "fleet.yaml"
    cmd = [FLEETMON, "simulate", "--hosts", "20", "--kind", "mixed", "--seed", "5"]
    cmd += ["--base-address", _block() + ".1", "--port", "0", "--inventory-out", str(inv)]
    cmd += ["--faults", "unreachable=2,timeout=1,garbage=1,auth=1,cmdfail=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("fleetmon simulate: ready: 20 hosts ("), ready
        assert ready.endswith("faults: 1 auth, 1 cmdfail, 1 garbage, 1 timeout, 2 unreachable\n")
        run_line = proc.stdout.readline()
        known = Path(f"{inv}.known_hosts")
        assert run_line == f"fleetmon simulate: collect them with: fleetmon run {inv}\n"
        yield inv, known, run_line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert re.fullmatch(r"fleetmon simulate: stopped after \d+ probe answers\n", err), err


@pytest.mark.slow
def test_fleetmon_run_collects_the_simulated_fleet(simulator: tuple[Path, Path, str]) -> None:
    inv, known, _ = simulator
    assert oct(os.stat(f"{inv}.key").st_mode & 0o777) == "0o600"
    # No --known-hosts: the inventory names the simulator's file for every host.
    assert yaml.safe_load(inv.read_text())["all"]["vars"]["ansible_ssh_common_args"] == (
        f"-o UserKnownHostsFile={known}"
    )
    cmd = [FLEETMON, "run", str(inv), "--format", "json"]
    cmd += ["--interval", "0.5", "--timeout", "12", "--no-lock"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode in (1, 2, 3), out.stderr
    report = json.loads(out.stdout)
    groups = yaml.safe_load(inv.read_text())["all"]["children"]
    fault_of = {
        name: hv["sim_fault"]
        for kind in ("kvm", "xen", "linux")
        for name, hv in groups.get(kind, {}).get("hosts", {}).items()
        if "sim_fault" in hv
    }
    assert len(fault_of) == 6
    expected = {
        "unreachable": "unreachable",
        "timeout": "timeout",
        "garbage": "parse_error",
        "auth": "auth_failed",
        "cmdfail": "command_failed",
    }
    statuses = {h["name"]: h["status"] for h in report["hosts"]}
    assert len(statuses) == 20
    for name, status in statuses.items():
        assert status == expected.get(fault_of.get(name, ""), "ok"), (name, status)
    kvm_ok = [h for h in report["hosts"] if "kvm" in h["groups"] and h["status"] == "ok"]
    assert kvm_ok
    assert all(h["vms"] and h["metrics"]["hv.vms_total"] == len(h["vms"]) for h in kvm_ok)
    # Xen hosts have no xentop: their guests' CPU comes from xl list's Time(s).
    xen_ok = [h for h in report["hosts"] if "xen" in h["groups"] and h["status"] == "ok"]
    assert xen_ok
    for h in xen_ok:
        cpu = [v["metrics"]["vm.cpu_pct"] for v in h["vms"]]
        assert cpu, h["name"]
        assert all(0 <= c <= 100 for c in cpu), (h["name"], cpu)


def test_a_machine_without_a_visible_root_filesystem_serves_the_recorded_df(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In a chroot df sees only the pseudo filesystems mounted inside it: the simulated hosts
    # then get the recorded df of the development VM, so they still have a "/" to fill.
    import subprocess

    from fleetmon.sim import server

    chroot = "Filesystem 1024-blocks Used Available Capacity Mounted on\nproc 0 0 0 - /proc\n"
    monkeypatch.setattr(
        server.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=chroot.encode(), stderr=b""),
    )
    assert server.local_df("-k").splitlines()[-1].split()[-1] == "/"
    assert "/dev/vda" in server.local_df("-i")
    monkeypatch.undo()
    here = server.local_df("-k")  # this machine's own, which has a root filesystem
    assert any(line.split()[-1:] == ["/"] for line in here.splitlines()[1:])


def test_a_mount_point_that_is_no_utf8_does_not_stop_the_simulator(tmp_path: Path) -> None:
    """A tmpfs on a folder named b"a\\xffb" (another test's, mounted for a moment) made every
    `fleetmon simulate` of the machine die with a UnicodeDecodeError reading df. Here a `df`
    first in PATH prints such a line beside a root filesystem (no mount: others would see it;
    and a chroot's own df has no "/", which would serve the recorded one)."""
    (tmp_path / "df").write_bytes(
        b"#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        b"echo '/dev/sda1 1000 10 990 1% /'\n"
        b"printf 'tmpfs 100 0 100 0%% /srv/a\\377b\\n'\n"
    )
    (tmp_path / "df").chmod(0o755)
    code = "from fleetmon.sim.server import local_df; print(local_df('-k'))"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.rstrip("\n").splitlines()
    assert lines[-1] == "tmpfs 100 0 100 0% /srv/a\ufffdb", lines
    assert lines[-2].split()[-1] == "/", lines  # this df's, not the recorded one


def test_simulated_domstats_has_the_groups_the_probe_asks_for_and_no_other() -> None:
    # The lab's captures are of `domstats --raw` with every group (dirtyrate.*...); the probe
    # asks for six: a simulated host answers what a real one would, no more, no less.
    script = build_script(ProbeOptions(interval_s=1.0, nonce="feedface01"))
    asked = re.search(r"FM_STATS='([^']*)'", script)
    assert asked is not None
    assert sorted(asked.group(1).split()) == sorted(DOMSTATS_GROUPS)
    out, _ = _analyse(_fleet("kvm")[0])
    keys = {
        line.strip().partition("=")[0]
        for line in out.sections[2, "virsh_domstats"].text.splitlines()
        if "=" in line
    }
    groups = {k.partition(".")[0] + "." for k in keys}
    assert groups == set(DOMSTATS_GROUPS.values())
    assert "dirtyrate.calc_mode" in read_capture("lab-libvirt9-qemu7-tcg/sample2/domstats--raw.txt")


def test_containers_past_10000_a_host_are_an_input_error() -> None:
    """--containers 100000000 built every container in memory before anything listened."""
    out = subprocess.run(
        [FLEETMON, "simulate", "--hosts", "1", "--containers", "10001"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (out.returncode, out.stdout) == (4, "")
    assert out.stderr.startswith(
        "fleetmon: error: argument --containers: --containers must be 10000 or less, got '10001'"
    )


@pytest.mark.parametrize(
    ("days", "every", "message"),
    [
        ("1e9", "5m", "--days 1e+09: the runs would start before 1970 (at most "),
        ("1e300", "1h", "--days 1e+300: the runs would start before 1970 (at most "),
        ("20000", "5m", "--days 20000: 5,760,000 runs of --every 5m, at most 1,000,000: "),
        ("12", "1s", "--days 12: 1,036,800 runs of --every 1s, at most 1,000,000: "),
    ],
)
def test_fill_history_refuses_absurd_days_before_creating_anything(
    tmp_path: Path, days: str, every: str, message: str
) -> None:
    """--days 1e9 was an internal error (year -2735881, exit 70) after the history had been
    created, empty; --every 1s --days 1e4 a loop for years."""
    path = tmp_path / "fh.sqlite"
    res = subprocess.run(
        [sys.executable, "-m", "fleetmon", "simulate", "--hosts", "1", "--fill-history", path,
         "--days", days, "--every", every],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 4, res.stderr
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"fleetmon: error: {message}")
    assert list(tmp_path.iterdir()) == []  # no history, no lock beside it
