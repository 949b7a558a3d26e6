"""`fleetmon run --cluster` gives a guest named by `fleetmon_vm_of` the row a local run gives
it, though a shard carries no inventory variable (the simulator's KVM host and a Linux host
said to be one of its VMs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import fleetmon
from daskcli import Sim, loopback_base, require_dask, start_sim, stop_sim

pytestmark = pytest.mark.slow


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    s = start_sim(tmp_path, ["--hosts", "4", "--kind", "mixed", "--base-address", loopback_base()])
    yield s
    stop_sim(s)


def _run(*args: object) -> dict[str, Any]:
    res = fleetmon("run", *args, "--interval", "1", "-q", "--format", "json", "--history", "none",
                   timeout=300)  # fmt: skip
    assert res.returncode in (0, 1, 2), res.stderr
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def test_a_guest_named_by_fleetmon_vm_of_is_linked_in_a_cluster_run(
    sim: Sim, tmp_path: Path
) -> None:
    require_dask()
    doc = yaml.safe_load(sim.inventory.read_text())
    (kvm,) = doc["all"]["children"]["kvm"]["hosts"]
    (guest,) = doc["all"]["children"]["linux"]["hosts"]
    vms = {h["name"]: h["vms"] for h in _run(sim.inventory, "-l", kvm)["hosts"]}
    vm = vms[kvm][0]["name"]
    doc["all"]["children"]["linux"]["hosts"][guest]["fleetmon_vm_of"] = f"{kvm}/{vm}"
    inv = tmp_path / "guests.yaml"
    inv.write_text(yaml.safe_dump(doc, sort_keys=False))
    pair = f"{kvm},{guest}"
    local = {h["name"]: h for h in _run(inv, "-l", pair)["hosts"]}
    dist = {h["name"]: h for h in _run(inv, "-l", pair, "--cluster", "local:1")["hosts"]}
    want = {"hypervisor": kvm, "vm": vm, "matched_by": "inventory"}
    for report in (local, dist):
        rows = report[guest]["guests"]
        assert [r["name"] for r in rows] == [f"{kvm}/{vm}"]
        assert {k: rows[0]["labels"][k] for k in want} == want
        assert report[guest]["notes"] == []
    assert [r["labels"] for r in dist[guest]["guests"]] == [
        r["labels"] for r in local[guest]["guests"]
    ]
