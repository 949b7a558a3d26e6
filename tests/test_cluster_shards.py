"""Cluster runs without a cluster process: shards, the options, the missing extra, and the
engine on an in-process Dask cluster against canned probe output (exact figures)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import re
import socket
from pathlib import Path

import pytest
from clirun import fleetmon
from probetext import NONCE, probe_stdout

from fleetmon import __version__
from fleetmon.analyse.pipeline import analyse_host
from fleetmon.cli.clusterrun import _placement, with_inventory
from fleetmon.cluster.engine import ShardRunner
from fleetmon.cluster.entry import ShardNotLoaded, run_pickled
from fleetmon.cluster.session import parse_cluster
from fleetmon.cluster.shards import failed_hosts, make_shards
from fleetmon.cluster.task import ShardResult, Unwanted, run_shard, while_wanted
from fleetmon.cluster.wire import ROW_FIELDS, WireError, unpack
from fleetmon.collect.base import CollectOptions, HostFailure, Outcome
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import TRANSPORTS
from fleetmon.collect.ssh import Progress
from fleetmon.collect.sshcontext import SshContext
from fleetmon.errors import OptionError
from fleetmon.model import HostReport, HostSpec, RawResult, Status
from fleetmon.sim.hosts import parse_sites, site_endpoints

OPTS = CollectOptions(interval_s=1.0, forks=10)


def _spec(name: str, site: str | None = None, secret: str = "") -> HostSpec:
    vars_ = {"fleetmon_site": site} if site else {}
    if secret:
        vars_["db_password"] = secret
    return HostSpec(name=name, address="127.0.0.1", connection="replay", vars=vars_)


def _site(h: HostSpec) -> str | None:
    site = h.vars.get("fleetmon_site")
    return site if isinstance(site, str) else None


def _shards(hosts: list[HostSpec], size: int = 500) -> list:  # type: ignore[type-arg]
    return make_shards(
        hosts, OPTS, lambda h: ProbeOptions(interval_s=1.0), lambda h: OPTS, _site, size
    )


def test_hosts_are_cut_by_site_then_into_even_shards() -> None:
    hosts = [_spec(f"a{i}", "a") for i in range(7)] + [_spec(f"n{i}") for i in range(5)]
    hosts.insert(3, _spec("b0", "b"))
    shards = _shards(hosts, size=3)
    assert [(s.key, s.site, s.names) for s in shards] == [
        ("site-a/1of3", "a", ("a0", "a1", "a2")),
        ("site-a/2of3", "a", ("a3", "a4", "a5")),
        ("site-a/3of3", "a", ("a6",)),
        ("site-b/1of1", "b", ("b0",)),
        ("any/1of2", None, ("n0", "n1", "n2")),
        ("any/2of2", None, ("n3", "n4")),
    ]
    assert [s.resources for s in shards[2:5]] == [{"site-a": 1}, {"site-b": 1}, {}]
    assert sorted(n for s in shards for n in s.names) == sorted(h.name for h in hosts)


def test_hosts_are_spread_over_the_workers_that_can_run_them() -> None:
    hosts = [_spec(f"n{i}") for i in range(5)] + [_spec(f"a{i}", "a") for i in range(3)]
    shards = make_shards(
        hosts, OPTS, lambda h: ProbeOptions(interval_s=1.0), lambda h: OPTS, _site, 500,
        spread=lambda site: 2 if site is None else 4,
    )  # fmt: skip
    assert [(s.key, s.names) for s in shards] == [
        ("any/1of2", ("n0", "n1", "n2")),
        ("any/2of2", ("n3", "n4")),
        ("site-a/1of3", ("a0",)),
        ("site-a/2of3", ("a1",)),
        ("site-a/3of3", ("a2",)),
    ]


def test_a_shard_carries_no_inventory_variable() -> None:
    (shard,) = _shards([_spec("x", "a", secret="hunter2")])
    assert shard.hosts[0].spec.vars == {}
    assert "hunter2" not in repr(shard)


def test_a_shard_names_a_password_variable_without_its_value() -> None:
    """A login refused says the host's ansible_password is not used, on a worker as in a
    local run: the name travels, never the (vault-decrypted) value."""
    spec = dataclasses.replace(_spec("x"), vars={"ansible_password": "hunter2", "a": "b"})
    (shard,) = _shards([spec])
    assert shard.hosts[0].spec.vars == {"ansible_password": None}
    assert "hunter2" not in repr(shard)
    assert b"hunter2" not in pickle.dumps(shard)


def test_a_shard_s_deadline_counts_its_waves_of_forks() -> None:
    (shard,) = _shards([_spec(f"h{i}") for i in range(25)])
    # 25 hosts at 10 at a time: 3 waves of (interval 1 + 30 s) each, plus 30 s.
    assert shard.deadline_s() == 3 * 31.0 + 30.0
    # A worker whose open-file limit allows 2 at once: 13 waves.
    assert shard.deadline_s(forks=2) == 13 * 31.0 + 30.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("local:0", "--cluster 'local:0': local:N needs a number of workers, 1-256"),
        ("local:", "--cluster 'local:': local:N needs a number of workers, 1-256"),
        # Digits to str.isdigit(), not to int() (an internal error, exit 70) or not ASCII.
        ("local:\u00b2", "--cluster 'local:\u00b2': local:N needs a number of workers, 1-256"),
        ("local:\u0663", "--cluster 'local:\u0663': local:N needs a number of workers, 1-256"),
        (
            "local:" + "1" * 5000,
            f"--cluster 'local:{'1' * 5000}': local:N needs a number of workers, 1-256",
        ),
        (
            "tcp://",
            "--cluster 'tcp://': expected a Dask scheduler address (tcp://HOST:PORT) or local:N",
        ),
        (
            "tcp://sched",
            "--cluster 'tcp://sched': expected the scheduler's port, 1-65535"
            " (`dask scheduler` listens on 8786 by default)",
        ),
        (
            "tcp://sched:0",
            "--cluster 'tcp://sched:0': expected the scheduler's port, 1-65535"
            " (`dask scheduler` listens on 8786 by default)",
        ),
        (
            "tcp://sched:99999",
            "--cluster 'tcp://sched:99999': expected the scheduler's port,"
            " 1-65535 (`dask scheduler` listens on 8786 by default)",
        ),
        (
            "foo://sched:8786",
            "--cluster 'foo://sched:8786': unknown scheme 'foo': tcp:// or"
            " tls:// (with Dask's TLS settings)",
        ),
        (
            "inproc://sched:8786",
            "--cluster 'inproc://sched:8786': unknown scheme 'inproc':"
            " tcp:// or tls:// (with Dask's TLS settings)",
        ),
        (
            "tcp://a b:8786",
            "--cluster 'tcp://a b:8786': expected a Dask scheduler address"
            " (tcp://HOST:PORT) or local:N",
        ),
        (
            "sched:8786",
            "--cluster 'sched:8786': expected a Dask scheduler address (tcp://HOST:PORT)"
            " or local:N",
        ),
    ],
)
def test_bad_cluster_addresses_are_refused(text: str, message: str) -> None:
    with pytest.raises(OptionError) as err:
        parse_cluster(text)
    assert str(err.value) == message


def test_cluster_options_parse() -> None:
    assert parse_cluster("local:2") == ("local", 2)
    assert parse_cluster("local:0256") == ("local", 256)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("tcp://10.0.0.5:8786", 0)
    assert parse_cluster("tls://sched.example:8786/") == ("tls://sched.example:8786", 0)
    assert parse_cluster("tcp://[::1]:8786") == ("tcp://[::1]:8786", 0)


def test_without_dask_cluster_says_how_to_install_it(tmp_path: Path) -> None:
    blocker = tmp_path / "distributed"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
    inv = tmp_path / "hosts.ini"
    inv.write_text("h1 ansible_host=127.0.0.1\n")
    res = fleetmon("run", inv, "--cluster", "local:2", env={"PYTHONPATH": str(tmp_path)})
    assert res.returncode == 4
    assert res.stderr == (
        "fleetmon: error: --cluster needs Dask's distributed scheduler:"
        " pip install 'fleetmon[cluster]'\n"
    )


def test_a_bad_site_name_skips_its_host_naming_its_file_and_line(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yaml"
    inv.write_text("all:\n  hosts:\n    h1:\n      fleetmon_site: 'a=b'\n")
    res = fleetmon("run", inv, "--cluster", "local:1", "--format", "json", "-q", "--no-rules")
    assert res.returncode == 3, res.stderr
    (host,) = json.loads(res.stdout)["hosts"]
    assert (host["status"], host["error"]) == (
        "skipped",
        f"fleetmon_site ({inv}:4): expected a site name of letters, digits, '_', '.', '-',"
        " got 'a=b'",
    )


def test_simulated_sites_get_their_own_block_of_loopback() -> None:
    where, sites = site_endpoints("127.0.1.1", 5, 2222, 1, parse_sites("a,b"))
    assert where == [
        ("127.0.1.1", 2222), ("127.0.1.2", 2222), ("127.0.1.3", 2222),
        ("127.1.1.1", 2222), ("127.1.1.2", 2222),
    ]  # fmt: skip
    assert sites == ["a", "a", "a", "b", "b"]
    with pytest.raises(OptionError, match=r"leaves 127\.0\.0\.0/8"):
        site_endpoints("127.255.0.1", 4, 22, 1, ("a", "b"))
    with pytest.raises(OptionError, match="names a site twice"):
        parse_sites("a,a")


# --- the engine and the task on an in-process Dask cluster, canned output ----------------

_NONCE_RE = re.compile(r"@@fleetmon-([0-9a-f]+)@@")
ANSWERS = {"kvm-a": probe_stdout(kvm=True), "plain-b": probe_stdout(), "plain-c": "garbage\n"}


async def _replay(
    host: HostSpec, script: str, opts: CollectOptions, ctx: SshContext, progress: Progress
) -> Outcome:
    """The canned output of the host, with this probe's nonce (the script names it)."""
    if host.name not in ANSWERS:
        raise HostFailure(Status.UNREACHABLE, "no answer")
    match = _NONCE_RE.search(script)
    assert match is not None
    return Outcome(ANSWERS[host.name].replace(NONCE, match.group(1)).encode(), b"", 0)


