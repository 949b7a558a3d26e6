"""`fleetmon run --cluster` when the cluster misbehaves: a scheduler that never speaks or
stops answering, workers that leave, other runs on the same scheduler (real `dask
scheduler` and `dask worker` processes on loopback, the simulator as the fleet)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import fleetmon
from daskcli import (
    Cluster,
    Sim,
    loopback_base,
    require_dask,
    running_on,
    start_cluster,
    start_sim,
    stop,
    stop_sim,
    worker_process,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word (a mistyped port,
    a stalled proxy: Dask's handshake never completes)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with server:
            while True:
                try:
                    accepted.append(server.accept()[0])
                except OSError:  # closed: the test is over
                    return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


def test_bad_input_is_said_at_once_though_the_scheduler_never_answers(
    silent_port: int, tmp_path: Path
) -> None:
    """The run closed its session before saying the error, and that close waited for ever
    for a client stuck in Dask's handshake."""
    inv = tmp_path / "hosts.ini"
    inv.write_text("h1 ansible_host=127.0.0.1\n")
    # A bound of 2 * 20 + 5 s on the client's making: a run waiting for it takes 45 s.
    cluster = ("--cluster", f"tcp://127.0.0.1:{silent_port}", "--connect-timeout", "20")
    started = time.monotonic()
    missing = fleetmon("run", tmp_path / "nowhere.yaml", *cluster, timeout=120)
    missing_s = time.monotonic() - started
    nomatch = fleetmon("run", inv, "-l", "nomatch", "--history", "none", *cluster, timeout=120)
    nomatch_s = time.monotonic() - started - missing_s
    assert (missing.returncode, missing.stdout) == (4, "")
    assert missing.stderr == (
        f"fleetmon: error: {tmp_path}/nowhere.yaml: cannot read: No such file or directory\n"
    )
    assert (nomatch.returncode, nomatch.stdout) == (4, "")
    assert nomatch.stderr == (
        f"fleetmon: error: {inv}: --limit 'nomatch': 'nomatch' matches no host or group\n"
    )
    assert missing_s < 45
    assert nomatch_s < 45


def _popen_run(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleetmon", "run", *map(str, args), "-q", "--format", "json",
         "--history", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], timeout_s: float = 150) -> tuple[str, str]:
    """The run's output once it ends; past `timeout_s`, killed (and the test fails)."""
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        _kill(proc)


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@contextlib.contextmanager
def _fleet(
    tmp_path: Path,
    workers: dict[str, Sequence[str]],
    sim_args: Sequence[str],
    nofile: dict[str, int] | None = None,
) -> Iterator[tuple[Cluster, Sim]]:
    """A cluster and a simulator (`fleetmon simulate SIM_ARGS`), both stopped after."""
    require_dask()
    c = start_cluster(tmp_path, workers, nofile=nofile)
    try:
        s = start_sim(tmp_path, [*sim_args, "--base-address", loopback_base()])
        try:
            yield c, s
        finally:
            stop_sim(s)
    finally:
        c.close()


def test_a_scheduler_that_stops_answering_mid_run_fails_the_hosts_still_out(
    tmp_path: Path,
) -> None:
    """A scheduler stopped (SIGSTOP; a hung host, a partition) keeps its TCP connection up:
    the client's questions to it (which workers are alive) waited for ever, and so did the
    run, with no report written."""
    html = tmp_path / "fleet.html"
    with _fleet(tmp_path, {"x": [], "y": []}, ["--hosts", "8"]) as (c, s):
        # Four shards of 2 hosts, each 8 s at least: two wait behind the two first.
        proc = _popen_run(s.inventory, "--cluster", c.address, "--shard-size", "2",
                          "--interval", "8", "--connect-timeout", "2", "--html", html)  # fmt: skip
        try:
            running_on(c.address, c.worker_address("x"))
            os.kill(c.scheduler.pid, signal.SIGSTOP)
            out, err = _finish(proc)
        finally:
            os.kill(c.scheduler.pid, signal.SIGCONT)
            _kill(proc)
    assert proc.returncode == 3, err
    assert err == ""
    report = json.loads(out)
    assert len(report["hosts"]) == 8
    lost = [h for h in report["hosts"] if h["status"] != "ok"]
    assert len(lost) >= 4
    # The session's bound: 2 x --connect-timeout + 5 s.
    why = "the Dask scheduler stopped answering (no answer within 9 s)"
    assert Counter((h["status"], h["error"]) for h in lost) == {("shard_failed", why): len(lost)}
    assert f"--cluster {c.address}: {why}" in report["notes"]
    assert html.read_text().startswith("<!DOCTYPE html>")


