"""`fleetmon merge` of two disjoint halves of a fleet against `fleetmon report` of the whole:
one `run --save-raw` of a simulated fleet (KVM hosts, the Linux guests of their VMs, Xen),
its run.json split in two, each half replayed, and the halves' JSON reports merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from clirun import fleetmon
from livesim import simulated_fleet


def _half(raw: Path, to: Path, keep: Any) -> Path:
    doc = json.loads((raw / "run.json").read_text())
    (to / "raw").mkdir(parents=True, mode=0o755)
    doc["hosts"] = [h for h in doc["hosts"] if keep(h["spec"]["groups"])]
    for h in doc["hosts"]:
        shutil.copy(raw / h["stdout_file"], to / h["stdout_file"])
    (to / "run.json").write_text(json.dumps(doc))
    return to


def _report(folder: Path, out: Path) -> dict[str, Any]:
    r = fleetmon("report", folder, "--history", "none", "--format", "json", "-o", out)
    assert r.returncode in (0, 1, 2, 3), r.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def test_guests_paired_across_two_reports_are_judged_as_in_one_run(tmp_path: Path) -> None:
    """A Linux guest in one report, the KVM host of its VM in the other: merge paired them
    again (the guest's row), but judged no guest-scope rule on the pair: its finding (or
    pass) was missing, checks_passed one short of a run over the union (40 -> 39)."""
    raw = tmp_path / "raw"
    with simulated_fleet(tmp_path, hosts=9, extra=("--guests", "3")) as inv:
        r = fleetmon("run", inv, "-q", "--history", "none", "--save-raw", raw, "-o", "-")
        assert r.returncode in (0, 1, 2, 3), r.stderr
    whole = _report(raw, tmp_path / "whole.json")
    kvm = _half(raw, tmp_path / "kvm", lambda groups: "kvm" in groups)
    rest = _half(raw, tmp_path / "rest", lambda groups: "kvm" not in groups)
    files = [tmp_path / "kvm.json", tmp_path / "rest.json"]
    _report(kvm, files[0])
    _report(rest, files[1])
    r = fleetmon("merge", *files, "--format", "json")
    assert r.returncode == whole["exit_code"], r.stderr
    merged = json.loads(r.stdout)
    guests = [h["name"] for h in whole["hosts"] if h["guests"]]
    assert len(guests) == 3
    by_name = {h["name"]: h for h in merged["hosts"]}
    for h in whole["hosts"]:
        got = by_name[h["name"]]
        assert (got["guests"], got["findings"], got["checks_passed"]) == (
            h["guests"],
            h["findings"],
            h["checks_passed"],
        ), h["name"]
    assert (merged["summary"], merged["fleet"]) == (whole["summary"], whole["fleet"])