@pytest.fixture
def replay() -> object:
    TRANSPORTS["replay"] = _replay
    yield
    del TRANSPORTS["replay"]


def _local(spec: HostSpec, shard_host_nonce: str) -> HostReport:
    """What a local run makes of the same output: analyse_host of the raw result."""
    out = ANSWERS.get(spec.name)
    if out is None:
        return analyse_host(RawResult(spec, Status.UNREACHABLE, "no answer"))
    stdout = out.replace(NONCE, shard_host_nonce)
    return analyse_host(RawResult(spec, Status.OK, None, stdout, 0, "", 0.0, shard_host_nonce))


def _from_worker(h: HostReport, label: str) -> HostReport:
    """A local run's host as a worker labelled `label` sends it: a failure's reason names
    the worker ("from worker tcp://... (a on node7): no answer")."""
    if h.collected:
        return h
    said = f"from worker {label}"
    return dataclasses.replace(
        h, error=f"{h.status.value} {said}" if h.error is None else f"{said}: {h.error}"
    )


#: What a shard run outside a Dask worker (called directly) says collected its hosts.
IN_PROCESS = f"in-process ({socket.gethostname()})"


@pytest.mark.usefixtures("replay")
def test_the_task_gives_what_the_local_pipeline_gives() -> None:
    hosts = [_spec(n, "a" if n.endswith("a") else None) for n in [*ANSWERS, "gone"]]
    shards = _shards(hosts)
    got = [h for s in shards for h in run_shard(s).hosts]
    want = [_local(h.spec, h.probe.nonce) for s in shards for h in s.hosts]
    assert got == [_from_worker(h, IN_PROCESS) for h in want]
    assert [h.status for h in got] == [Status.OK, Status.OK, Status.PARSE_ERROR, Status.UNREACHABLE]
    assert got[3].error == f"from worker {IN_PROCESS}: no answer"
    assert {h.collected_by for h in got} == {IN_PROCESS}  # the ok hosts' too


