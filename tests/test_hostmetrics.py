"""compute_host on consecutive sysstat captures (vs sysstat's output), edge cases, live probe."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

import pytest
from probetext import PROC
from test_rules_util import host as rows_host
from test_rules_util import spec

import fleetmon
from fleetmon.analyse.host import HOST_METRICS, HostOptions, compute_host
from fleetmon.collect.probe import REMOTE_COMMAND, ProbeOptions, build_script
from fleetmon.errors import ProbeParseError
from fleetmon.model import HostMetrics, MetricValue, Row, Severity
from fleetmon.rules import default_rule_files, evaluate, load_rules
from fleetmon.sources.df import is_pseudo, parse_df
from fleetmon.sources.sections import ProbeOutput, Section, split_output
from fleetmon.sources.stat import cpu_shares, parse_stat

DATA = Path(__file__).parent / "data"
SYSSTAT = DATA / "sysstat"

FILES = PROC  # section name -> path under a sysstat root


def probe_from_roots(
    first: str, second: str, boot_ids: tuple[str, str] | None = None
) -> ProbeOutput:
    """What the probe would print on a host whose /proc is sysstat's rootN then rootM."""
    sections: dict[tuple[int, str], Section] = {}
    for sample, root in ((1, first), (2, second)):
        for name, rel in FILES.items():
            path = SYSSTAT / root / rel
            # `rd` on a missing file: empty text, exit status 1.
            text, rc = (path.read_text(encoding="utf-8"), 0) if path.exists() else ("", 1)
            sections[(sample, name)] = Section(sample, name, text, rc)
        if boot_ids is not None:
            sections[(sample, "boot_id")] = Section(sample, "boot_id", boot_ids[sample - 1], 0)
    for name, rel in (("df_k", "df-P-k.txt"), ("df_i", "df-P-i.txt")):
        text = (DATA / "fleetmon-capture" / rel).read_text(encoding="utf-8")
        sections[(0, name)] = Section(0, name, text, 0)
    return ProbeOutput(sections)


def excerpt(name: str) -> dict[str, dict[tuple[str, str], str]]:
    """sysstat output excerpt -> {timestamp: {(column, row label): printed value}}."""
    out: dict[str, dict[tuple[str, str], str]] = {}
    for block in (SYSSTAT / "expected" / name).read_text(encoding="utf-8").split("\n\n"):
        header, *rows = block.strip().splitlines()
        cols = header.split()
        labelled = cols[1] in ("CPU", "DEV", "IFACE")
        for row in rows:
            tokens = row.split()
            label = tokens[1] if labelled else "-"
            values = tokens[2:] if labelled else tokens[1:]
            names = cols[2:] if labelled else cols[1:]
            out.setdefault(tokens[0], {}).update(
                {(c, label): v for c, v in zip(names, values, strict=True)}
            )
    return out


SAR = excerpt("sar-A.excerpt")
MPSTAT = excerpt("mpstat-A.excerpt")
#: (first root, second root, sar timestamp, mpstat timestamp, iostat block)
PAIRS = [
    ("root1", "root2", "12:53:21", "00:00:01", 0),
    ("root2", "root3", "12:53:22", "00:00:02", 1),
]


def num(value: MetricValue) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def fmt(value: MetricValue) -> str:
    return f"{num(value):.2f}"


def row(rows: tuple[Row, ...], name: str) -> Row:
    return next(r for r in rows if r.name == name)


@pytest.fixture(params=PAIRS, ids=["root1-root2", "root2-root3"])
def pair(request: pytest.FixtureRequest) -> tuple[HostMetrics, str, str, int]:
    first, second, sar_ts, mp_ts, io_block = request.param
    return compute_host(probe_from_roots(first, second)), sar_ts, mp_ts, io_block


def test_interval_is_the_uptime_delta() -> None:
    hm = compute_host(probe_from_roots("root1", "root2"))
    assert hm.interval_s == pytest.approx(7223.72 - 7192.55)
    assert hm.metrics["host.rebooted"] is False  # same btime, no boot id in the captures


def test_host_cpu_equals_iostat_avg_cpu(pair: tuple[HostMetrics, str, str, int]) -> None:
    # iostat's avg-cpu uses the aggregate cpu line, as METRICS.md does. (%system = sys+irq+soft.)
    hm, _, _, block = pair
    text = (SYSSTAT / "expected" / "iostat.excerpt").read_text(encoding="utf-8")
    printed = text.split("\n\n")[block].splitlines()[1].split()
    m = hm.metrics
    system = sum(num(m[k]) for k in ("cpu.system_pct", "cpu.irq_pct", "cpu.softirq_pct"))
    ours = [m["cpu.user_pct"], m["cpu.nice_pct"], system, m["cpu.iowait_pct"], m["cpu.steal_pct"]]
    assert [fmt(v) for v in [*ours, m["cpu.idle_pct"]]] == printed


