"""A hostile target (issue 16): absurd magnitudes, counts that would size allocations and the
largest output under the cap make one host `parse_error` (or a plain result) quickly, in
bounded memory, and never an exception that ends the run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from clirun import ROOT
from hostile import CAP_BYTES, HUGE, huge_counter, huge_counts, many_lines, with_sections
from probetext import NONCE, probe_stdout, section
from rootonly import require_root

from fleetmon.analyse.pipeline import analyse_host, build_report
from fleetmon.errors import ProbeParseError
from fleetmon.model import HostSpec, RawResult, RunInfo, Status
from fleetmon.render.html import render_html
from fleetmon.render.nagios import render_nagios
from fleetmon.render.text import clean, render_text
from fleetmon.sources import MAX_DEVICE_LINES, to_float, to_int, to_ints
from fleetmon.sources.uuids import parse_virsh_uuids
from fleetmon.sources.virsh import MAX_DEVICES, parse_domstats

DATA = Path(__file__).parent / "data"
UUID = "8f4e2a8c-1f3b-4c5d-9e6f-0a1b2c3d4e5f"

#: CPU seconds allowed to analyse the largest output under the cap (measured ~1-3 s on a
#: loaded 2-core machine; the bound catches anything quadratic, which took 726 s).
MAX_CPU_S = 4.0


def _analyse(stdout: str) -> tuple[Status, str | None]:
    host = analyse_host(
        RawResult(HostSpec(name="evil", address="evil"), Status.OK, stdout=stdout, nonce=NONCE)
    )
    return host.status, host.error


def test_counter_tokens_bounded_to_u64() -> None:
    assert to_int("stat", str(2**64 - 1), "ctxt") == 2**64 - 1
    with pytest.raises(ProbeParseError, match=r"^section stat: ctxt: 21-digit value exceeds"):
        to_int("stat", str(2**64 * 10), "ctxt")
    with pytest.raises(ProbeParseError, match=r"^section stat: ctxt: 20-digit value exceeds"):
        to_int("stat", str(2**64), "ctxt")
    with pytest.raises(ProbeParseError, match=r"cpu column 2: 400-digit value exceeds 2\*\*64"):
        to_ints("stat", ["1", HUGE, "3"], "cpu column ")
    with pytest.raises(ProbeParseError, match=r"^section loadavg: load 1m: '1e308' exceeds"):
        to_float("loadavg", "1e308", "load 1m")


@pytest.mark.parametrize(
    ("sect", "error"),
    [
        ("uptime", "parse error: section uptime: uptime: expected a finite number, got '9999"),
        ("stat", "parse error: section stat: cpu column 1: 400-digit value exceeds 2**64"),
        ("meminfo", "parse error: section meminfo: MemTotal: 400-digit value exceeds 2**64"),
        ("vmstat", "parse error: section vmstat: nr_free_pages: 400-digit value exceeds"),
        ("loadavg", "parse error: section loadavg: load 1m: expected a finite number"),
        ("diskstats", "parse error: section diskstats:"),
        ("net_dev", "parse error: section net_dev: lo column 1: 400-digit value exceeds"),
        ("pressure_io", "parse error: section pressure_io: avg10: expected a finite number"),
    ],
)
def test_huge_counter_makes_the_host_parse_error(sect: str, error: str) -> None:
    status, message = _analyse(huge_counter(sect))
    assert status is Status.PARSE_ERROR
    assert message is not None
    assert message.startswith(error), message


def test_huge_vm_counter_costs_the_vms_not_the_host() -> None:
    host = analyse_host(
        RawResult(
            HostSpec(name="evil", address="evil"),
            Status.OK,
            stdout=huge_counter("virsh_domstats"),
            nonce=NONCE,
        )
    )
    assert host.status is Status.OK
    assert host.rows_of("vm") == ()
    assert (
        "VMs not reported: kvm output unreadable: section virsh_domstats: state.state:"
        " 400-digit value exceeds 2**64 (not a counter)"
    ) in host.notes


def test_huge_counts_allocate_nothing() -> None:
    text = huge_counts()
    tracemalloc.start()
    try:
        start = time.process_time()
        status, error = _analyse(text)
        elapsed = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"net.count=999999999999: {elapsed * 1000:.1f} ms CPU, {peak / 1024:.0f} KiB peak")
    assert (status, error) == (Status.OK, None)
    assert elapsed < 0.5
    assert peak < 8 * 1024 * 1024  # the output itself is ~40 KiB; 999999999999 slots were GBs


def test_device_slots_are_what_was_printed() -> None:
    (dom,) = parse_domstats(
        "Domain: 'evil'\n  net.count=999999999999\n  net.0.name=vnet0\n  block.count=5\n"
    )
    assert list(dom.indexed("net")) == ["vnet0", "#1", "#2"]  # no more than the 3 fields
    assert list(dom.device_slots("block")) == ["#0", "#1", "#2"]
    many = "".join(f"  net.{i}.name=n{i}\n" for i in range(MAX_DEVICES + 10))
    (big,) = parse_domstats(f"Domain: 'big'\n  net.count={MAX_DEVICES + 10}\n{many}")
    assert len(big.indexed("net")) == MAX_DEVICES


def test_more_domains_than_a_host_runs_is_a_parse_error() -> None:
    text = "".join(f"Domain: 'vm{i}'\n  state.state=1\n" for i in range(5000))
    with pytest.raises(ProbeParseError, match=r"more than 4096 domains"):
        parse_domstats(text)


def _timed(text: str) -> tuple[Status, str | None, float]:
    start = time.process_time()
    status, error = _analyse(text)
    return status, error, time.process_time() - start


def test_largest_domstats_under_the_cap_analyses_in_linear_time() -> None:
    text = many_lines("virsh_domstats")
    assert CAP_BYTES - 1024 * 1024 < len(text.encode()) <= CAP_BYTES
    status, error, elapsed = _timed(text)
    print(f"virsh_domstats: {len(text) / 2**20:.1f} MiB analysed in {elapsed:.2f} s CPU")
    assert (status, error) == (Status.OK, None)
    assert elapsed <= MAX_CPU_S


@pytest.mark.parametrize("name", ["diskstats", "net_dev"])
def test_more_devices_than_a_host_has_is_refused_before_parsing(name: str) -> None:
    # The largest output under the cap: ~97,000 device lines a sample.
    text = many_lines(name)
    assert CAP_BYTES - 1024 * 1024 < len(text.encode()) <= CAP_BYTES
    status, error, elapsed = _timed(text)
    print(f"{name}: {len(text) / 2**20:.1f} MiB refused in {elapsed:.2f} s CPU")
    assert status is Status.PARSE_ERROR
    assert error is not None
    assert error.startswith(f"parse error: section {name}: ")
    assert f"more than the {MAX_DEVICE_LINES} devices fleetmon reads" in error
    assert elapsed <= MAX_CPU_S / 4  # counted, not parsed


@pytest.mark.parametrize("name", ["diskstats", "net_dev"])
def test_as_many_devices_as_fleetmon_reads_analyse_in_linear_time(name: str) -> None:
    # At the device limit (which counts a sample's lines, net_dev's two headers included).
    text = many_lines(name, count=MAX_DEVICE_LINES - 2)
    lines = 2 * (MAX_DEVICE_LINES - 2)
    status, error, elapsed = _timed(text)
    print(
        f"{name}: {len(text) / 2**20:.1f} MiB, {lines} device lines analysed in {elapsed:.2f} s CPU"
    )
    assert (status, error) == (Status.OK, None)
    assert elapsed <= MAX_CPU_S


#: Names and reasons a target (or a dynamic inventory) controls: a bidi override, the
#: isolates, line and paragraph separators, a zero-width joiner, OSC 52 and clear-screen.
HOSTILE_TEXT = "evil\u202eexe.gpj\u2066x\u2069\u2028y\u2029z\u200d\x1b]52;c;QQ==\x07\x1b[2J"
UNSAFE = ("\u202e", "\u2066", "\u2069", "\u2028", "\u2029", "\u200d", "\x1b", "\x07")


def test_target_supplied_names_are_escaped_in_text_and_nagios() -> None:
    vm = "vm\u202eexe.gpj\u2066\x1b[2J"
    domstats = f"Domain: '{vm}'\n  state.state=1\n  cpu.time=1\n  vcpu.current=1\n"
    raws = [
        RawResult(
            HostSpec(name="kvm", address="kvm"),
            Status.OK,
            stdout=with_sections(NONCE, "virsh_domstats", domstats, domstats),
            nonce=NONCE,
        ),
        RawResult(
            HostSpec(name=HOSTILE_TEXT, address="h"),
            Status.COMMAND_FAILED,
            reason=f"probe failed: {HOSTILE_TEXT}",
        ),
    ]
    report = build_report(raws, RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml"))
    assert [vm.name for vm in report.hosts[0].rows_of("vm")] == [vm]
    text, nagios = render_text(report), render_nagios(report)
    for output in (text, nagios):
        assert not any(char in output for char in UNSAFE), output
    assert "evil\\u202eexe.gpj\\u2066x\\u2069\\u2028y\\u2029z\\u200d\\x1b]52;c;QQ==\\x07" in text
    # Nagios output keeps one line per item: the separators are whitespace, made spaces.
    assert "evil\\u202eexe.gpj\\u2066x\\u2069 y z\\u200d\\x1b]52;c;QQ==\\x07" in nagios
    assert "vm\\u202eexe.gpj\\u2066\\x1b[2J" in text
    assert clean("plain ascii and ünïcode") == "plain ascii and ünïcode"
    # The HTML report too (markup aside, the characters went in raw: HTML parse errors,
    # and a bidi override reordering the page's text).
    page = render_html(report)
    assert not any(char in page for char in UNSAFE)
    assert "evil\\u202eexe.gpj\\u2066x\\u2069\\u2028y\\u2029z\\u200d\\x1b]52;c;QQ==\\x07" in page
    assert "vm\\u202eexe.gpj\\u2066\\x1b[2J" in page


@pytest.mark.parametrize("odd", ["\u2028", "\u0085", "\x1c", "\x0b"])
def test_a_domain_named_with_a_line_separator_keeps_its_vms(odd: str) -> None:
    """libvirt takes any name; a separator str.splitlines() ends a line at was one: every
    VM of the host lost (a parse error of virsh_domstats). Lines end at \\n only."""
    name = f"d\u00e9\u2122 {odd}ok"
    domstats = (
        f"Domain: 'web'\n  state.state=1\n  cpu.time=1\n  vcpu.current=1\n\n"
        f"Domain: '{name}'\n  state.state=1\n  cpu.time=5\n  vcpu.current=2\n"
    )
    assert [d.name for d in parse_domstats(domstats)] == ["web", name]
    assert [d.name for d in parse_domstats(domstats.replace("\n", "\r\n"))] == ["web", name]
    raw = RawResult(
        HostSpec(name="kvm", address="kvm"),
        Status.OK,
        stdout=with_sections(NONCE, "virsh_domstats", domstats, domstats),
        nonce=NONCE,
    )
    host = analyse_host(raw)
    assert sorted(vm.name for vm in host.rows_of("vm")) == sorted(["web", name])
    assert parse_virsh_uuids(f" {UUID}  {name}\n") == {name: UUID}


def test_a_mount_point_listed_twice_is_one_filesystem_row() -> None:
    """BusyBox's df lists an over-mounted mount point again (GNU df the one on top): two
    rows of one name were two series of one identity (a Pushgateway refuses the push)."""
    df_k = (
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/vda          1000000   500000    500000      50% /\n"
        "/dev/vdb          1000000   270000    730000      27% /\n"
        "/dev/vdc          1000000   100000    900000      10% /srv\n"
    )
    raw = RawResult(
        HostSpec(name="kvm", address="kvm"),
        Status.OK,
        stdout=re.sub(
            rf"@@fleetmon-{NONCE}@@ begin 0 df_k\n.*?@@ end 0 df_k 0\n",
            lambda _m: section(0, "df_k", df_k),
            probe_stdout(kvm=True),
            flags=re.S,
        ),
        nonce=NONCE,
    )
    rows = analyse_host(raw).rows_of("fs")
    assert [(r.name, r.labels["source"], r.metrics["fs.used_pct"]) for r in rows] == [
        ("/", "/dev/vdb", 27.0), ("/srv", "/dev/vdc", 10.0),
    ]  # fmt: skip


def _with_df(df_k: str, df_i: str) -> str:
    """The composite host's probe output with these df -P -k and -i sections."""
    text = probe_stdout(kvm=True)
    for name, body in (("df_k", df_k), ("df_i", df_i)):
        text = re.sub(
            rf"@@fleetmon-{NONCE}@@ begin 0 {name}\n.*?@@ end 0 {name} 0\n",
            lambda _m, name=name, body=body: section(0, name, body),
            text,
            flags=re.S,
        )
    return text


