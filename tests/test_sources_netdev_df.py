"""/proc/net/dev and df -P parsers on real captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sources.df import df_pct, is_pseudo, parse_df, parse_df_table
from fleetmon.sources.netdev import nic_rates, parse_net_dev

DATA = Path(__file__).parent / "data"


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


def test_colon_glued_counter_node_exporter_2015() -> None:
    nics = {n.name: n for n in parse_net_dev(read("prometheus-node_exporter/2015/net-dev"))}
    eth0 = nics["eth0"]
    assert (eth0.rx_bytes, eth0.rx_packets, eth0.tx_bytes, eth0.tx_packets) == (
        68210035552,
        520993275,
        9315587528,
        43451486,
    )
    assert list(nics) == ["tun0", "veth4B09XN", "lo", "eth0", "lxcbr0", "wlan0", "docker0"]


def test_odd_names_node_exporter_2021() -> None:
    nics = {n.name: n for n in parse_net_dev(read("prometheus-node_exporter/2021/proc/net/dev"))}
    assert nics["ibr10:30"].rx_bytes == 0
    assert nics["flannel.1"].tx_drops == 64
    assert nics["💩0"].rx_multicast == 72


def test_errors_and_drops_jamescun() -> None:
    nics = {n.name: n for n in parse_net_dev(read("jamescun-procfs/testdata/proc/net/dev"))}
    assert len(nics) == 12
    wg0 = nics["wg0"]
    assert (wg0.rx_errors, wg0.rx_frame, wg0.tx_errors, wg0.tx_drops) == (430, 430, 790, 1981)


def test_recreated_interface_counts_from_zero_like_sar() -> None:
    before = {n.name: n for n in parse_net_dev(read("sysstat/root2/proc/net/dev"))}
    after = {n.name: n for n in parse_net_dev(read("sysstat/root3/proc/net/dev"))}
    r = nic_rates(before["enp6s0"], after["enp6s0"], 31.24)
    assert r.recreated
    assert r.rates["nic.rx_bytes_per_s"] == pytest.approx(2059169 / 31.24)


def test_error_counter_alone_going_down_gives_no_rate_for_it() -> None:
    nic = parse_net_dev(read("jamescun-procfs/testdata/proc/net/dev"))[2]  # wg0
    r = nic_rates(nic, nic._replace(rx_errors=0), 1.0)
    assert not r.recreated
    assert r.rates["nic.rx_errors_per_s"] is None
    assert r.rates["nic.rx_bytes_per_s"] == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eth0 1 2 3\n", "section net_dev: expected 'name: 16 counters', got 'eth0 1 2 3'"),
        (
            "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",
            "section net_dev: eth0 column 16: expected an unsigned integer, got 'x'",
        ),
    ],
)
def test_garbled_net_dev(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as err:
        parse_net_dev(text)
    assert str(err.value) == message


@pytest.mark.parametrize("kind", ["k", "i"])
def test_df_pct_equals_gnu_df_capacity_column(kind: str) -> None:
    text = read(f"fleetmon-capture/df-P-{kind}.txt")
    rows = parse_df(text, f"df_{kind}")
    assert [r.mount for r in rows] == ["/dev", "/dev/shm", "/"]
    printed = [line.split()[4] for line in text.splitlines()[1:]]
    assert [f"{df_pct(r.used, r.available):.0f}%" for r in rows] == printed
    assert [is_pseudo(r) for r in rows] == [True, True, False]


def test_df_rounds_up_like_gnu_df() -> None:
    assert df_pct(23596912, 82794000) == 23.0  # 22.18 -> 23, as the capture prints
    assert df_pct(0, 10) == 0.0
    assert df_pct(0, 0) is None


def test_df_mount_point_with_spaces() -> None:
    # Constructed (not a capture): GNU df prints such mount points unescaped.
    text = (
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
        "/dev/sdb1 1000 10 990 1% /mnt/my disk 2\n"
    )
    (row,) = parse_df(text)
    assert (row.source, row.mount, row.used, row.available) == (
        "/dev/sdb1",
        "/mnt/my disk 2",
        10,
        990,
    )


def test_df_dash_columns() -> None:
    text = "Filesystem Inodes IUsed IFree IUse% Mounted on\n/dev/sdc1 - - - - /srv\n"
    (row,) = parse_df(text, "df_i")
    assert (row.total, row.used, df_pct(row.used, row.available)) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "section df_k: no 'Filesystem' header line"),
        (
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 10 x 5 50% /\n",
            "section df_k: expected 'source total used avail pct mount': '/dev/sda1 10 x 5 50% /'",
        ),
        (  # after a row, a line cut short is garbled, not the rest of the row's mount point
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 10 5 5 50% /\n"
            "/dev/sdb1 10 5 5\n",
            "section df_k: expected 'source total used avail pct mount': '/dev/sdb1 10 5 5'",
        ),
    ],
)
def test_garbled_df(text: str, message: str) -> None:
    with pytest.raises(ProbeParseError) as err:
        parse_df(text)
    assert str(err.value) == message


ODD = "/tmp/h4/fm-odd/"
#: The mount points of fleetmon-capture/odd-mounts (tmpfs mounts named so), as df gives
#: them: BusyBox prints the names as they are, GNU df a control character as '?'.
ODD_MOUNTS = {
    "busybox": ["a\nb", "c\td", "e\\f", "g h", "x\ufffdy"],
    "gnu": ["a?b", "c?d", "e\\f", "g h", "x\ufffdy"],
}


@pytest.mark.parametrize("kind", ["k", "i"])
@pytest.mark.parametrize("df", sorted(ODD_MOUNTS))
def test_odd_mount_points_are_read_as_df_prints_them(df: str, kind: str) -> None:
    """A newline, tab, backslash, space and a byte not UTF-8 (decoded as the collector
    decodes) in mount points: BusyBox's newline splits a row, which was a parse error and
    the host lost; the rest of the name is now read as the row's."""
    raw = (DATA / f"fleetmon-capture/odd-mounts/{df}-df-P-{kind}.txt").read_bytes()
    table = parse_df_table(raw.decode("utf-8", "replace"), f"df_{kind}")
    assert [r.mount for r in table.rows] == [ODD + m for m in ODD_MOUNTS[df]]
    assert {r.source for r in table.rows} == {"fmodd"}
    total, used = (1024, 0) if kind == "k" else (3085448, 1)
    assert {(r.total, r.used, r.available) for r in table.rows} == {(total, used, total - used)}
    assert table.joined == ((ODD + "a\nb",) if df == "busybox" else ())
    assert table.skipped == ()


def test_a_line_before_any_row_that_is_no_row_is_skipped() -> None:
    """Constructed: a source with a newline, its head before the first row (df's output
    cannot tell it from a mount point's tail): that line is not read, the rows are."""
    text = "Filesystem 1024-blocks Used Available Capacity Mounted on\nx\ny 10 5 5 50% /m\n"
    table = parse_df_table(text)
    assert (table.rows, table.joined, table.skipped) == (
        (parse_df(text)[0],), (), ("x",),
    )  # fmt: skip
    assert table.rows[0][:2] == ("y", "/m")
