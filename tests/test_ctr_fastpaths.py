"""The containers' bulk ways (sources/ctrpaths.py identify_all, cgroupcols._whole with a
key printed twice, ctrcolumns.metric_dicts): what the one-at-a-time ways give, on the
usual host's input and on what is not it."""

from __future__ import annotations

import random

import pytest

from fleetmon.errors import ProbeParseError
from fleetmon.sim.containers import render_counters, render_gauges, with_containers
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sources import cgroupcols, containers
from fleetmon.sources.cgroupcols import read_columns
from fleetmon.sources.cgroups import TOO_MANY
from fleetmon.sources.ctrcolumns import METRICS, PSI_KEYS, metric_dicts
from fleetmon.sources.ctrpaths import Ident, identify, identify_all

HEX = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
POD = "49ccade5-8a0b-4389-99ae-0c74a2533472"


def _ids(n: int) -> list[str]:
    return [f"{i:064x}" for i in range(n)]


PATH_SETS = {
    "docker v2": [f"system.slice/docker-{i}.scope" for i in _ids(200)],
    "podman cgroupfs": [f"libpod_parent/libpod-{i}" for i in _ids(50)],
    "podman scopes and cgroupfs": [f"machine.slice/libpod-{HEX}.scope",
                                   f"libpod_parent/libpod-{OTHER}"],
    "no slash": [f"docker-{HEX}.scope", f"docker-{OTHER}.scope"],
    "services first": ["system.slice/sshd.service", "init.scope",
                       f"system.slice/docker-{HEX}.scope", f"system.slice/crio-{OTHER}.scope"],
    "first runtime leaf not a container": [f"system.slice/docker-{HEX}",
                                           f"system.slice/docker-{OTHER}.scope"],
    "capital id": [f"system.slice/docker-{HEX}.scope",
                   f"system.slice/docker-{OTHER.upper()}.scope"],
    "short and long ids": [f"system.slice/docker-{HEX}.scope",
                           f"system.slice/docker-{HEX[1:]}.scope",
                           f"system.slice/docker-{HEX}0.scope", f"docker-{HEX}.scope/init"],
    "conmon and mounts": [f"system.slice/crio-{HEX}.scope", f"system.slice/crio-conmon-{HEX}.scope",
                          f"system.slice/crio-{OTHER}.mount", f"system.slice/crio-{OTHER}"],
    "same length, other head": [f"system.slice/docker-{HEX}.scope",
                                f"system.slice/dockex-{OTHER}.scope",
                                f"system.slice/nerdctl-{OTHER}.scope"],
    "kubepods": [f"system.slice/docker-{HEX}.scope",
                 f"kubepods/besteffort/pod{POD}/{OTHER}"],
    "libpod pod": [f"machine.slice/machine-libpod_pod_{HEX}.slice/libpod-{OTHER}.scope",
                   f"machine.slice/libpod-{HEX}.scope"],
    "podman cgroupfs pod": [f"libpod_parent/libpod-{HEX}", f"libpod_parent/{HEX}/libpod-{OTHER}"],
    "podman cgroupfs pods only": [f"libpod_parent/{HEX}/libpod-{i}" for i in _ids(3)],
    "others": ["lxc.payload.web01", "lxc/db", "machine/shell.libvirt-lxc", f"default/{HEX}",
               "machine.slice/machine-qemu\\x2d3\\x2dweb\\x2d1.scope", f"docker/{HEX}",
               f"system.slice/docker-{HEX}.scope"],
    "a line break": [f"system.slice/docker-{HEX}.scope\nsystem.slice/docker-{OTHER}.scope",
                     f"system.slice/docker-{OTHER}.scope"],
    "none": [],
}  # fmt: skip


@pytest.mark.parametrize("name", list(PATH_SETS))
def test_identify_all_is_identify_of_each(name: str) -> None:
    paths = PATH_SETS[name]
    assert identify_all(paths) == [identify(p) for p in paths]
    assert identify_all(paths[::-1]) == [identify(p) for p in paths[::-1]]


def test_identify_all_of_the_usual_host() -> None:
    ids = _ids(3)
    made = identify_all([f"system.slice/docker-{i}.scope" for i in ids])
    assert made == [Ident("docker", i) for i in ids]
    assert {type(d) for d in made} == {Ident}
    assert [d.kind for d in made if d is not None] == ["docker"] * 3
    assert identify_all([f"libpod_parent/libpod-{i}" for i in ids]) == [
        Ident("podman", i) for i in ids
    ]


