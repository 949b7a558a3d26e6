"""The live modes' per-tick fast paths (issue 17) give what their slow paths give.

Each fast path below reads a tick with fewer Python steps, or keeps a decision from one
tick to the next; each is checked here against its slow path, or against the formula
written out plainly, on the inputs where they could part: a counter missing, not a
number or gone down, a device or VM appearing between ticks, odd line widths.
"""

from __future__ import annotations

import pytest

from fleetmon.analyse import vms
from fleetmon.analyse.vmcommon import KVM_DEVICE_SUMS, kvm_rates, rate
from fleetmon.errors import ProbeParseError
from fleetmon.sources import netdev
from fleetmon.sources.diskstats import _diskstats_fast, _diskstats_lines, kept_disks
from fleetmon.sources.sections import split_output
from fleetmon.sources.stat import _stat_fast, _stat_lines, parse_stat
from fleetmon.sources.virsh import DomainStats, parse_domstats

# ----------------------------------------------------------------------- KVM VM sums


def record(**extra: int | str | None) -> str:
    """One running domain's record with a disk and a NIC; keyword `a__b` is field `a.b`,
    None leaves the field out."""
    fields: dict[str, int | str | None] = {
        "state.state": 1,
        "cpu.time": 1000,
        "balloon.swap_in": 10,
        "balloon.major_fault": 5,
        "vcpu.current": 2,
        "vcpu.0.delay": 100,
        "vcpu.1.delay": 200,
        "block.count": 1,
        "block.0.name": "vda",
        "net.count": 1,
        "net.0.name": "vnet0",
    }
    for key in KVM_DEVICE_SUMS["block"][0]:
        fields[f"block.0.{key}"] = 1000
    for key in KVM_DEVICE_SUMS["net"][0]:
        fields[f"net.0.{key}"] = 1000
    fields.update({k.replace("__", "."): v for k, v in extra.items()})
    lines = "".join(f"  {k}={v}\n" for k, v in fields.items() if v is not None)
    return f"Domain: 'vm'\n{lines}\n"


def dom(**extra: int | str | None) -> DomainStats:
    (d,) = parse_domstats(record(**extra))
    return d


def plain_sums(d1: DomainStats, d2: DomainStats) -> dict[str, int | None]:
    """The sums as the formula says them, one key at a time (the code before the plans)."""

    def delta(k1: str, k2: str) -> int | None:
        a, b = d1.fields.get(k1), d2.fields.get(k2)
        return b - a if isinstance(a, int) and isinstance(b, int) and b >= a else None

    def total(pairs: list[tuple[str, str]]) -> int | None:
        got = [delta(k1, k2) for k1, k2 in pairs]
        return None if not got or None in got else sum(x for x in got if x is not None)

    out = {k: delta(k, k) for k in ("cpu.time", "balloon.swap_in", "balloon.major_fault")}
    out["vcpu.delay"] = total([(k, k) for k in d2.vcpu_keys("delay")])
    for group, (keys, names) in KVM_DEVICE_SUMS.items():
        before, after = d1.device_slots(group), d2.device_slots(group)
        for key, name in zip(keys, names, strict=True):
            out[name] = total(
                [
                    (f"{group}.{before[n]}.{key}", f"{group}.{s}.{key}")
                    for n, s in after.items()
                    if n in before
                ]
            )
    return out


SECOND = {f"block__0__{k.replace('.', '__')}": 1500 for k in KVM_DEVICE_SUMS["block"][0]}

