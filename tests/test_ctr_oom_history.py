"""A container's OOM kills judged since the last run (issue 14): simulated container hosts'
probe output replayed by `fleetmon report DIR` into a real history file, run after run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from clirun import fleetmon

from fleetmon import __version__
from fleetmon.io.rawstore import save_raw
from fleetmon.model import HostSpec, RawResult, RunInfo, Status
from fleetmon.sim.answer import Answer, ScriptInfo
from fleetmon.sim.captures import load_captures
from fleetmon.sim.containers import with_containers
from fleetmon.sim.hosts import HostProfile, endpoints, make_fleet
from fleetmon.sim.render import Moment
from fleetmon.sim.server import local_df

NONCE = "0e" * 8
T0 = 1_790_000_000.0
EVERY_S = 300.0


@pytest.fixture(scope="module", params=[0, 1], ids=["docker-cgroup-v2", "podman-cgroup-v1"])
def host(request: pytest.FixtureRequest) -> HostProfile:
    """A Linux host with two containers (sim/containers.py: an even host runs cgroup v2,
    memory.events; an odd one v1, memory.oom_control): the first one has OOM kills."""
    fleet = make_fleet(2, "linux", 3, {}, endpoints("127.0.1.1", 2, 2222, 1))
    return with_containers(fleet, 2, 3)[request.param]


def _with_kills(h: HostProfile, kills: int, restarted: bool = False) -> HostProfile:
    first, *rest = h.containers
    first = dataclasses.replace(first, oom_kills=kills)
    if restarted:  # the same container (its id), its cgroup made again
        first = dataclasses.replace(first, age_s=1.0)
    return dataclasses.replace(h, containers=(first, *rest))


def _run(tmp: Path, h: HostProfile, n: int, *args: str) -> dict[str, Any]:
    """Run `n` (every 5 minutes of the host's uptime) replayed from its raw output."""
    info = ScriptInfo(nonce=NONCE, interval_s=1.0, hypervisor="auto")
    ans = Answer(load_captures(), h, info, local_df("-k"), local_df("-i"))
    s = n * EVERY_S
    stdout = ans.first(Moment(s, T0 + s)) + ans.second(Moment(s + 1.0, T0 + s + 1.0))
    spec = HostSpec(h.name, h.address, port=h.port)
    raw = RawResult(spec, Status.OK, None, stdout=stdout, exit_status=0, nonce=NONCE)
    folder = tmp / f"run{n}"
    started = f"2026-12-02T03:{5 * n:02d}:00Z"
    save_raw(str(folder), RunInfo(__version__, started, 1.0, "sim"), [raw])
    res = fleetmon("report", folder, *args, "--format", "json")
    assert res.returncode in (0, 1), res.stderr
    return dict(json.loads(res.stdout))


def _oom(doc: dict[str, Any]) -> list[tuple[str, str, str, str | None, bool, str]]:
    """The OOM rules' findings the JSON report lists (alerting, or with a state)."""
    (h,) = doc["hosts"]
    return sorted(
        (f["rule"], f["subject"], f["severity"], f["state"], f["new"], f["message"])
        for f in h["findings"]
        if f["rule"].startswith("ctr-oom-kills")
    )


def test_kills_warn_when_new_since_the_last_run(host: HostProfile, tmp_path: Path) -> None:
    a = host.containers[0].name
    hist = str(tmp_path / "h.sqlite")
    # No count of an earlier run: the kills since the container started, this once.
    assert _oom(_run(tmp_path, _with_kills(host, 2), 0, "--history", hist)) == [
        ("ctr-oom-kills-since-start", a, "warning", "firing", True,
         f"OOM kills in container {a} on {host.name}: 2 since it started (no count from the"
         " last run to compare with)"),
    ]  # fmt: skip
    second = _run(tmp_path, _with_kills(host, 2), 1, "--history", hist)
    assert _oom(second) == [
        ("ctr-oom-kills-since-start", a, "ok", "resolved", False,
         f"{a}: not has_since_last_run(ctr.oom_kills) and ctr.oom_kills > 0 does not hold"),
    ]  # fmt: skip
    gap = second["hosts"][0]["since_last_run"]
    assert gap["interval_s"] == pytest.approx(EVERY_S)
    b = host.containers[1].name
    assert gap["rows"]["ctr"] == {a: {"ctr.oom_kills": 0}, b: {"ctr.oom_kills": 0}}
    assert _oom(_run(tmp_path, _with_kills(host, 3), 2, "--history", hist)) == [
        ("ctr-oom-kills", a, "warning", "firing", True,
         f"OOM kills in container {a} on {host.name}: 1 since the last run (3 since it started)"),
    ]  # fmt: skip
    assert _oom(_run(tmp_path, _with_kills(host, 3), 3, "--history", hist)) == [
        ("ctr-oom-kills", a, "ok", "resolved", False,
         f"{a}: since_last_run(ctr.oom_kills) = 0 (warning > 0)"),
    ]  # fmt: skip
    # The count went down: the container restarted, so its kills since are since the last run.
    doc = _run(tmp_path, _with_kills(host, 1, restarted=True), 4, "--history", hist)
    assert _oom(doc) == [
        ("ctr-oom-kills-since-start", a, "warning", "firing", True,
         f"OOM kills in container {a} on {host.name}: 1 since it started (no count from the"
         " last run to compare with)"),
    ]  # fmt: skip
    assert doc["hosts"][0]["since_last_run"]["rows"]["ctr"][a] == {"ctr.oom_kills": None}
    assert (
        "1 container(s) restarted since the last run (OOM kill count went down): their OOM"
        " kills since the last run are not known"
    ) in doc["hosts"][0]["notes"]


def test_without_a_history_the_count_since_it_started_warns(
    host: HostProfile, tmp_path: Path
) -> None:
    a = host.containers[0].name
    for n in (0, 1):  # nothing to compare with: every run, as the rule's reason says
        assert _oom(_run(tmp_path, _with_kills(host, 2), n, "--history", "none")) == [(
            "ctr-oom-kills", a, "warning", None, False,
            f"the kernel OOM-killed 2 process(es) in container {a} on {host.name} since it"
            " started",
        )]  # fmt: skip