@pytest.mark.usefixtures("replay")
def test_a_run_without_a_history_gets_its_hosts_back_without_their_counters() -> None:
    hosts = [_spec(n) for n in ANSWERS]
    (shard,) = make_shards(
        hosts, OPTS, lambda h: ProbeOptions(interval_s=1.0), lambda h: OPTS, _site,
        counters=False,
    )  # fmt: skip
    want = [_local(h.spec, h.probe.nonce) for h in shard.hosts]
    assert want[0].counters  # the KVM host's, which a history would keep
    want = [_from_worker(dataclasses.replace(h, counters={}), IN_PROCESS) for h in want]
    assert run_shard(shard).hosts == want


def test_hosts_from_a_fleetmon_with_other_fields_are_refused() -> None:
    with pytest.raises(WireError) as err:
        unpack((("name", "address"), ROW_FIELDS, ((("h1", "10.0.0.1"),))))
    assert str(err.value) == (
        "the worker's fleetmon sends host reports with other fields than this one's:"
        " run the same fleetmon version on the workers and the client"
    )


@pytest.mark.usefixtures("replay")
def test_the_engine_on_an_in_process_cluster_returns_every_host_once() -> None:
    distributed = pytest.importorskip("distributed")
    hosts = [_spec(n) for n in [*ANSWERS, "gone"]] + [_spec("pinned", "nowhere")]
    shards = _shards(hosts, size=2)
    done: dict[str, HostReport] = {}
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        runner = ShardRunner(client, on_done=lambda s, hs: done.update((h.name, h) for h in hs))
        runner.run(shards)
    want = {h.spec.name: _local(h.spec, h.probe.nonce) for s in shards for h in s.hosts}
    assert sorted(done) == sorted(h.name for h in hosts)
    (worker,) = {h.collected_by for h in done.values() if h.collected_by}
    # The in-process worker's address, its name (0: LocalCluster's), this machine.
    assert re.fullmatch(rf"inproc://\S+ \(0 on {re.escape(socket.gethostname())}\)", worker)
    assert [done[name].collected_by for name in [*ANSWERS, "gone"]] == [worker] * 4
    for name in [*ANSWERS, "gone"]:
        assert done[name] == _from_worker(want[name], worker)
    assert done["pinned"].collected_by is None  # never on a worker: its reason says why
    assert done["pinned"].status is Status.SHARD_FAILED
    assert runner.notes[-1].startswith("shard site-nowhere/1of1: no worker offers the resource")