CASES = {
    "usual": ({}, {"cpu__time": 3000, "vcpu__0__delay": 150, **SECOND}),
    "nothing moved": ({}, {}),
    "cpu went down": ({}, {"cpu__time": 10}),
    "a delay went down": ({}, {"vcpu__1__delay": 1}),
    "no swap_in": ({"balloon__swap_in": None}, {"balloon__swap_in": None}),
    "swap_in in the second only": ({"balloon__swap_in": None}, {}),
    "a counter not a number": ({}, {"balloon__major_fault": "x"}),
    "no vCPU delays": ({"vcpu__0__delay": None, "vcpu__1__delay": None},
                       {"vcpu__0__delay": None, "vcpu__1__delay": None}),
    "a vCPU added": ({"vcpu__1__delay": None}, {}),
    "a disk added": ({}, {"block__count": 2, "block__1__name": "vdb", "block__1__rd__reqs": 7}),
    "the disk renamed": ({}, {"block__0__name": "vdz"}),
    "the NIC moved slots": ({}, {"net__count": 2, "net__0__name": "vnet9", "net__1__name": "vnet0",
                                 **{f"net__1__{k.replace('.', '__')}": 2000
                                    for k in KVM_DEVICE_SUMS["net"][0]}}),
    "two disks, one without times": (
        {"block__count": 2, "block__1__name": "vdb", "block__1__rd__reqs": 1},
        {"block__count": 2, "block__1__name": "vdb", "block__1__rd__reqs": 9},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_vm_sums_are_the_formula_s(case: str) -> None:
    first, second = CASES[case]
    d1, d2 = dom(**first), dom(**second)
    got = vms._sums(d1, d2)
    assert got == plain_sums(d1, d2)
    plan = vms._plan(
        vms._matched(d1, d2, "block"), vms._matched(d1, d2, "net"), d2.vcpu_keys("delay")
    )
    assert vms._sums_slow(d1, d2, plan) == got


def test_vm_sums_follow_a_disk_that_appears_between_ticks() -> None:
    # The plan of the layout before (one disk) is not the one used after: vdb is counted
    # once both samples have it.
    a = dom()
    b = dom(block__count=2, block__1__name="vdb", **{"block__1__rd__reqs": 5})
    c = dom(
        block__count=2, block__1__name="vdb", **{"block__1__rd__reqs": 9}, block__0__rd__reqs=1001
    )
    assert vms._sums(a, b)["block.rd.reqs"] == 0  # vdb new: vda's Δ alone
    assert vms._sums(b, c)["block.rd.reqs"] == 1 + 4


def test_vm_sums_of_a_large_layout_are_not_kept() -> None:
    many = {f"vcpu__{i}__delay": 1 for i in range(200)}
    d1, d2 = dom(**many), dom(**{**many, "vcpu__199__delay": 3})
    before = vms._plan.cache_info().currsize
    assert vms._sums(d1, d2)["vcpu.delay"] == 2
    assert vms._plan.cache_info().currsize == before


def test_usual_tick_takes_the_vectorised_path() -> None:
    d1, d2 = dom(), dom(cpu__time=3000)
    assert vms._sums(d1, d2)["cpu.time"] == 2000
    assert vms._sums(d1, d2)["vcpu.delay"] == 0


@pytest.mark.parametrize("dt", [2.0, 0.0, None])
def test_kvm_rates_are_rate_and_the_share(dt: float | None) -> None:
    deltas: dict[str, int | None] = {
        "cpu.time": 3_000_000_000, "vcpu.delay": None, "balloon.swap_in": 7,
        "balloon.major_fault": 3, "block.rd.reqs": 0, "block.wr.reqs": 5,
        "block.rd.bytes": 1 << 60, "block.wr.bytes": None, "block.rd.times": 4,
        "block.wr.times": 1_000_000, "net.rx.bytes": 11, "net.tx.bytes": 13,
        "net.rx.pkts": None, "net.tx.pkts": 2, "net.rx.drop": 0, "net.tx.drop": 1,
    }  # fmt: skip
    got = kvm_rates(deltas.get, 2, 4, dt)
    assert got["vm.major_faults_per_s"] == rate(3, dt)
    assert got["vm.disk_read_bytes_per_s"] == rate(1 << 60, dt)
    assert got["vm.disk_write_bytes_per_s"] is None
    assert got["vm.net_rx_packets_per_s"] is None
    assert got["vm.net_tx_drops_per_s"] == rate(1, dt)
    assert got["vm.swap_in_bytes_per_s"] == rate(7, dt, 1024)
    assert got["vm.disk_r_await_ms"] is None  # no read request
    assert got["vm.disk_w_await_ms"] == 1_000_000 / 5 / 1e6
    assert got["vm.cpu_pct"] == (None if not dt else min(100.0, 100.0 * 3e9 / (2 * 1e9 * dt)))
    assert got["vm.vcpu_delay_pct"] is None
    assert list(got)[:4] == [
        "vm.cpu_pct", "vm.cpu_host_pct", "vm.vcpu_delay_pct", "vm.swap_in_bytes_per_s"
    ]  # fmt: skip


# ------------------------------------------------------------------------- /proc/stat

CPU = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 2 2 3 4 5 6 7 8 9 10\n"
TAIL = "intr 5 1 2\nctxt 9\nbtime 100\nprocesses 3\nprocs_running 1\nprocs_blocked 0\n"


@pytest.mark.parametrize(
    "text",
    [
        CPU + TAIL,
        CPU.replace("cpu1 2 2", "cpu1 2 2 11", 1) + TAIL,  # a line of 12 tokens
        # 12 tokens and 10: eleven a line on average, not on every line
        CPU.replace("cpu0 1 2", "cpu0 1 2 11", 1).replace("cpu1 2 2", "cpu1 2", 1) + TAIL,
        CPU.replace("cpu0 1", "cpu0 cpu7", 1) + TAIL,  # a name where a column is
        CPU.replace("cpu1 2 2 3", "cpu1 2 2\t3", 1) + TAIL,
        "cpu  1 2 3 4 5 6 7 8 9 10\n" + TAIL,  # no cpuN line
        "cpu  1 2 3 4 5 6 7 8 9 10 11\ncpu0 1 2 3 4 5 6 7 8 9 10 11\n" + TAIL,  # 11 columns
    ],
)
def test_stat_fast_path_is_the_line_parser_s(text: str) -> None:
    try:
        expected = _stat_lines(text)
    except ProbeParseError as exc:
        with pytest.raises(ProbeParseError, match=str(exc.args[-1])[:20]):
            parse_stat.__wrapped__(text)
        return
    fast = _stat_fast(text)
    assert fast is None or fast == expected
    if text == CPU + TAIL:
        assert fast is not None  # the usual file: the one split of every cpu line
    assert parse_stat.__wrapped__(text) == expected


# ---------------------------------------------------------------------- /proc/diskstats

DISK = "   8       0 sda 1 2 3 4 5 6 7 8 0 9 10\n   8       1 sda1 1 0 1 1 0 0 0 0 0 1 1\n"


@pytest.mark.parametrize(
    "text",
    [
        DISK,
        DISK.replace(" 9 10\n", " 9 10 1 2 3 4\n"),  # 18 fields on one line only
        "".join(line + " 1 2 3 4 5 6\n" for line in DISK.splitlines()),  # 20 fields
        DISK.replace("sda1", "123"),  # a name of digits
    ],
)
def test_diskstats_fast_path_is_the_line_parser_s(text: str) -> None:
    lines = text.splitlines()
    fast = _diskstats_fast(lines)
    assert fast is None or fast == _diskstats_lines(lines)


def test_kept_disks_change_when_the_whole_disk_appears() -> None:
    # sda1 is a partition of a listed sda only; loop0 is left out unless asked for.
    assert kept_disks(("sda1", "loop0"), ("sda1", "loop0"), False, False) == {"sda1"}
    assert kept_disks(("sda", "sda1", "loop0"), ("sda1", "loop0"), False, False) == {"sda"}
    assert kept_disks(("sda", "sda1"), ("sda",), True, False) == {"sda", "sda1"}
    assert kept_disks(("sda", "loop0"), (), False, True) == {"sda", "loop0"}
    # Past the memo's size: decided each time, alike (sd10 a partition of sd1, sdb1 of sdb).
    many = (*(f"sd{i}" for i in range(600)), "sdb1", "sdb", "loop3")
    kept = kept_disks(many, ("sdb1",), False, False)
    assert kept == {*(f"sd{i}" for i in range(10)), "sdb"}


# ----------------------------------------------------------------------- /proc/net/dev


def nic(name: str, *counters: int) -> netdev.NetDev:
    return netdev.NetDev(name, *counters)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ((10,) * 16, (20,) * 16),
        ((10,) * 16, (10,) * 16),
        ((10,) * 16, (20, 20, 20, 5) + (20,) * 12),  # drops went down: that rate alone
        ((10,) * 16, (5,) + (20,) * 15),  # bytes went down: re-created, counted from 0
    ],
)
def test_nic_rates_are_the_formula_s(before: tuple[int, ...], after: tuple[int, ...]) -> None:
    prev, cur = nic("eth0", *before), nic("eth0", *after)
    got = netdev.nic_rates(prev, cur, 2.0)
    recreated = after[0] < before[0] or after[8] < before[8] or after[1] < before[1]
    assert got.recreated == (recreated or after[9] < before[9])
    for metric, field in netdev._RATE_FIELDS:
        d = getattr(cur, field) - (0 if got.recreated else getattr(prev, field))
        assert got.rates[metric] == (None if d < 0 else d / 2.0)
    assert list(got.rates) == list(netdev.NIC_METRICS)


# ---------------------------------------------------------------------------- markers

N = "abc123"
M = f"@@fleetmon-{N}@@"


def test_markers_read_alike_every_time() -> None:
    text = (
        f"{M} begin 1 uptime\n5 1\n\n{M} end 1 uptime 0\n{M} begin 2 stat\nx\n\n{M} end 2 stat 3\n"
    )
    for _ in range(3):
        out = split_output(text, N)
        assert out.get(1, "uptime") == (1, "uptime", "5 1\n", 0)
        assert out.get(2, "stat") == (2, "stat", "x\n", 3)


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        (" begin 1 " + "a" * 100, "end marker without matching begin"),  # long, read
        (" begin 1 up time", "malformed marker line"),
        (" end 1 uptime", "end marker without matching begin"),
        (" begin 1234567890 uptime", "malformed marker line"),
    ],
)
def test_marker_lines_short_and_long(rest: str, message: str) -> None:
    text = f"{M}{rest}\nbody\n\n{M} end 1 uptime 0\n"
    with pytest.raises(ProbeParseError, match=message):
        split_output(text + text, N)