def test_sar_all_cpu_differs_on_these_edited_roots() -> None:
    # sar/mpstat rebuild "all" from the cpuN lines present in both samples; the roots were
    # hand-edited so the aggregate line is not their sum (cpu8 unplugged). On a real kernel
    # the aggregate line is that sum. We follow METRICS.md (aggregate) = iostat here.
    hm = compute_host(probe_from_roots("root1", "root2"))
    assert fmt(hm.metrics["cpu.idle_pct"]) == "82.89"
    assert SAR["12:53:21"][("%idle", "all")] == "82.88"


def test_per_cpu_shares_equal_mpstat(pair: tuple[HostMetrics, str, str, int]) -> None:
    _, _, mp_ts, _ = pair
    first, second = next((a, b) for a, b, _, ts, _ in PAIRS if ts == mp_ts)
    before = dict(parse_stat((SYSSTAT / first / "proc/stat").read_text(encoding="utf-8")).cpus)
    after = dict(parse_stat((SYSSTAT / second / "proc/stat").read_text(encoding="utf-8")).cpus)
    expected = MPSTAT[mp_ts]
    compared = 0
    for name, cur in after.items():
        cpu = name[3:]
        shares = cpu_shares(before[name], cur) if name in before else None
        if shares is None:
            continue  # no tick: mpstat prints the CPU as 100 % idle (offline); we skip it
        ours = [shares.user_pct, shares.nice_pct, shares.system_pct, shares.iowait_pct]
        ours += [shares.irq_pct, shares.softirq_pct, shares.steal_pct, shares.idle_pct]
        cols = ["%usr", "%nice", "%sys", "%iowait", "%irq", "%soft", "%steal", "%idle"]
        assert [fmt(v) for v in ours] == [expected[(c, cpu)] for c in cols], name
        compared += 1
    assert compared >= 6  # root3 lacks cpu6; cpu3 had no tick


def test_max_core_busy_matches_mpstat(pair: tuple[HostMetrics, str, str, int]) -> None:
    hm, _, mp_ts, _ = pair
    per_cpu = {label for (_, label) in MPSTAT[mp_ts] if label.isdigit()}
    busiest = max(
        100 - float(MPSTAT[mp_ts][("%idle", c)]) - float(MPSTAT[mp_ts][("%iowait", c)])
        for c in per_cpu
    )
    assert hm.metrics["cpu.max_core_busy_pct"] == pytest.approx(busiest, abs=0.011)


def test_host_rates_equal_sar_and_mpstat(pair: tuple[HostMetrics, str, str, int]) -> None:
    hm, ts, mp_ts, _ = pair
    m, sar = hm.metrics, SAR[ts]
    assert fmt(m["cpu.ctxt_per_s"]) == sar[("cswch/s", "-")]
    assert fmt(m["cpu.forks_per_s"]) == sar[("proc/s", "-")]
    assert fmt(m["cpu.intr_per_s"]) == MPSTAT[mp_ts][("intr/s", "all")]
    assert fmt(m["paging.swap_in_pages_per_s"]) == sar[("pswpin/s", "-")]
    assert fmt(m["paging.swap_out_pages_per_s"]) == sar[("pswpout/s", "-")]
    assert fmt(m["mem.used_pct"]) == sar[("%memused", "-")]
    assert fmt(m["mem.commit_pct"]) == sar[("%commit", "-")]
    assert fmt(m["mem.swap_used_pct"]) == sar[("%swpused", "-")]
    assert fmt(m["load.1m"]) == sar[("ldavg-1", "-")]
    assert fmt(m["psi.cpu_some_pct"]) == sar[("%scpu", "-")]
    assert fmt(m["psi.io_some_pct"]) == sar[("%sio", "-")]
    assert fmt(m["psi.io_full_pct"]) == sar[("%fio", "-")]
    assert fmt(m["psi.memory_some_pct"]) == sar[("%smem", "-")]
    assert fmt(m["psi.memory_full_pct"]) == sar[("%fmem", "-")]
    assert m["oom.kills"] == 0