ODD_MOUNTS = DATA / "fleetmon-capture" / "odd-mounts"


@pytest.mark.parametrize("df", ["busybox", "gnu"])
def test_a_mount_point_with_a_newline_keeps_the_host(df: str) -> None:
    """BusyBox's df prints a mount point named "a<newline>b" on two lines (captured:
    tmpfs mounts named with a newline, tab, backslash, space and byte 0xff): the whole host
    was a parse error. Now its filesystems are read, the newline noted, every name escaped
    where rendered."""
    k, i = ((ODD_MOUNTS / f"{df}-df-P-{x}.txt").read_bytes() for x in ("k", "i"))
    raw = RawResult(
        HostSpec(name="kvm", address="kvm"),
        Status.OK,
        stdout=_with_df(k.decode("utf-8", "replace"), i.decode("utf-8", "replace")),
        nonce=NONCE,
    )
    host = analyse_host(raw)
    assert host.status is Status.OK, host.error
    rows = host.rows_of("fs")
    odd = "/tmp/h4/fm-odd/"
    names = ["a\nb", "c\td"] if df == "busybox" else ["a?b", "c?d"]
    assert [r.name for r in rows] == [odd + n for n in (*names, "e\\f", "g h", "x\ufffdy")]
    assert all(r.metrics["fs.used_pct"] == 0.0 for r in rows)
    assert all(r.metrics["fs.inodes_used_pct"] == 1.0 for r in rows)  # ceil(1/3085448)
    joined = [n for n in host.notes if n.startswith("df printed")]
    assert joined == (
        ["df printed '/tmp/h4/fm-odd/a\\nb' across lines (a newline in the name): read as one name"]
        if df == "busybox"
        else []
    )
    report = build_report([raw], RunInfo("0.1.0", "2026-11-26T03:00:00Z", 1.0, "inv.yaml"))
    for out in (render_text(report), render_nagios(report)):
        assert odd + "a\nb" not in out
        assert odd + "c\td" not in out


