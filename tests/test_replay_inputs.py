"""`fleetmon report DIR` given a run.json or raw output no run of this fleetmon writes: one
line naming the file and the key (exit 4), before any history file is made; the output of
another probe version is that host's parse error, never parsed as this version's."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from clirun import fleetmon
from probetext import NONCE, probe_stdout

from fleetmon.io.rawstore import iter_raw, save_raw
from fleetmon.model import HostSpec, RawResult, RunInfo, Status

RUN = RunInfo("0.0.test", "2026-11-26T05:00:00Z", 1.0, "inv.yaml")


def _saved(tmp_path: Path, stdout: str | None = None) -> Path:
    folder = tmp_path / "saved"
    spec = HostSpec("h0", "192.0.2.1", groups=("kvm",))
    out = probe_stdout() if stdout is None else stdout
    save_raw(str(folder), RUN, [RawResult(spec, Status.OK, None, out, 0, "", 0.5, NONCE)])
    return folder


def _edit(folder: Path, change: Any) -> Path:
    index = folder / "run.json"
    doc = json.loads(index.read_text())
    change(doc)
    index.write_text(json.dumps(doc))
    return index


@pytest.mark.parametrize(
    "value", ["yesterday", 5, None, "2026-13-01T00:00:00Z", "2026-11-26 05:00:00"]
)
def test_a_run_start_no_run_writes_is_refused_before_the_history_is_made(
    tmp_path: Path, value: object
) -> None:
    """It was taken as it was: a JSON report merge refuses, JUnit and Influx stamps of
    "yesterday" and 1970, or (with a history) an error naming neither file nor key, after
    the history file was made."""
    folder = _saved(tmp_path)
    index = _edit(folder, lambda d: d["run"].__setitem__("started_at", value))
    history = tmp_path / "h.sqlite"
    r = fleetmon("report", folder, "--history", history, "--format", "json")
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr == (
        f"fleetmon: error: {index}: malformed entry: run.started_at: expected a UTC time such "
        f"as 2026-11-26T03:00:00Z, got {value!r}\n"
    )
    assert not history.exists()


def test_an_elapsed_time_past_a_double_is_one_line_naming_the_key(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    index = _edit(folder, lambda d: d["hosts"][0].__setitem__("elapsed_s", 10**400))
    r = fleetmon("report", folder, "--history", "none", "--no-rules")
    assert (r.returncode, r.stdout) == (4, ""), r.stderr  # was exit 70 (OverflowError)
    assert r.stderr == (
        f"fleetmon: error: {index}: malformed entry: hosts[0].elapsed_s: an integer of 401 "
        "digits is past the largest number\n"
    )


@pytest.mark.parametrize("command", ["run", "report", "top"])
def test_the_output_cap_is_bounded_alike_for_every_command(tmp_path: Path, command: str) -> None:
    """`report --output-cap 3074457345618258603` asked one read for 9e18 bytes: exit 70."""
    folder = _saved(tmp_path)
    first = {"run": str(tmp_path / "none.yaml"), "report": str(folder), "top": "-i=x"}[command]
    r = fleetmon(command, first, "--output-cap", "3074457345618258603")
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == (
        "fleetmon: error: argument --output-cap: --output-cap must be 1099511627776 (1 TiB) "
        f"or less, got '3074457345618258603' (see 'fleetmon {command} --help')\n"
    )


def test_a_replay_under_the_largest_output_cap_reads_no_more_than_the_file(
    tmp_path: Path,
) -> None:
    """Its raw files were read with one read of three times the cap: MemoryError, exit 70."""
    folder = _saved(tmp_path)
    r = fleetmon("report", folder, "--history", "none", "--no-rules", "--format", "json",
                 "--output-cap", str(1 << 40))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hosts"][0]["status"] == "ok"


def test_a_raw_file_that_grows_while_read_is_still_capped(tmp_path: Path) -> None:
    folder = _saved(tmp_path, "x" * 10)
    _run, raws = iter_raw(str(folder), max_bytes=10)
    (folder / "raw" / "000000.out").write_text("x" * 29)  # grown since run.json was read
    assert next(raws).stdout == "x" * 29


def test_the_output_of_another_probe_version_is_that_hosts_parse_error(tmp_path: Path) -> None:
    """A folder saved by another fleetmon was parsed as this probe's output, silently."""
    folder = _saved(tmp_path, probe_stdout().replace("probe=1\n", "probe=7\n", 1))
    r = fleetmon("report", folder, "--history", "none", "--no-rules", "--format", "json")
    assert r.returncode == 3, r.stderr
    (host,) = json.loads(r.stdout)["hosts"]
    assert (host["status"], host["error"]) == (
        "parse_error",
        "parse error: section meta: output of probe version '7'; this fleetmon reads version 1",
    )
    same = _saved(tmp_path / "same")
    r = fleetmon("report", same, "--history", "none", "--no-rules", "--format", "json")
    assert json.loads(r.stdout)["hosts"][0]["status"] == "ok", r.stderr