def test_disks_equal_sar_d(pair: tuple[HostMetrics, str, str, int]) -> None:
    hm, ts, _, _ = pair
    sar = SAR[ts]
    assert [r.name for r in hm.rows_of("disk")] == [
        "sda",
        "sdb",
        "sdq",
        "sdr",
        "sds",
    ]  # sar's DEV rows
    for r in hm.rows_of("disk"):
        m = r.metrics
        assert fmt(num(m["disk.read_bytes_per_s"]) / 1024) == sar[("rkB/s", r.name)]
        assert fmt(num(m["disk.write_bytes_per_s"]) / 1024) == sar[("wkB/s", r.name)]
        assert fmt(m["disk.queue_depth"]) == sar[("aqu-sz", r.name)]
        assert fmt(m["disk.util_pct"]) == sar[("%util", r.name)]
        if sar[("dkB/s", r.name)] != "0.00":
            continue  # sdq: sar counts discards in tps and await; METRICS.md has no discards
        reads, writes = num(m["disk.reads_per_s"]), num(m["disk.writes_per_s"])
        assert fmt(reads + writes) == sar[("tps", r.name)]
        r_ms = 0.0 if m["disk.r_await_ms"] is None else num(m["disk.r_await_ms"])
        w_ms = 0.0 if m["disk.w_await_ms"] is None else num(m["disk.w_await_ms"])
        ticks = r_ms * reads + w_ms * writes
        assert fmt(ticks / (reads + writes) if reads + writes else 0.0) == sar[("await", r.name)]


def test_nics_equal_sar_n_dev(pair: tuple[HostMetrics, str, str, int]) -> None:
    hm, ts, _, _ = pair
    sar = SAR[ts]
    assert [r.name for r in hm.rows_of("nic")] == [
        "virbr0-nic",
        "enp6s0",
        "virbr0",
        "virbr0-1",
        "wlp5s0",
    ]
    cols = {
        "nic.rx_packets_per_s": "rxpck/s",
        "nic.tx_packets_per_s": "txpck/s",
        "nic.rx_errors_per_s": "rxerr/s",
        "nic.tx_errors_per_s": "txerr/s",
        "nic.rx_drops_per_s": "rxdrop/s",
        "nic.tx_drops_per_s": "txdrop/s",
    }
    for r in hm.rows_of("nic"):
        m = r.metrics
        assert fmt(num(m["nic.rx_bytes_per_s"]) / 1024) == sar[("rxkB/s", r.name)]
        assert fmt(num(m["nic.tx_bytes_per_s"]) / 1024) == sar[("txkB/s", r.name)]
        for metric, col in cols.items():
            assert fmt(m[metric]) == sar[(col, r.name)], (r.name, metric)


def test_counters_that_went_down_are_noted() -> None:
    hm = compute_host(probe_from_roots("root2", "root3"))
    assert "NIC enp6s0: counters went down (re-created), counted from 0" in hm.notes
    assert "disk sdb: counters went down (device re-added), counted from 0" in hm.notes


def _with_stat(out: ProbeOutput, sample: int, text: str) -> ProbeOutput:
    sections = dict(out.sections)
    sections[(sample, "stat")] = Section(sample, "stat", text, 0)
    return ProbeOutput(sections)


def test_host_counters_that_went_down_are_noted_not_silently_null() -> None:
    """/proc/stat's second sample before its first, in one boot (a CPU taken offline leaves
    the cpu line's sums, a forged output): the CPU shares and rates were null with no word
    of why; now a note names the counters."""
    out = probe_from_roots("root1", "root2")
    st1, st2 = (out.text(sample, "stat") or "" for sample in (1, 2))
    hm = compute_host(_with_stat(_with_stat(out, 1, st2), 2, st1))
    assert (hm.metrics["cpu.busy_pct"], hm.metrics["cpu.ctxt_per_s"]) == (None, None)
    assert (
        "counters went down between the samples: cpu.user, cpu.nice, cpu.system and 6 more:"
        " their rates null or 0"
    ) in hm.notes
    # proc(5): iowait can decrease (tickless kernels): counted as 0, as mpstat does, unnoted.
    iowait = st1.split("\n")[0].split()
    iowait[5] = str(int(iowait[5]) + 10**6)
    hm = compute_host(_with_stat(out, 1, "\n".join([" ".join(iowait), *st1.split("\n")[1:]])))
    assert hm.metrics["cpu.iowait_pct"] == 0.0
    assert not any("went down between the samples" in n for n in hm.notes), hm.notes
    assert not any("went down" in n for n in compute_host(out).notes)


def test_every_host_metric_is_reported() -> None:
    hm = compute_host(probe_from_roots("root1", "root2"))
    assert set(hm.metrics) == set(HOST_METRICS)
    assert hm.metrics["cpu.count"] == 8
    assert hm.metrics["uptime_s"] == 7223.72
    assert hm.metrics["mem.hugepages_free_pct"] is None  # HugePages_Total is 0


