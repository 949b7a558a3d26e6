"""`fleetmon run --cluster` with workers unlike the client: one whose fleetmon cannot be
imported (real `dask scheduler` and `dask worker` processes on loopback, the simulator as
the fleet)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from clirun import fleetmon
from daskcli import loopback_base, require_dask, start_cluster, start_sim, stop_sim

import fleetmon as fleetmon_package
from fleetmon import __version__

pytestmark = pytest.mark.slow


def test_a_worker_that_cannot_import_fleetmon_fails_its_shard_in_words_and_lives_on(
    tmp_path: Path,
) -> None:
    """A task a worker cannot unpickle failed in Dask's message stream: the worker process
    died, its nanny closed, and 20 s later the run said "no worker is connected to the
    scheduler"."""
    require_dask()
    broken = tmp_path / "broken" / "fleetmon"
    broken.mkdir(parents=True)  # first on the worker's path: fleetmon fails to import
    (broken / "__init__.py").write_text("raise ModuleNotFoundError('no fleetmon here')\n")
    env = {"bare": {"PYTHONPATH": str(broken.parent)}}
    c = start_cluster(tmp_path, {"bare": []}, env=env)
    try:
        s = start_sim(tmp_path, ["--hosts", "4", "--base-address", loopback_base()])
        try:
            res = fleetmon("run", s.inventory, "--cluster", c.address, "--interval", "2", "-q",
                           "--format", "json", "--history", "none", timeout=300)  # fmt: skip
        finally:
            stop_sim(s)
        alive = c.workers["bare"].poll() is None
    finally:
        c.close()
    assert (res.returncode, res.stderr) == (3, "")
    hosts = json.loads(res.stdout)["hosts"]
    assert {h["status"] for h in hosts} == {"shard_failed"}
    why = (
        "its worker cannot import fleetmon (ModuleNotFoundError: no fleetmon here): install"
        f" fleetmon {__version__}, the client's, on the workers"
    )
    assert {h["error"] for h in hosts} == {f"shard any/1of1: attempt 1: {why}; attempt 2: {why}"}
    assert alive


#: Edits of the task module making another fleetmon's result: a field fewer (it loaded
#: here without `cpu_s`: "internal error: AttributeError", exit 70, no report), and a class
#: this fleetmon lacks (Dask's unpickling error, its traceback logged, exit 70).
OTHER_RESULTS = {
    "a field fewer": [
        ("    cpu_s: float\n", ""),
        ("packed, elapsed, time.thread_time() - cpu)", "packed, elapsed)"),
    ],
    "another class": [
        ("class ShardResult:", "class ShardOutcome:"),
        ("return ShardResult(", "return ShardOutcome("),
    ],
}


@pytest.mark.parametrize("edits", OTHER_RESULTS.values(), ids=OTHER_RESULTS.keys())
def test_a_worker_whose_fleetmon_returns_another_result_fails_its_shard_in_words(
    tmp_path: Path, edits: list[tuple[str, str]]
) -> None:
    require_dask()
    other = tmp_path / "other" / "fleetmon"
    shutil.copytree(Path(fleetmon_package.__file__).parent, other)
    task = other / "cluster" / "task.py"
    text = task.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    task.write_text(text)
    c = start_cluster(tmp_path, {"other": []}, env={"other": {"PYTHONPATH": str(other.parent)}})
    try:
        s = start_sim(tmp_path, ["--hosts", "4", "--base-address", loopback_base()])
        try:
            res = fleetmon("run", s.inventory, "--cluster", c.address, "-q",
                           "--format", "json", "--history", "none", timeout=300)  # fmt: skip
        finally:
            stop_sim(s)
    finally:
        c.close()
    assert (res.returncode, res.stderr) == (3, "")
    report = json.loads(res.stdout)
    assert {h["status"] for h in report["hosts"]} == {"shard_failed"}
    (error,) = {h["error"] for h in report["hosts"]}
    # Tried on another worker (none here: the same one) before the shard fails.
    worker = c.worker_address("other")
    first, second = error.removeprefix("shard any/1of1: ").split("; attempt 2: ")
    assert first.startswith(f"attempt 1: worker {worker}: "), error
    assert second.startswith(f"worker {worker}: "), error
    assert error.endswith(": run the same fleetmon version on the workers and the client")


def test_a_worker_running_another_fleetmon_version_fails_its_shard_in_words(
    tmp_path: Path,
) -> None:
    """Records of the same fields, another version: the worker's hosts came back analysed
    by its fleetmon, in silence (the README said such a worker fails its attempts)."""
    require_dask()
    other = tmp_path / "other" / "fleetmon"
    shutil.copytree(Path(fleetmon_package.__file__).parent, other)
    init = other / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9.9+', 1))
    c = start_cluster(tmp_path, {"other": []}, env={"other": {"PYTHONPATH": str(other.parent)}})
    try:
        s = start_sim(tmp_path, ["--hosts", "2", "--base-address", loopback_base()])
        try:
            res = fleetmon("run", s.inventory, "--cluster", c.address, "-q",
                           "--format", "json", "--history", "none", timeout=300)  # fmt: skip
        finally:
            stop_sim(s)
    finally:
        c.close()
    assert (res.returncode, res.stderr) == (3, "")
    hosts = json.loads(res.stdout)["hosts"]
    why = (  # refused before its start is announced: the client cannot name the worker
        f"failed: ShardNotLoaded: this worker runs fleetmon 9.9.9+{__version__}: install"
        f" fleetmon {__version__}, the client's, on the workers"
    )
    assert {(h["status"], h["error"]) for h in hosts} == {
        ("shard_failed", f"shard any/1of1: attempt 1: {why}; attempt 2: {why}")
    }


def test_a_worker_reads_the_files_the_inventory_names_under_its_own_home(
    tmp_path: Path,
) -> None:
    """`~/...` in a key file or known_hosts path was expanded on the client, so a worker
    run by another user (its own key, its own known_hosts) looked in the client's home:
    every host failed from a worker that holds the key."""
    require_dask()
    client_home, worker_home = tmp_path / "client-home", tmp_path / "worker-home"
    client_home.mkdir()
    worker_home.mkdir()
    env = {"w": {"HOME": str(worker_home)}}
    c = start_cluster(tmp_path, {"w": []}, env=env)
    try:
        s = start_sim(tmp_path, ["--hosts", "3", "--base-address", loopback_base()])
        try:
            shutil.copy2(f"{s.inventory}.key", worker_home / "fleet.key")
            shutil.copy2(f"{s.inventory}.known_hosts", worker_home / "fleet.known_hosts")
            doc = yaml.safe_load(s.inventory.read_text())
            doc["all"]["vars"]["ansible_ssh_private_key_file"] = "~/fleet.key"
            doc["all"]["vars"]["ansible_ssh_common_args"] = (
                "-o UserKnownHostsFile=~/fleet.known_hosts"
            )
            inv = tmp_path / "home.yaml"
            inv.write_text(yaml.safe_dump(doc))
            res = fleetmon("run", inv, "--cluster", c.address, "-q", "--format", "json",
                           "--history", "none", timeout=300,
                           env={"HOME": str(client_home)})  # fmt: skip
        finally:
            stop_sim(s)
    finally:
        c.close()
    assert (res.returncode, res.stderr) == (0, "")
    hosts = json.loads(res.stdout)["hosts"]
    assert [(h["status"], h["error"]) for h in hosts] == [("ok", None)] * 3