@contextlib.contextmanager
def _client(address: str, client: Any = None) -> Iterator[Any]:
    """A Dask client of the scheduler: `client` if given, else one for the block."""
    if client is not None:
        yield client
        return
    import distributed

    with distributed.Client(address, timeout=20) as own:
        yield own


def _retries_queued(
    address: str, count: int, wait_s: float = 60, client: Any = None
) -> dict[str, str]:
    """Once `count` retries (attempt 2) are queued or running on workers: key -> worker."""
    with _client(address, client) as client:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            held = {
                str(key): worker
                for worker, keys in client.processing().items()
                for key in keys
                if str(key).startswith("fleetmon-") and str(key).endswith("-2")
            }
            if len(held) >= count:
                return held
            time.sleep(0.1)
    raise AssertionError(f"fewer than {count} retries were ever queued")


def _occupy(client: Any, workers: Sequence[str], seconds: float) -> None:
    """Each of `workers` given a task that sleeps `seconds`, ahead of any fleetmon task
    queued on it (a higher priority); it sleeps on once the client is gone (Dask cannot
    stop it)."""
    for w in workers:
        client.submit(time.sleep, seconds, workers=[w], priority=100, pure=False)


def test_a_retry_whose_worker_leaves_before_starting_it_goes_to_another(
    tmp_path: Path,
) -> None:
    """A retry goes to the workers other than the one its shard failed on; when they all
    left before starting it, it waited for them for ever (Dask's `no-worker` state)."""
    hanging = ["--hosts", "2", "--faults", "timeout=2"]
    # Two shards of one host that never answers, each late at 15 s: each retried on the
    # other worker, where it waits behind a task of the test's that holds the worker's
    # one thread (the late attempt itself stops once cancelled). That task must be on
    # the worker before the first attempt is late, or the retry starts at once there:
    # the test's Dask client is connected before the run starts (CI, loaded: a client
    # connecting after the starts came too late even at 15 s; the retry ran and was
    # killed with its worker: shard_failed), and submits as soon as both have started.
    with _fleet(tmp_path, {"x": [], "y": []}, hanging) as (c, s), _client(c.address) as client:
        proc = _popen_run(s.inventory, "--cluster", c.address, "--shard-size", "1",
                          "--timeout", "60", "--shard-timeout", "15")  # fmt: skip
        try:
            _starts(c.address, 2, client=client)
            _occupy(client, [c.worker_address(n) for n in c.workers], 45)
            queued = _retries_queued(c.address, 2, client=client)
            gone = sorted(queued.values())[0]
            (name,) = [n for n in c.workers if c.worker_address(n) == gone]
            stop(c.workers[name], signal.SIGKILL)
        finally:
            out, err = _finish(proc)
    assert proc.returncode == 3, err
    assert err == ""
    report = json.loads(out)
    assert Counter(h["status"] for h in report["hosts"]) == {"shard_timeout": 2}
    # Though none came back: where they ran (it said 0 workers).
    assert f"cluster {c.address}: 2 shard(s) on 2 worker(s)" in report["notes"]
    (pinned,) = [k for k, w in queued.items() if w == gone]
    shard = pinned.split("-", 2)[2].rsplit("-", 1)[0]
    assert (
        f"shard {shard}: attempt 2 sent to any eligible worker ({gone} left before starting it)"
        in report["notes"]
    )


