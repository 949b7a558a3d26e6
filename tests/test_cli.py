"""The command line as users run it: exit codes, one-line errors, atomic output, signals, lock."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import proctree
import pytest
from clirun import ROOT, fleetmon, popen

from fleetmon import __version__


def _local_inventory(tmp_path: Path, extra: str = "") -> Path:
    inv = tmp_path / "local.yaml"
    inv.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n" + extra,
        encoding="utf-8",
    )
    return inv


def test_version() -> None:
    r = fleetmon("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"fleetmon {__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.yaml"], "missing.yaml"),
        (["run", "inventories/localhost.yaml", "--interval", "abc"], "--interval must be a number"),
        (["run", "inventories/localhost.yaml", "--forks", "0"], "--forks must be greater than 0"),
        # float() reads nan and inf: no interval, wait or latency is one.
        (
            ["run", "inventories/localhost.yaml", "--interval", "nan"],
            "--interval must be a finite number",
        ),
        (
            ["run", "inventories/localhost.yaml", "--interval", "inf"],
            "--interval must be a finite number",
        ),
        (
            ["run", "inventories/localhost.yaml", "--lock-wait", "-5"],
            "--lock-wait must be 0 or more",
        ),
        (["top", "inventories/localhost.yaml", "-d", "nan"], "-d must be a finite number"),
        # An interval of 1e9 s was a run of 31 years: an hour at most.
        (
            ["run", "inventories/localhost.yaml", "--interval", "1e9"],
            "--interval must be 3600 or less",
        ),
        (["serve", "inventories/localhost.yaml", "-d", "3601"], "-d must be 3600 or less"),
        # A deadline that ends before the second sample: every host would time out.
        (
            ["run", "inventories/localhost.yaml", "--interval", "5", "--timeout", "3"],
            "--timeout 3 must exceed --interval 5: a host's deadline runs over the wait between"
            " its two samples, so every host would time out",
        ),
        (["run", "inventories/localhost.yaml", "--timeout", "1"], "--timeout 1 must exceed"),
        # A shard's attempt ran past it every time: each shard was tried twice, then failed.
        (
            ["run", "inventories/localhost.yaml", "--interval", "10", "--shard-timeout", "8"],
            "--shard-timeout 8 must exceed --interval 10: a shard's hosts wait that long between"
            " their two samples, so every shard would time out",
        ),
        (
            ["run", "inventories/localhost.yaml", "--interval", "5", "--shard-timeout", "5"],
            "--shard-timeout 5 must exceed --interval 5",
        ),
        (["top", "inventories/localhost.yaml", "-d", "2", "--timeout", "2"], "must exceed -d 2"),
        (["serve", "inventories/localhost.yaml", "--timeout", "0.5"], "must exceed -d 2"),
        (["simulate", "--latency-ms", "inf"], "--latency-ms must be a finite number"),
        # An unset shell variable: --history "" meant the default history.
        (["run", "inventories/localhost.yaml", "--history", ""], "--history needs a path"),
        (["report", "raw", "--html", ""], "--html needs a path, got an empty one"),
        (["simulate", "--time-scale", "nan"], "--time-scale must be a finite number"),
        (["run", "inventories/localhost.yaml", "--format", "xml"], "invalid choice: 'xml'"),
        (["run", "inventories/localhost.yaml", "--limit", "nomatch"], "nomatch"),
        # A bare `!`: nothing excluded, the run would reach every host (Ansible fails too).
        (
            ["run", "inventories/localhost.yaml", "--limit", "all:!"],
            "--limit 'all:!': '!' with no pattern after it",
        ),
        (["run", "inventories/localhost.yaml", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "inventories/localhost.yaml", "-o", "/nonexistent/dir/r.json"], "/nonexistent"),
        (["report", "/nonexistent-raw-dir"], "/nonexistent-raw-dir"),
        # Two outputs in one place: texts run into each other, or one replaces the other.
        (
            ["run", "inventories/localhost.yaml", "--html", "-"],
            "--html - and the text report both write to standard output",
        ),
        (
            ["run", "inventories/localhost.yaml", "-o", "/dev/stdout", "--json", "-"],
            "--json - and -o /dev/stdout both write to standard output",
        ),
        (
            ["run", "inventories/localhost.yaml", "--html", "r.x", "--junit", "./r.x"],
            "--junit ./r.x and --html r.x both write to ./r.x",
        ),
        (
            ["report", "/nonexistent-raw-dir", "--format", "json", "--json", "-"],
            "--json - and the json report both write to standard output",
        ),
        (
            ["merge", "a.json", "--html", "-"],
            "--html - and the text report both write to standard output",
        ),
        (["rules", "lint", "missing-rules.yaml"], "missing-rules.yaml"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_exit_4_without_traceback(args: list[str], message: str) -> None:
    r = fleetmon(*args)
    assert r.returncode == 4, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("fleetmon: error: ")
    assert message in lines[0]
    assert "Traceback" not in r.stderr


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    inv = tmp_path / "broken.yaml"
    inv.write_text("all:\n  hosts:\n    a: {ansible_host: [\n", encoding="utf-8")
    r = fleetmon("run", inv)
    assert r.returncode == 4
    assert r.stderr.startswith(f"fleetmon: error: {inv}:")
    assert "Traceback" not in r.stderr


def test_typo_in_rule_file_suggests_the_metric(tmp_path: Path) -> None:
    rules = tmp_path / "site.yaml"
    rules.write_text(
        "- name: site\n  hosts: all\n  rules:\n    - name: busy\n"
        "      metric: cpu.bussy_pct\n      warning: '> 90'\n",
        encoding="utf-8",
    )
    r = fleetmon("run", "inventories/localhost.yaml", "-r", rules)
    assert r.returncode == 4
    assert f"{rules}:5" in r.stderr
    assert "did you mean 'cpu.busy_pct'?" in r.stderr


def test_local_run_json_report_and_exit_code_agree(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    html = tmp_path / "fleet.html"
    started = time.monotonic()
    r = fleetmon(
        "run", _local_inventory(tmp_path), "--interval", "0.5", "--format", "json", "-o", out,
        "--html", html,
    )  # fmt: skip
    wall_s = time.monotonic() - started
    assert r.stdout == ""
    doc = json.loads(out.read_text())
    assert r.returncode == doc["exit_code"]
    assert r.returncode in (0, 1, 2, 3)
    assert doc["schema"] == "fleetmon.report/1"
    (host,) = doc["hosts"]
    assert host["name"] == "here"
    assert host["status"] == "ok"
    # The probe runs at nice 19: a busy machine may stretch its interval, not beyond the run.
    assert 0.48 <= host["interval_s"] <= wall_s
    assert doc["summary"]["collected"] == 1
    assert host["metrics"]["cpu.count"] >= 1
    assert html.read_text().lstrip().lower().startswith("<!doctype html>")
    # No temporary files or locks left behind but the lock file itself.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".fleet.json.lock",
        "fleet.html",
        "fleet.json",
        "local.yaml",
    ]


#: The local probe's interval in the signal tests: its `sleep 29.713` (under the fleetmon
#: process, not merely any child of it: Python may run helpers such as ldconfig while it
#: imports) shows that the probe runs and the signal handlers are in place.
PROBE_SLEEP = ("sleep", "29.713")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_quickly_and_keeps_previous_report(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    out = tmp_path / "fleet.json"
    out.write_text("previous report\n")
    proc = popen(
        "run",
        _local_inventory(tmp_path),
        "--interval",
        PROBE_SLEEP[1],
        "--format",
        "json",
        "-o",
        out,
    )
    try:
        proctree.wait_for_descendant(proc.pid, PROBE_SLEEP)  # inside the probe's interval
        sent = time.monotonic()
        proc.send_signal(sig)
        _stdout, stderr = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert took < 5
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert out.read_text() == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".fleet.json.lock",
        "fleet.json",
        "local.yaml",
    ]


def test_overlapping_runs_second_exits_3_or_waits(tmp_path: Path) -> None:
    inv = _local_inventory(tmp_path)
    out = tmp_path / "fleet.json"
    first = popen("run", inv, "--interval", "4", "--format", "json", "-o", out)
    try:
        time.sleep(1.5)
        second = fleetmon("run", inv, "--interval", "0.2", "--format", "json", "-o", out)
        assert second.returncode == 3
        assert "another fleetmon run holds the lock" in second.stderr
        assert f"(pid {first.pid})" in second.stderr
        waited = fleetmon(
            "run", inv, "--interval", "0.2", "--format", "json", "-o", out, "--lock-wait", "30"
        )
        assert first.wait(30) in (0, 1, 2, 3)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    assert waited.returncode in (0, 1, 2, 3), waited.stderr
    assert json.loads(out.read_text())["schema"] == "fleetmon.report/1"


def test_inventory_graph_and_host() -> None:
    r = fleetmon("inventory", "inventories/localhost.yaml", "--graph")
    assert r.returncode == 0
    assert "@all:" in r.stdout
    assert "localhost" in r.stdout
    r = fleetmon("inventory", "inventories/localhost.yaml", "--host", "localhost")
    assert json.loads(r.stdout)["ansible_connection"] == "local"


def test_save_raw_then_report_recomputes_the_same_figures(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first = tmp_path / "first.json"
    r = fleetmon("run", _local_inventory(tmp_path), "--interval", "0.5", "--format", "json",
                 "-o", first, "--save-raw", raw)  # fmt: skip
    assert r.returncode in (0, 1, 2, 3), r.stderr
    again = fleetmon("report", raw, "--format", "json")
    assert again.returncode == r.returncode
    a = json.loads(first.read_text())
    b = json.loads(again.stdout)
    assert a["hosts"][0]["metrics"] == b["hosts"][0]["metrics"]
    assert a["started_at"] == b["started_at"]
    # Other rules re-render the same raw data without connecting anywhere.
    none = fleetmon("report", raw, "--no-rules", "--format", "json")
    assert json.loads(none.stdout)["hosts"][0]["findings"] == []
    # Its own run.json and raw/ are not a report's place; beside them is.
    saved = (raw / "run.json").read_bytes()
    for option, out, verb in (
        ("-o", raw / "run.json", "over"),
        ("--json", raw / "raw" / "x", "into"),
    ):
        res = fleetmon("report", raw, option, out)
        assert res.returncode == 4
        assert res.stderr.startswith(f"fleetmon: error: {option} {out} would write {verb} "), (
            res.stderr
        )
    assert (raw / "run.json").read_bytes() == saved
    assert not (raw / "raw" / "x").exists()
    beside = fleetmon("report", raw, "--html", raw / "report.html")
    assert beside.returncode == r.returncode, beside.stderr


def test_make_run_inventory_exists() -> None:
    assert (ROOT / "inventories" / "localhost.yaml").is_file()


@contextlib.contextmanager
def _mute_host(tmp_path: Path, limit_var: str) -> Iterator[tuple[Path, int]]:
    """An inventory of one host `mute` on a loopback port that accepts TCP and never speaks
    SSH, with `limit_var: 1` (its own time limit); the inventory and the port."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        port = silent.getsockname()[1]
        inv = tmp_path / "inv.yaml"
        inv.write_text(
            "all:\n  hosts:\n    mute:\n      ansible_host: 127.0.0.1\n"
            f"      ansible_port: {port}\n      {limit_var}: 1\n",
            encoding="utf-8",
        )
        yield inv, port
    finally:
        silent.close()