def test_the_real_probe_reads_a_mount_point_with_a_newline_through_busybox_df(
    tmp_path: Path,
) -> None:
    """The real probe on this machine (local connection), BusyBox as its df, a tmpfs mounted
    at /proc/fs/a<newline>b in a mount namespace (/proc made private first, as
    test_no_psi does: nothing reaches the machine's mounts)."""
    require_root("a mount namespace holds the oddly named mount point")
    unshare, busybox = shutil.which("unshare"), shutil.which("busybox")
    assert unshare is not None, "unshare (util-linux) is needed: tests/setup/system-deps.sh"
    assert busybox is not None, "busybox is needed: tests/setup/system-deps.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "df").symlink_to(busybox)  # BusyBox runs the applet its name says
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        "      fleetmon_hypervisor: none\n",
        encoding="utf-8",
    )
    out = tmp_path / "report.json"
    script = (
        "mount --make-rprivate /proc && mount -t tmpfs none /proc/fs && "
        'mkdir "/proc/fs/a\nb" && mount -t tmpfs fmodd "/proc/fs/a\nb" && '
        'exec "$0" -m fleetmon run "$1" --interval 1 --no-lock -q --history none '
        '--format json -o "$2"'
    )
    r = subprocess.run(
        [unshare, "-m", "--propagation", "unchanged", "sh", "-c", script, sys.executable,
         str(inv), str(out)],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert r.stderr == ""
    (host,) = json.loads(out.read_text(encoding="utf-8"))["hosts"]
    assert host["status"] == "ok", host["error"]
    fs = {row["name"]: row for row in host["filesystems"]}
    assert fs["/proc/fs/a\nb"]["labels"]["source"] == "fmodd"
    assert fs["/proc/fs/a\nb"]["metrics"]["fs.used_pct"] == 0.0
    assert (
        "df printed '/proc/fs/a\\nb' across lines (a newline in the name): read as one name"
        in (host["notes"])
    )