def _host_names(inventory: Path) -> list[str]:
    doc = yaml.safe_load(inventory.read_text())
    groups = doc["all"]["children"].values()
    return list(dict.fromkeys(name for group in groups for name in (group.get("hosts") or {})))


def _placed(report: dict[str, object]) -> dict[str, str]:
    """Shard -> the worker the run's notes say returned it."""
    out = {}
    for note in report["notes"]:  # type: ignore[attr-defined]
        if note.startswith("worker "):
            worker, _, rest = note.removeprefix("worker ").partition(": shards ")
            out.update((key, worker) for key in rest.rsplit(" (", 1)[0].split(", "))
    return out


def test_two_runs_on_one_scheduler_read_only_their_own_shards_starts(tmp_path: Path) -> None:
    """Every run hears every shard start on the scheduler, and shard keys (any/1of1) are
    the same in every run: a run took another's start for its own shard rerun elsewhere
    (a false "retried" note, its retry spent, its deadline moved)."""
    with _fleet(tmp_path, {"x": [], "y": []}, ["--hosts", "2"]) as (c, s):
        first, second = _host_names(s.inventory)
        long = _popen_run(s.inventory, "-l", first, "--cluster", c.address, "--interval", "15")
        try:
            events = _starts(c.address, 1)
            short = _popen_run(s.inventory, "-l", second, "--cluster", c.address, "--interval", "2")
            short_out, short_err = _finish(short)
        finally:
            long_out, long_err = _finish(long)
    assert (long.returncode, short.returncode) == (0, 0), (long_err, short_err)
    a, b = json.loads(long_out), json.loads(short_out)
    # The second ran while the first held its worker, so on the other one.
    assert set(_placed(a)) == set(_placed(b)) == {"any/1of1"}
    assert _placed(a)["any/1of1"] == events[0]
    assert _placed(b)["any/1of1"] != events[0]
    assert [n for n in a["notes"] if "retried" in n] == []
    assert [n for n in b["notes"] if "retried" in n] == []


def _starts(address: str, count: int, wait_s: float = 60, client: Any = None) -> list[str]:
    """The workers of the first `count` fleetmon shard starts on the scheduler."""
    with _client(address, client) as client:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            events = client.get_events("fleetmon-shard")
            if len(events) >= count:
                return [msg["worker"] for _, msg in events]
            time.sleep(0.1)
    raise AssertionError(f"fewer than {count} shards ever started")


def test_a_worker_with_fewer_open_files_gets_the_time_its_waves_take(tmp_path: Path) -> None:
    """A worker lowers --forks to what its open-file limit allows (here 2 of the client's
    200), and so needs more waves; the deadline counted the client's forks, and every host
    of the shard was shard_timeout where a local run with that limit collects them all."""
    # 64 descriptors kept for the worker itself, one per SSH host (no agent): 2 at once.
    with _fleet(tmp_path, {"low": []}, ["--hosts", "40"], nofile={"low": 66}) as (c, s):
        # 20 waves of at least the 2 s interval: 40 s at least, past the 6 + 30 s that one
        # wave of 200 would be given, well within the 20 x 6 + 30 s of 20 waves.
        proc = _popen_run(s.inventory, "--cluster", c.address, "--interval", "2", "--timeout", "6")
        out, err = _finish(proc, 400)
    report = json.loads(out)
    assert len(report["hosts"]) == 40, err
    assert [h["error"] for h in report["hosts"] if h["status"].startswith("shard_")] == []
    assert [n for n in report["notes"] if "retried" in n] == []