def test_identify_all_of_mixed_paths_as_identify() -> None:
    """Random mixes of runtimes' leaves, near misses and other cgroups."""
    rng = random.Random(14)
    parts = ["system.slice/", "machine.slice/", "libpod_parent/", "", "docker/", "lxc/",
             "user.slice/user-1000.slice/user@1000.service/user.slice/"]  # fmt: skip
    heads = ["docker-", "libpod-", "crio-", "cri-containerd-", "nerdctl-", "crio-conmon-",
             "dock-", ""]  # fmt: skip
    tails = [".scope", "", ".mount", ".scope/init"]
    ids = [HEX, OTHER, HEX[:63], HEX.upper(), HEX[:62] + "g1", HEX + "a"]
    for _ in range(300):
        paths = [rng.choice(parts) + rng.choice(heads) + rng.choice(ids) + rng.choice(tails)
                 for _ in range(rng.randint(1, 6))]  # fmt: skip
        assert identify_all(paths) == [identify(p) for p in paths], paths


def _read(text: str, one_by_one: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        if one_by_one:
            m.setattr(cgroupcols, "_whole", lambda joined, keys, width: None)
        try:
            return read_columns(text, "cgroup_mem")
        except ProbeParseError as exc:
            return str(exc)


@pytest.mark.parametrize("keys", ["i f a i l", "l m l", "m p m"])
@pytest.mark.parametrize("odd", ["9" * 20, "9" * 21, "max", "0", "7"])
def test_a_key_printed_twice_read_by_one_call(
    monkeypatch: pytest.MonkeyPatch, keys: str, odd: str
) -> None:
    """v1's awk prints `i` twice (memory.stat's inactive_file, then total_inactive_file): a
    value of a column a later one replaces is passed over by the one call (as before its
    bound was checked over the whole run at once); a value of the kept column is read (or
    refused) as column by column reads it."""
    names = keys.split()
    width = len(names)
    for at in range(width):
        row = ["5"] * width
        row[at] = odd
        text = (f"#cgroup keyed v1\n#k {keys}\nlibpod_parent/libpod-{HEX}\t{' '.join(row)}\n"
                f"libpod_parent/libpod-{OTHER}\t{' '.join(['6'] * width)}\n")  # fmt: skip
        fast = _read(text, False, monkeypatch)
        if names.index(names[at]) == at and names.count(names[at]) > 1:  # replaced
            assert fast == cgroupcols.Columns(1, [f"libpod_parent/libpod-{HEX}",
                                                  f"libpod_parent/libpod-{OTHER}"],
                                              {k: [5, 6] for k in names})  # fmt: skip
        else:
            assert fast == _read(text, True, monkeypatch), (keys, at)


def test_metric_dicts_are_the_metrics_zipped() -> None:
    columns = [[k * 10 + i for i in range(3)] for k in range(len(METRICS))]
    psi = frozenset(PSI_KEYS)
    for absent in (
        frozenset(),
        psi,
        frozenset(["ctr.psi_io_full_pct"]),
        psi - {"ctr.psi_cpu_some_pct"},
    ):
        kept = [(m, c) for m, c in zip(METRICS, columns, strict=True) if m not in absent]
        expected = [{m: c[i] for m, c in kept} for i in range(3)]
        got = metric_dicts(columns, absent)
        assert got == expected
        assert [list(d) for d in got] == [list(e) for e in expected]  # the same order


@pytest.mark.parametrize(
    "text",
    ["", TOO_MANY, f"{TOO_MANY}\n", f"x\n{TOO_MANY}\n", f"x{TOO_MANY}\n", f"\n{TOO_MANY}",
     f"{TOO_MANY}x\n", f"#k a\nlxc.payload.{TOO_MANY}\t1\n{TOO_MANY}\n", f"\n\n{TOO_MANY}\n\n"],
)  # fmt: skip
def test_the_probe_s_too_many_line_is_found_as_a_line(text: str) -> None:
    assert containers._says_too_many(text) == (f"\n{TOO_MANY}\n" in f"\n{text}")


def _cells_line_by_line(text: str) -> tuple[list[str], list[str]]:
    """What cgroupcols._run read line by line before _cells (each line cut at its first tab,
    a line without one passed over)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    split = [line.partition("\t") for line in lines]
    parts = [p for path, tab, rest in split if tab for p in (path, rest)]
    return parts[0::2], parts[1::2]


def test_a_run_s_cells_as_line_by_line() -> None:
    """Lines of one tab, none, two, three; empty lines; with and without the last newline:
    the cells are those cutting each line at its first tab gives."""
    rng = random.Random(17)
    pieces = ["a", "1 2", "", "x y", "5", "\t", "\t\t", "p\tq"]
    for _ in range(2000):
        lines = ["\t".join(rng.choice(pieces) for _ in range(rng.choice((1, 2, 2, 2, 3, 4))))
                 for _ in range(rng.randint(0, 5))]  # fmt: skip
        text = "\n".join(lines) + rng.choice(("", "\n", "\n\n"))
        assert cgroupcols._cells(text) == _cells_line_by_line(text), text
    assert cgroupcols._cells("a\t1\nb\t2\n") == (["a", "b"], ["1", "2"])
    assert cgroupcols._cells("a\t1\nb\n2\t3") == (["a", "2"], ["1", "3"])
    assert cgroupcols._cells("a\n1\tb\t2\n") == (["1"], ["b\t2"])


@pytest.mark.parametrize(
    "text",
    ["#cgroup keyed v1", "#cgroup keyed v1\n", "#cgroup keyed v1\n#k p\na\t1\n",
     "#cgroup keyed v12\n#k p\na\t1\n", "#cgroup keyed v2\n#k p\na\t1\n", "#cgroup keyed v",
     "x#cgroup keyed v1\n", "#cgroup keyed v1 \n", "#k p\na\t1\n#cgroup keyed v1\n"],
)  # fmt: skip
def test_the_version_is_the_head_line_s(text: str) -> None:
    """read_columns' version: 1 when the first line is KEYED_HEAD 1 (as its partition)."""
    expected = 1 if text.partition("\n")[0] == "#cgroup keyed v1" else 2
    assert read_columns(text).version == expected


def test_a_streamed_host_s_gauge_metrics_are_made_once() -> None:
    """The metrics of cgroup_mem alone are kept with its columns from pair to pair (a
    streamed host reads that section once a run), and from the second pair each row's
    metrics are a copy of its container's template: each pair's rows are those of columns
    made afresh, whatever its interval."""
    fleet = with_containers(make_fleet(2, "linux", 1, {}, endpoints("127.0.1.1", 2, 22, 1)), 7, 1)
    for h in fleet:
        t = h.uptime_at_start_s
        s1, s2, s3 = (containers._columns_of(render_counters(h, t + k)) for k in (10, 11, 13))
        gauges = containers._gauges_of(render_gauges(h))
        assert s1 is not None
        assert s2 is not None
        assert s3 is not None
        assert gauges is not None
        first = containers._from_columns(s1, s2, gauges, containers._no_names, 4, 1.0)
        kept = gauges.gauges[0]
        second = containers._from_columns(s2, s3, gauges, containers._no_names, 4, 2.0)
        assert gauges.gauges[0] is kept
        fresh = containers._gauges_of(render_gauges(h))
        assert fresh is not None
        for pair, (a, b, dt) in ((first, (s1, s2, 1.0)), (second, (s2, s3, 2.0))):
            assert pair == containers._from_columns(a, b, fresh, containers._no_names, 4, dt)
        assert first[0] != second[0]  # the counters' rates are each pair's own
        # From the second pair on, each row's metrics are a copy of its template: the same
        # metrics in the same order, a dict of its own.
        assert gauges.templates[0] is not None
        third = containers._from_columns(s3, s1, gauges, containers._no_names, None, 0.5)
        again = containers._from_columns(s3, s1, gauges, containers._no_names, None, 0.5)
        assert third == containers._from_columns(s3, s1, fresh, containers._no_names, None, 0.5)
        direct_g = containers._gauges_of(render_gauges(h))
        assert direct_g is not None
        direct = containers._from_columns(s2, s3, direct_g, containers._no_names, 4, 2.0)[0]
        assert [list(r.metrics.items()) for r in second[0]] == [
            list(r.metrics.items()) for r in direct
        ]
        made = {id(r.metrics) for r in third[0]} | {id(t) for t in gauges.templates[0]}
        assert len(made | {id(r.metrics) for r in again[0]}) == 3 * len(third[0])