@pytest.mark.parametrize(
    ("value", "key", "said"),
    [
        ("abc", "fleetmon_thresholds", "expected a mapping of rule name to overrides"),
        (
            {"host-mem-used": {"warnin": "> 1"}},
            "fleetmon_thresholds.host-mem-used.warnin",
            "unknown key (did you mean 'warning'?)",
        ),
    ],
)
def test_a_malformed_stored_threshold_override_names_run_json_and_the_key(
    tmp_path: Path, value: object, key: str, said: str
) -> None:
    """The error named the host only ("host 'h0': fleetmon_thresholds: ..."), and came
    after the history file was made."""
    folder = _saved(tmp_path)
    index = _edit(folder, lambda d: d["hosts"][0]["spec"]["vars"].__setitem__(
        "fleetmon_thresholds", value))  # fmt: skip
    history = tmp_path / "h.sqlite"
    r = fleetmon("report", folder, "--history", history)
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr == (
        f"fleetmon: error: {index}: malformed entry: hosts[0].spec.vars.{key}: {said}\n"
    )
    assert not history.exists()


def _second_h0(d: dict[str, Any]) -> None:
    d["hosts"].append(d["hosts"][0])


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d["hosts"][0]["spec"].pop("name"), "hosts[0].spec.name: missing"),
        (lambda d: d["hosts"][0].pop("stdout_file"), "hosts[0].stdout_file: missing"),
        (lambda d: d["hosts"][0].pop("spec"), "hosts[0].spec: missing"),
        (lambda d: d["run"].pop("inventory"), "run.inventory: missing"),
        (lambda d: d["hosts"].__setitem__(0, "h0"), "hosts[0]: expected an object"),
        (
            lambda d: d["hosts"][0].__setitem__("status", "fine"),
            "hosts[0].status: unknown status 'fine'",
        ),
        (_second_h0, "hosts[1].spec.name: 'h0' is hosts[0]'s too"),
        # Said "invalid literal for int() with base 10: 'x'", "dictionary update sequence
        # element #0 has length 1; 2 is required": no key, no host.
        (
            lambda d: d["hosts"][0]["spec"].__setitem__("port", "x"),
            "hosts[0].spec.port: expected an integer, got 'x'",
        ),
        (
            lambda d: d["hosts"][0]["spec"].__setitem__("port", None),
            "hosts[0].spec.port: expected an integer, got None",
        ),
        (
            lambda d: d["hosts"][0]["spec"].__setitem__("vars", "x"),
            "hosts[0].spec.vars: expected an object",
        ),
    ],
)
def test_a_missing_key_or_a_host_twice_is_one_line_naming_the_key(
    tmp_path: Path, change: Any, said: str
) -> None:
    """A missing key said only "malformed entry: 'name'" (which host? which name?), a bad
    status "'fine' is not a valid Status"; a host listed twice was reported twice, counted
    twice in the fleet statistics."""
    folder = _saved(tmp_path)
    index = _edit(folder, change)
    history = tmp_path / "h.sqlite"
    r = fleetmon("report", folder, "--history", history, "--format", "json")
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr == f"fleetmon: error: {index}: malformed entry: {said}\n"
    assert not history.exists()


@pytest.mark.parametrize("what", ["missing", "fifo", "symlink"])
def test_a_raw_file_missing_or_not_regular_is_refused_before_the_history_is_made(
    tmp_path: Path, what: str
) -> None:
    """run.json's faults stopped the replay before the history was opened; a raw file gone
    (raw/ copied in part) stopped it only after: a new, empty history file was left behind,
    the error naming the folder and Python's errno text, not the file or its entry."""
    folder = _saved(tmp_path)
    out = folder / "raw" / "000000.out"
    out.unlink()
    said = {
        "missing": "cannot read hosts[0].stdout_file: No such file or directory",
        "fifo": "is a FIFO, not a regular file",
        "symlink": "is a symlink; not followed",
    }[what]
    if what == "fifo":
        os.mkfifo(out)
    elif what == "symlink":
        out.symlink_to("../run.json")
    history = tmp_path / "h.sqlite"
    r = fleetmon("report", folder, "--history", history, "--html", tmp_path / "r.html")
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr == f"fleetmon: error: {out}: {said}\n"
    assert not history.exists()
    assert not (tmp_path / "r.html").exists()


def test_a_raw_file_over_the_cap_is_refused_before_the_history_is_made(tmp_path: Path) -> None:
    """As a missing raw file: the cap was checked only as the host was read, after a new,
    empty history file had been made."""
    folder = _saved(tmp_path)
    out = folder / "raw" / "000000.out"
    size = out.stat().st_size
    history = tmp_path / "h.sqlite"
    r = fleetmon("report", folder, "--history", history, "--output-cap", str(size // 3 - 1))
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr.startswith(f"fleetmon: error: {out}: {size} bytes, over the limit of ")
    assert not history.exists()