def test_devices_in_one_sample_only_are_skipped_with_a_note() -> None:
    hm = compute_host(probe_from_roots("root3", "root4"))
    assert [r.name for r in hm.rows_of("nic")] == ["enp6s0", "virbr0-1", "wlp5s0"]
    for note in (
        "NIC enp6s1 present in the second sample only: skipped",
        "NIC wlp5s1 present in the second sample only: skipped",
        "NIC virbr0 present in the first sample only: skipped",
        "disk sdq present in the first sample only: skipped",
        "disk sdb present in the first sample only: skipped",
    ):
        assert note in hm.notes
    assert "sdq" not in [r.name for r in hm.rows_of("disk")]


def test_seven_column_stat_and_missing_psi() -> None:
    hm = compute_host(probe_from_roots("root6", "root7"))
    m = hm.metrics
    assert (m["cpu.steal_pct"], m["cpu.guest_pct"]) == (None, None)
    assert isinstance(m["cpu.busy_pct"], float)
    # No /proc/pressure in either sample: not offered, so absent (METRICS.md), not null.
    assert [k for k in m if k.startswith("psi.")] == []
    assert "/proc/pressure/cpu absent (kernel < 4.20 or PSI off): psi.cpu_* not offered" in hm.notes


def test_psi_in_one_sample_only_is_null() -> None:
    out = probe_from_roots("root1", "root2")
    sections = dict(out.sections)
    sections[(2, "pressure_io")] = Section(2, "pressure_io", "", 1)
    hm = compute_host(ProbeOutput(sections))
    assert (hm.metrics["psi.io_some_pct"], hm.metrics["psi.io_full_pct"]) == (None, None)
    assert isinstance(hm.metrics["psi.cpu_some_pct"], float)
    assert "/proc/pressure/io read in one sample only: psi.io_* null" in hm.notes


def test_reboot_nulls_every_delta() -> None:
    out = probe_from_roots(
        "root1",
        "root2",
        ("1" * 8 + "-1111-1111-1111-" + "1" * 12, "2" * 8 + "-2222-2222-2222-" + "2" * 12),
    )
    hm = compute_host(out)
    m = hm.metrics
    assert m["host.rebooted"] is True
    rates = [k for k in HOST_METRICS if k.startswith(("cpu.", "paging.", "psi.", "oom."))]
    assert [k for k in rates if k != "cpu.count" and m[k] is not None] == []
    assert m["mem.used_pct"] is not None  # gauges still stand
    assert m["load.1m"] == 3.16
    assert all(
        v is None for r in hm.rows_of("disk") + hm.rows_of("nic") for v in r.metrics.values()
    )
    assert "host rebooted between the two samples: every rate and delta is null" in hm.notes


def test_btime_change_means_reboot() -> None:
    out = probe_from_roots("root1", "root2")
    text = out.sections[(2, "stat")].text.replace("btime 1555568347", "btime 1555569999")
    sections = dict(out.sections)
    sections[(2, "stat")] = Section(2, "stat", text, 0)
    assert compute_host(ProbeOutput(sections)).metrics["host.rebooted"] is True


def test_zero_interval_gives_null_rates() -> None:
    hm = compute_host(probe_from_roots("root2", "root7"))  # root7 re-uses root2's uptime: Δt = 0
    assert hm.interval_s is None
    assert (
        "uptime went from 7223.72 s to 7223.72 s (samples out of order or the clock went back):"
        " no interval, every rate is null"
    ) in hm.notes
    assert hm.metrics["cpu.ctxt_per_s"] is None
    assert hm.metrics["psi.io_some_pct"] is None
    assert all(r.metrics["nic.rx_bytes_per_s"] is None for r in hm.rows_of("nic"))


def test_missing_files_give_notes_not_crashes() -> None:
    sections = {(s, "uptime"): Section(s, "uptime", f"{s}.00 0.00\n", 0) for s in (1, 2)}
    hm = compute_host(ProbeOutput(sections))
    assert hm.interval_s == 1.0
    assert [k for k, v in hm.metrics.items() if v is not None] == ["uptime_s"]
    assert hm.metrics["uptime_s"] == 2.0
    assert hm.metrics["host.rebooted"] is None
    assert "/proc/stat unreadable: cpu.* and procs.* null" in hm.notes
    assert "df -P -k failed: no filesystem rows" in hm.notes
    assert (hm.rows_of("disk"), hm.rows_of("nic"), hm.rows_of("fs")) == ((), (), ())