def test_the_placement_note_counts_the_workers_whose_shards_failed_too() -> None:
    """A shard that ran twice on a worker and failed both times was "on 0 worker(s)"."""
    runner = ShardRunner(None)
    runner.ran = {"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"}
    runner.results = [ShardResult("any/2of2", "tcp://127.0.0.1:2", ((), (), ()), 1.0, 0.5)]
    assert _placement("tcp://sched:8786", 2, runner) == [
        "cluster tcp://sched:8786: 2 shard(s) on 2 worker(s)",
        "worker tcp://127.0.0.1:2: shards any/2of2 (0.5 s CPU)",
    ]
    runner.ran, runner.results = {"tcp://127.0.0.1:1"}, []
    assert _placement("tcp://sched:8786", 1, runner) == [
        "cluster tcp://sched:8786: 1 shard(s) on 1 worker(s)"
    ]


def test_a_cluster_host_gets_its_site_and_vm_of_back_as_a_local_run_gives_them() -> None:
    """A shard carries no inventory variable: the worker's report (or a failed shard's) has
    no `site` for the exports' label until the client puts the inventory's back."""
    linked = {"fleetmon_site": "paris", "fleetmon_vm_of": "kvm1/web"}
    spec = dataclasses.replace(_spec("h1", "paris"), vars=linked)
    local = analyse_host(RawResult(spec, Status.UNREACHABLE, "refused"))
    assert (local.site, local.vm_of) == ("paris", "kvm1/web")
    (failed,) = failed_hosts(_shards([spec])[0], Status.SHARD_FAILED, "lost")
    assert failed.site is None
    back = with_inventory(failed, spec)
    assert (back.site, back.vm_of) == ("paris", "kvm1/web")
    # A host not collected keeps the hypervisor it declares (its host_up's label); a
    # collected one, what its probe found.
    kvm = dataclasses.replace(spec, vars={**linked, "fleetmon_hypervisor": "kvm"})
    assert analyse_host(RawResult(kvm, Status.UNREACHABLE, "refused")).hypervisor == "kvm"
    assert with_inventory(failed, kvm).hypervisor == "kvm"
    found = dataclasses.replace(failed, status=Status.OK, hypervisor="xen")
    assert with_inventory(found, kvm).hypervisor == "xen"
    plain = HostReport("h2", "127.0.0.1", (), Status.OK, None)
    assert with_inventory(plain, _spec("h2")) is plain  # no site, no vm_of: as it was


def test_a_shard_s_probes_are_cancelled_once_its_task_is_unwanted() -> None:
    stopped: list[str] = []

    async def probing() -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.append("cancelled")
            raise
        return "collected"

    asks = iter([True, True, False])
    with pytest.raises(Unwanted):
        asyncio.run(while_wanted(probing(), lambda: next(asks), every_s=0.01))
    assert stopped == ["cancelled"]
    assert next(asks, "all asked") == "all asked"

    async def quick() -> str:
        return "collected"

    assert asyncio.run(while_wanted(quick(), lambda: False, every_s=60)) == "collected"


def test_a_shard_a_worker_s_fleetmon_cannot_load_is_refused_in_words() -> None:
    # A class of another fleetmon's (pickle's GLOBAL opcode: module, name), then STOP.
    blob = b"cfleetmon.cluster.shards\nShardOfAnotherVersion\n."
    with pytest.raises(ShardNotLoaded) as err:
        run_pickled(blob, 1, __version__)
    assert str(err.value).startswith("this worker's fleetmon cannot load the shard (")
    assert str(err.value).endswith(
        f": install fleetmon {__version__}, the client's, on the workers"
    )
    # Another version is refused before its shard is loaded.
    with pytest.raises(ShardNotLoaded) as err:
        run_pickled(blob, 1, "9.9")
    assert str(err.value) == (
        f"this worker runs fleetmon {__version__}: install fleetmon 9.9, the client's, on the"
        " workers"
    )