def test_a_site_s_only_worker_restarted_by_its_nanny_gets_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process killed (OOM, kill -9) is restarted by its nanny within seconds; the
    retry of its site's shard found no worker of the site at that instant and the site's
    hosts were shard_failed at once."""
    # The scheduler fails a task whose worker died at once (KilledWorker), as local:N's
    # does, rather than rerunning it itself: the client's retry is what is tested.
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "0")
    workers = {"a": ["--resources", "site-a=1"]}
    with _fleet(tmp_path, workers, ["--hosts", "4", "--sites", "a"]) as (c, s):
        before = c.worker_address("a")
        proc = _popen_run(s.inventory, "--cluster", c.address, "--interval", "6")
        try:
            running_on(c.address, before)
            os.kill(worker_process(c.workers["a"]), signal.SIGKILL)
        finally:
            out, err = _finish(proc)
    report = json.loads(out)
    assert Counter(h["status"] for h in report["hosts"]) == {"ok": 4}, (err, report["notes"])
    assert f"shard site-a/1of1: retried (its worker {before} died)" in report["notes"]
    (after,) = _placed(report).values()
    assert after != before  # the worker the nanny started again, at another address


def test_an_interrupted_run_leaves_no_shard_probing_on_the_workers(tmp_path: Path) -> None:
    """Ctrl-C on the client ended the run (130, nothing written), but its shards went on
    probing on the workers for the rest of their interval: Dask cannot stop a task's
    thread, and the workers were held from the next run's shards for up to 120 s here."""
    with _fleet(tmp_path, {"x": [], "y": []}, ["--hosts", "4"]) as (c, s):
        report = tmp_path / "report.json"
        args = ("--cluster", c.address, "--shard-size", "2", "--interval", "120", "-o", report)
        proc = _popen_run(s.inventory, *args)
        try:
            _starts(c.address, 2)  # both shards probing, one on each worker
            proc.send_signal(signal.SIGINT)
        finally:
            _, err = _finish(proc, 60)
        busy = _executing(c.address, until_idle_s=60)
    assert (proc.returncode, err) == (130, "fleetmon: interrupted (exit 130)\n")
    assert not report.exists()
    assert busy == {c.worker_address("x"): 0, c.worker_address("y"): 0}


def _executing(address: str, until_idle_s: float) -> dict[str, int]:
    """The tasks each worker is executing (a released one too, until it returns), once
    none is or `until_idle_s` has passed."""
    import distributed

    def count(dask_worker: Any) -> int:
        return int(dask_worker.state.executing_count)

    with distributed.Client(address, timeout=20) as client:
        deadline = time.monotonic() + until_idle_s
        while True:
            busy: dict[str, int] = client.run(count)
            if not any(busy.values()) or time.monotonic() > deadline:
                return busy
            time.sleep(0.2)


def test_a_mistyped_scheduler_address_says_what_went_wrong(tmp_path: Path) -> None:
    """Dask retries its connect until the timeout and says only "Timed out trying to
    connect": a refused port and an unknown host name read like a firewall's silence."""
    inv = tmp_path / "hosts.ini"
    inv.write_text("h1 ansible_host=127.0.0.1\n")
    try:
        socket.getaddrinfo("no-such-host.invalid", 8786)
        pytest.fail("no-such-host.invalid resolves here")
    except socket.gaierror as exc:
        unknown = exc.strerror
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        for address, why in ((f"tcp://127.0.0.1:{port}", "Connection refused"),
                             ("tcp://no-such-host.invalid:8786", unknown)):  # fmt: skip
            res = fleetmon("run", inv, "--cluster", address, "--connect-timeout", "1", "-q",
                           "--format", "json", "--history", "none", timeout=120)  # fmt: skip
            assert (res.returncode, res.stderr) == (3, "")
            (host,) = json.loads(res.stdout)["hosts"]
            assert (host["status"], host["error"]) == (
                "shard_failed",
                f"cannot reach the Dask scheduler at {address}: Timed out trying to connect"
                f" to {address} after 1 s ({why})",
            )