def test_garbled_section_raises_naming_it() -> None:
    out = probe_from_roots("root1", "root2")
    sections = dict(out.sections)
    sections[(2, "diskstats")] = Section(2, "diskstats", "8 0 sda 1 2\n", 0)
    with pytest.raises(ProbeParseError) as err:
        compute_host(ProbeOutput(sections))
    assert err.value.section == "diskstats"


def test_options_widen_the_rows() -> None:
    out = probe_from_roots("root1", "root2")
    wide = compute_host(
        out,
        HostOptions(
            include_partitions=True, include_loop=True, include_idle_disks=True,
            include_lo=True, include_pseudo_fs=True,
        ),
    )  # fmt: skip
    assert "lo" in [r.name for r in wide.rows_of("nic")]
    assert {"sda1", "sr0", "sde"} <= {r.name for r in wide.rows_of("disk")}
    assert [r.name for r in wide.rows_of("fs")] == ["/dev", "/dev/shm", "/"]
    narrow = compute_host(out)
    (root,) = narrow.rows_of("fs")
    assert (root.name, root.metrics["fs.used_pct"], root.metrics["fs.inodes_used_pct"]) == (
        "/",
        23.0,
        3.0,
    )
    assert root.metrics["fs.free_bytes"] == 82794000 * 1024


def test_live_probe_on_this_machine() -> None:
    opts = ProbeOptions(interval_s=0.5)
    started = time.monotonic()
    proc = subprocess.run(
        shlex.split(REMOTE_COMMAND),
        input=build_script(opts),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    wall_s = time.monotonic() - started
    out = split_output(proc.stdout, opts.nonce)
    hm = compute_host(out)
    m = hm.metrics
    assert hm.interval_s is not None
    # The probe runs at nice 19: on a busy machine its samples may be seconds apart (7.8 s
    # seen beside two busy loops), never further apart than the probe took.
    assert 0.45 <= hm.interval_s <= wall_s + 0.01
    assert m["host.rebooted"] is False
    parts = ["user", "nice", "system", "iowait", "irq", "softirq", "steal", "idle"]
    total = sum(num(m[f"cpu.{p}_pct"] or 0.0) for p in parts)
    assert total == pytest.approx(100.0, abs=0.5)
    assert 0.0 <= num(m["mem.used_pct"]) <= 100.0
    assert isinstance(m["cpu.count"], int)
    assert m["cpu.count"] >= 1
    for r in hm.rows_of("disk") + hm.rows_of("nic"):
        assert all(v is None or num(v) >= 0 for v in r.metrics.values()), r
    # Whatever df printed for "/" (a real device; overlay in a container is left out as a
    # pseudo filesystem, and a chroot may show none) must come back as a row.
    df_text = out.text(0, "df_k")
    df_rows = parse_df(df_text) if df_text else ()
    root = [r for r in df_rows if r.mount == "/" and not is_pseudo(r)]
    assert any(r.name == "/" for r in hm.rows_of("fs")) == bool(root)


def test_a_filesystem_without_an_inode_count_does_not_offer_inode_use() -> None:
    """btrfs (df -i: 0 inodes, IUse% `-`) has no inodes to run out of: its row has no
    fs.inodes_used_pct (the fs-inodes rule does not judge it, where a null made every
    btrfs host UNKNOWN), and a note says why; ext4 beside it keeps its figure."""
    btrfs = DATA / "btrfs-df"
    out = ProbeOutput(
        {
            (0, name): Section(0, name, (btrfs / f"{rel}.txt").read_text(encoding="utf-8"), 0)
            for name, rel in (("df_k", "df-P-k"), ("df_i", "df-P-i"))
        }
    )
    host = compute_host(out, HostOptions(include_pseudo_fs=True))  # the loop device's row
    root, btr = host.rows_of("fs")
    assert (root.name, root.metrics["fs.inodes_used_pct"]) == ("/", 4.0)
    assert btr.name == "/mnt/fmbtr"
    assert "fs.inodes_used_pct" not in btr.metrics
    assert btr.metrics["fs.used_pct"] == 5.0
    assert (
        "no fixed inode count on /mnt/fmbtr (df -i says 0, as btrfs does):"
        " fs.inodes_used_pct not offered there"
    ) in host.notes
    [judged], _ = evaluate(
        load_rules(default_rule_files(str(Path(fleetmon.__file__).parent / "playbooks"))),
        [rows_host("h", metrics=host.metrics, fs=host.rows_of("fs"))],
        {"h": spec("h")}, {},
    )  # fmt: skip
    inode = [f for f in judged.findings if f.rule == "fs-inodes"]
    assert {(f.subject, f.severity, f.judged) for f in inode} == {
        ("/", Severity.OK, True),
        ("/mnt/fmbtr", Severity.OK, False),
    }