def test_host_vars_set_their_own_time_limits(tmp_path: Path) -> None:
    with _mute_host(tmp_path, "fleetmon_connect_timeout") as (inv, _):
        started = time.monotonic()
        r = fleetmon("run", inv, "--interval", "0.2", "--connect-timeout", "60", "--format", "json")
        took = time.monotonic() - started
    assert r.returncode == 3, r.stderr
    (host,) = json.loads(r.stdout)["hosts"]
    assert host["status"] == "timeout"
    assert "1 s" in host["error"]
    assert took < 20


def test_live_modes_apply_a_host_s_ansible_ssh_timeout(tmp_path: Path) -> None:
    """`top` (and `serve`: the same collector) stream with the host's own connect timeout:
    a host that never speaks SSH is shown down after its ansible_ssh_timeout of 1 s."""
    with _mute_host(tmp_path, "ansible_ssh_timeout") as (inv, port):
        started = time.monotonic()
        r = fleetmon("top", inv, "-b", "-n", "1", "-d", "0.5", "--connect-timeout", "60")
        took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("mute "))
    assert f"TIMEOUT  connect timeout: no SSH banner from 127.0.0.1:{port} within 1 s" in row
    assert took < 20


@pytest.mark.parametrize(
    "args",
    [
        # A live view for scripts, read until the reader has what it wants (top -b | head).
        ["top", "inventories/localhost.yaml", "-b", "-n", "100", "-d", "0.2"],
        # A report far larger than a pipe's buffer.
        ["run", "inventories/localhost.yaml", "--interval", "0.1", "--history", "none", "--format",
         "html"],
    ],
)  # fmt: skip
def test_a_reader_that_leaves_early_ends_the_output_quietly(args: list[str]) -> None:
    """`fleetmon ... | head`: no "Broken pipe" error nor traceback; the command's own
    exit code (a run's is its health code)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetmon", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    if args[0] == "top":
        assert proc.stdout.read(10)  # the first frame's first bytes, then the reader leaves
    proc.stdout.close()  # the run's reader leaves before its report is written
    _, err = proc.communicate(timeout=120)
    assert err.decode() == ""
    assert proc.returncode in ((0,) if args[0] == "top" else (0, 1, 2, 3))


def test_a_broken_pipe_that_is_not_standard_output_is_an_internal_error() -> None:
    """Only standard output's reader leaving is quiet: a BrokenPipeError from anything
    else (a child's pipe) is a fault, said as one (exit 70), never a silent 0."""
    code = (
        "import sys\n"
        "from fleetmon.cli import main as m\n"
        "def broken(args): raise BrokenPipeError(32, 'Broken pipe')\n"
        "m.dispatch = broken\n"
        "sys.exit(m.main(['run', 'inventories/localhost.yaml']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, check=False)  # fmt: skip
    assert r.returncode == 70
    assert r.stderr == (
        "fleetmon: internal error: BrokenPipeError: [Errno 32] Broken pipe"
        " (run with --debug for details)\n"
    )


def test_cluster_options_without_cluster_are_warned_of(tmp_path: Path) -> None:
    """--shard-size and --shard-timeout only shape a cluster run: without --cluster the run
    goes on, saying they did nothing (Dask's options silently ignored misled a reader)."""
    inv = _local_inventory(tmp_path)
    r = fleetmon("run", inv, "--shard-size", "5", "--shard-timeout", "30", "--interval", "0.2",
                 "--history", "none", "-q", "--format", "nagios")  # fmt: skip
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert r.stderr.splitlines()[:2] == [
        "fleetmon: warning: --shard-size does nothing without --cluster",
        "fleetmon: warning: --shard-timeout does nothing without --cluster",
    ]
    quiet = fleetmon("run", inv, "--interval", "0.2", "--history", "none", "-q",
                     "--format", "nagios")  # fmt: skip
    assert "--cluster" not in quiet.stderr
