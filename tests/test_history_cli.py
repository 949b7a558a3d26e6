"""`run`/`report DIR` write the history; `fleetmon history status|show|export|prune` read it.

Real child processes, as cron runs them: the local connection probes this machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon

from fleetmon.io.atomic import run_lock

LOCAL = ROOT / "inventories" / "localhost.yaml"


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real local run saved with --save-raw, replayed by the tests."""
    out = tmp_path_factory.mktemp("raw") / "run"
    res = fleetmon("run", LOCAL, "--interval", "0.2", "-q", "--save-raw", out, "--format", "nagios")
    assert res.returncode in (0, 1, 2, 3), res.stderr
    return out


def _with_start(raw_dir: Path, tmp: Path, started_at: str) -> Path:
    """A copy of the raw folder whose run started at `started_at`."""
    copy = tmp / f"raw-{started_at.replace(':', '')}"
    copy.mkdir(mode=0o755)
    (copy / "raw").mkdir(mode=0o755)
    for f in (raw_dir / "raw").iterdir():
        (copy / "raw" / f.name).write_bytes(f.read_bytes())
    doc = json.loads((raw_dir / "run.json").read_text())
    doc["run"]["started_at"] = started_at
    (copy / "run.json").write_text(json.dumps(doc))
    return copy


def _runs(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT started_at FROM runs ORDER BY t")]
    finally:
        conn.close()


def test_run_writes_the_history_it_is_given(tmp_path: Path) -> None:
    hist = tmp_path / "state" / "history.sqlite"
    res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", hist, "--format", "json")
    assert res.returncode in (0, 1, 2, 3), res.stderr
    doc = json.loads(res.stdout)
    assert _runs(hist) == [doc["started_at"]]
    assert doc["notes"] == []
    assert (tmp_path / "state" / ".history.sqlite.lock").exists()


def test_history_none_and_the_default_path(tmp_path: Path) -> None:
    state = tmp_path / "xdg"
    env = {"FLEETMON_HISTORY": "", "XDG_STATE_HOME": str(state)}
    if os.geteuid() == 0:
        env["FLEETMON_HISTORY"] = str(state / "fleetmon" / "history.sqlite")  # not /var/lib
    res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--format", "nagios", env=env)
    assert res.returncode in (0, 1, 2, 3), res.stderr
    assert len(_runs(state / "fleetmon" / "history.sqlite")) == 1
    res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", "none", env=env)
    assert len(_runs(state / "fleetmon" / "history.sqlite")) == 1


def test_report_dir_records_its_run_once(raw_dir: Path, tmp_path: Path) -> None:
    hist = tmp_path / "h.sqlite"
    for _ in range(2):
        res = fleetmon("report", raw_dir, "--history", hist, "--format", "nagios")
        assert res.returncode in (0, 1, 2, 3), res.stderr
    started = json.loads((raw_dir / "run.json").read_text())["run"]["started_at"]
    assert _runs(hist) == [started]


@pytest.fixture(scope="module")
def week(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history of three runs of this machine, an hour apart (the first an hour ago)."""
    from datetime import UTC, datetime, timedelta

    tmp = tmp_path_factory.mktemp("week")
    hist = tmp / "history.sqlite"
    now = datetime.now(UTC).replace(microsecond=0)
    for h in (3, 2, 1):
        start = (now - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        res = fleetmon("report", _with_start(raw_dir, tmp, start), "--history", hist)
        assert res.returncode in (0, 1, 2, 3), res.stderr
    return hist


def test_history_status(week: Path) -> None:
    res = fleetmon("history", "status", "--history", week, "--check")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"history   {week}"
    assert lines[2].startswith("runs      3 kept, ")
    assert "integrity ok" in res.stdout
    assert "retention raw=8d,hourly=90d,daily=2y" in lines
    doc = json.loads(fleetmon("history", "status", "--history", week, "--format", "json").stdout)
    assert doc["runs"] == 3
    assert doc["tiers"]["raw"]["rows"] > 3
    assert doc["tiers"]["hourly"]["rows"] > 0  # the first two hours are over: rolled up
    assert doc["journal_mode"] == "wal"


def test_status_shows_a_time_no_calendar_holds_as_a_number(week: Path, tmp_path: Path) -> None:
    """A damaged file's keys may decode to times before year 1 or after 9999: `history
    status --check`, the command to diagnose it, crashed (internal error, exit 70)."""
    copy = tmp_path / "h.sqlite"
    src, dst = sqlite3.connect(week), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.execute("UPDATE raw_host SET k = -(1 << 62) WHERE k = (SELECT min(k) FROM raw_host)")
    dst.commit()
    dst.close()
    res = fleetmon("history", "status", "--history", copy, "--check")
    assert res.returncode == 0, res.stderr
    (raw,) = [line for line in res.stdout.splitlines() if line.startswith("raw ")]
    assert f"(time {-(1 << 62) >> 24}?)" in raw


def _as_another_user(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """`fleetmon ARGS` with root's power over files dropped (no CAP_DAC_OVERRIDE): as a user
    who may read the history but not write beside it (root's /var/lib/fleetmon read by an
    operator; a read-only filesystem)."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("setpriv as root is needed (util-linux, CI runs as root)")
        pytest.skip("needs setpriv as root")
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*drop, sys.executable, "-m", "fleetmon", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_reader_that_may_not_write_beside_the_file_still_reads_it(
    week: Path, tmp_path: Path
) -> None:
    """WAL's reader makes a -shm file beside the history: where it may not (a folder it
    cannot write), every read command failed ("attempt to write a readonly database").
    With no writer's -wal there, the file is read as immutable; with one, the error says
    why."""
    folder = tmp_path / "ro"
    folder.mkdir()
    copy = folder / "h.sqlite"
    src, dst = sqlite3.connect(week), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    for extra in folder.glob("h.sqlite-*"):  # no -wal, no -shm: the file is all there is
        extra.unlink()
    copy.chmod(0o444)
    folder.chmod(0o555)
    try:
        res = _as_another_user("history", "status", "--history", copy, "--format", "json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["runs"] == 3
        res = _as_another_user("history", "show", "localhost", "--history", copy)
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("localhost (host), raw, 3 point(s)")
        folder.chmod(0o755)
        (folder / "h.sqlite-wal").write_bytes(b"x" * 4096)
        folder.chmod(0o555)
        res = _as_another_user("history", "status", "--history", copy)
        assert (res.returncode, res.stdout) == (4, ""), res.stderr
        assert "its folder is not writable here and a writer's -wal file is beside it" in (
            res.stderr
        )
    finally:
        folder.chmod(0o755)


def test_history_show_csv_and_json(week: Path) -> None:
    res = fleetmon("history", "show", "localhost", "cpu.busy_pct", "mem.used_pct",
                   "--history", week, "--format", "csv")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["time", "cpu.busy_pct", "mem.used_pct"]
    assert len(rows) == 4
    for r in rows[1:]:
        assert 0 <= float(r[1]) <= 100
        assert 0 < float(r[2]) < 100
    doc = json.loads(
        fleetmon("history", "show", "localhost", "--history", week, "--format", "json").stdout
    )
    # A host's default view starts with each run's status.
    assert doc["metrics"] == ["status", "cpu.busy_pct", "cpu.steal_pct", "mem.used_pct", "load.1m"]
    assert doc["tier"] == "raw"
    assert len(doc["series"][0]["points"]) == 3
    assert [p[1] for p in doc["series"][0]["points"]] == ["ok", "ok", "ok"]
    res = fleetmon("history", "show", "localhost", "fs.used_pct", "--history", week)
    headers = [line for line in res.stdout.splitlines() if line.startswith("time (UTC)")]
    if _has_root_filesystem():
        assert res.returncode == 0, res.stderr
        assert headers
        assert "fs.used_pct" in headers[0]  # one column per filesystem, or a subject column
    else:  # a chroot's df may see no filesystem of its own: then nothing was recorded
        assert not headers or "fs.used_pct" in headers[0]


def test_history_show_says_why_a_host_has_no_figures(tmp_path: Path) -> None:
    """A run that could not collect a host is a row saying why (its status), not a blank
    line: like sar's restart marks, what a reader at 3 a.m. needs to tell a gap from a
    quiet host. Named metrics are just those (a script's CSV columns do not move)."""
    from sshd_util import free_port

    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "all:\n  hosts:\n    gone:\n      ansible_host: 127.0.0.1\n"
        f"      ansible_port: {free_port()}\n"
    )
    hist = tmp_path / "h.sqlite"
    for _ in range(2):
        res = fleetmon(
            "run", inv, "-q", "--interval", "0.1", "--history", hist, "--format", "nagios"
        )
        assert res.returncode == 3, res.stdout + res.stderr  # unknown: nothing collected
    res = fleetmon("history", "show", "gone", "--history", hist, "--format", "csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["time", "status", "cpu.busy_pct", "cpu.steal_pct", "mem.used_pct", "load.1m"]
    assert [r[1:] for r in rows[1:]] == [["unreachable", "", "", "", ""]] * 2
    text = fleetmon("history", "show", "gone", "--history", hist).stdout
    assert text.count("unreachable") == 2, text
    named = fleetmon(
        "history", "show", "gone", "cpu.busy_pct", "--history", hist, "--format", "csv"
    )
    assert named.stdout.splitlines()[0] == "time,cpu.busy_pct"


def _has_root_filesystem() -> bool:
    """Whether this machine's `df -P` shows "/" (not in a chroot, whose mounts it cannot see)."""
    out = subprocess.run(["df", "-P"], capture_output=True, text=True, check=False).stdout
    return any(line.split()[-1:] == ["/"] for line in out.splitlines()[1:])


def test_history_show_errors(week: Path) -> None:
    res = fleetmon("history", "show", "nosuchhost", "--history", week)
    assert (res.returncode, res.stderr) == (
        4,
        f"fleetmon: error: history {week}: nothing recorded for nosuchhost\n",
    )
    res = fleetmon("history", "show", "localhost", "cpu.busy_pct", "vm.cpu_pct", "--history", week)
    assert res.stderr == "fleetmon: error: metrics of one scope at a time, got host, vm\n"
    res = fleetmon("history", "show", "localhst", "--history", week)
    assert res.stderr == (
        f"fleetmon: error: history {week}: nothing recorded for localhst"
        " (did you mean 'localhost'?)\n"
    )
    res = fleetmon("history", "show", "localhost", "cpu.busy", "--history", week)
    assert (res.returncode, res.stderr) == (
        4,
        "fleetmon: error: unknown metric 'cpu.busy' (did you mean 'cpu.busy_pct'?)\n",
    )
    res = fleetmon("history", "show", "localhost", "--since", "7days", "--history", week)
    assert res.returncode == 4
    assert "--since: expected a duration such as 30s" in res.stderr


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            "fleet.cpu.busy_pct.p95",
            "fleet.cpu.busy_pct.p95: fleet statistics are not kept in the history (each host's "
            "cpu.busy_pct is: history show HOST cpu.busy_pct)",
        ),
        (
            "fleet.cpu.busy_pc.p99",
            "fleet.cpu.busy_pc.p99: fleet statistics are not kept in the history (each host's "
            "cpu.busy_pct is: history show HOST cpu.busy_pct)",
        ),
        ("fleet.nope", "fleet.nope: fleet statistics are not kept in the history"),
        # A typo is offered a metric the history keeps, not a fleet statistic it would refuse.
        (
            "flet.cpu.busy_pct.p95",
            "unknown metric 'flet.cpu.busy_pct.p95' (did you mean 'cpu.busy_pct'?)",
        ),
    ],
)
def test_history_show_says_fleet_statistics_are_not_kept(
    week: Path, metric: str, message: str
) -> None:
    """It said "nothing recorded for fleet * of HOST", as if the host or its data were
    missing."""
    res = fleetmon("history", "show", "localhost", metric, "--history", week)
    assert (res.returncode, res.stderr) == (4, f"fleetmon: error: {message}\n")
    res = fleetmon("history", "status")  # the suite's FLEETMON_HISTORY=none
    assert res.stderr == "fleetmon: error: --history none: there is no history to read\n"


def test_history_export_csv_and_json(week: Path) -> None:
    res = fleetmon("history", "export", "--history", week, "--scope", "host")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {r["scope"] for r in rows} == {"host"}
    busy = [r for r in rows if r["metric"] == "cpu.busy_pct"]
    assert len(busy) == 3
    # A scope named twice (a script's list of them) is exported once: each row was twice.
    twice = fleetmon("history", "export", "--history", week, "--scope", "host", "--scope", "host")
    assert twice.stdout == res.stdout
    doc = json.loads(fleetmon("history", "export", "--history", week, "--format", "json").stdout)
    assert doc["schema"] == "fleetmon.history-export/1"
    assert len(doc["rows"]) >= len(rows)
    hourly = json.loads(
        fleetmon(
            "history", "export", "--history", week, "--tier", "hourly", "--format", "json"
        ).stdout
    )
    assert set(hourly["rows"][0]) == {
        "time", "scope", "host", "name", "uuid", "metric", "value", "min", "max", "n",
    }  # fmt: skip
    # The CSV carries the numbers as stored, as the JSON does (not the text table's 2
    # decimals or 6 digits).
    csv_rows = list(csv.DictReader(io.StringIO(fleetmon(
        "history", "export", "--history", week, "--tier", "hourly", "--format", "csv"
    ).stdout)))  # fmt: skip
    assert len(csv_rows) == len(hourly["rows"])
    for c, j in zip(csv_rows, hourly["rows"], strict=True):
        for key in ("value", "min", "max"):
            assert (float(c[key]) if c[key] else None) == j[key], (key, c, j)


def test_history_prune(week: Path, tmp_path: Path) -> None:
    copy = tmp_path / "h.sqlite"
    src = sqlite3.connect(week)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    res = fleetmon("history", "prune", "--history", copy, "--history-keep", "raw=1h", "--vacuum")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("pruned ")
    # Raw rows up to 1 h older than the newest run are kept: the runs are 1 h apart.
    assert len(_runs(copy)) == 2
    status = json.loads(fleetmon("history", "status", "--history", copy, "--format", "json").stdout)
    assert status["retention"] == "raw=1h,hourly=90d,daily=2y"  # saved in the file
    assert status["tiers"]["hourly"]["rows"] > 0
    # A spec naming one tier leaves the others as the file has them (raw stays 1h).
    res = fleetmon("history", "prune", "--history", copy, "--history-keep", "daily=3y")
    assert res.returncode == 0, res.stderr
    status = json.loads(fleetmon("history", "status", "--history", copy, "--format", "json").stdout)
    assert status["retention"] == "raw=1h,hourly=90d,daily=3y"
    res = fleetmon("history", "prune", "--history", copy, "--history-keep", " , ")
    assert (res.returncode, res.stderr) == (
        4, "fleetmon: error: --history-keep: expected raw=, hourly= or daily=, got ' , '\n"
    )  # fmt: skip
    # A tier named twice (a cron line appended to): refused, no run deleted; a typo: a hint.
    res = fleetmon("history", "prune", "--history", copy, "--history-keep", "raw=8d,raw=1h")
    assert (res.returncode, res.stderr) == (
        4, "fleetmon: error: --history-keep: raw given twice, in 'raw=8d,raw=1h'\n"
    )  # fmt: skip
    res = fleetmon("history", "prune", "--history", copy, "--history-keep", "rwa=1d")
    assert res.returncode == 4
    assert res.stderr == (
        "fleetmon: error: --history-keep: expected raw=, hourly= or daily=, got 'rwa=1d' "
        "(did you mean 'raw'?)\n"
    )
    assert len(_runs(copy)) == 2
    status = json.loads(fleetmon("history", "status", "--history", copy, "--format", "json").stdout)
    assert status["retention"] == "raw=1h,hourly=90d,daily=3y"


def test_prune_waits_for_a_run_when_told_to(week: Path, tmp_path: Path) -> None:
    """A run holding the history's lock: prune says so (exit 3, as a run does) and offers
    --lock-wait, which it takes (before, it had no such option: "unrecognized arguments")."""
    copy = tmp_path / "h.sqlite"
    src, dst = sqlite3.connect(week), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    lock = tmp_path / ".h.sqlite.lock"
    with run_lock(str(lock), 0.0):
        res = fleetmon("history", "prune", "--history", copy)
        assert res.returncode == 3
        assert "use --lock-wait SECONDS to wait" in res.stderr
        held = time.monotonic()
        res = fleetmon("history", "prune", "--history", copy, "--lock-wait", "0.5")
        assert res.returncode == 3
        assert time.monotonic() - held >= 0.5
    res = fleetmon("history", "prune", "--history", copy, "--lock-wait", "5")
    assert res.returncode == 0, res.stderr


def _shown(history: Path, since: str) -> tuple[str, int]:
    """`history show localhost cpu.busy_pct --since SINCE`: the tier read and its points."""
    # The metric after the options, as one types a second thought: before, argparse gave
    # it no place ("unrecognized arguments: cpu.busy_pct").
    res = fleetmon("history", "show", "localhost", "--history", history,
                   "--since", since, "--format", "json", "cpu.busy_pct")  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    return doc["tier"], len(doc["series"][0]["points"])


def test_a_long_range_reads_raw_while_raw_holds_all_that_is_kept(
    week: Path, tmp_path: Path
) -> None:
    """--since past the raw tier's retention on a history younger than it: every run is
    still raw, the hourly rollups lack the hour not over yet (an hour ago: one point)."""
    assert _shown(week, "30d") == ("raw", 3)
    assert _shown(week, "100y") == ("raw", 3)  # from 1970, not before
    copy = tmp_path / "h.sqlite"
    src, dst = sqlite3.connect(week), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    res = fleetmon("history", "prune", "--history", copy, "--history-keep", "raw=1h")
    assert res.returncode == 0, res.stderr
    # Raw lost the first run, which only the hourly tier still has: that one is read.
    tier, points = _shown(copy, "30d")
    assert tier == "hourly"
    assert points >= 1


def test_a_duration_past_prometheus_longest_is_refused(week: Path) -> None:
    res = fleetmon("history", "show", "localhost", "--history", week, "--since", "99999999y")
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr == (
        "fleetmon: error: --since: '99999999y': longer than 292y, the longest duration\n"
    )


def test_until_before_since_is_refused_and_until_is_shown(week: Path) -> None:
    res = fleetmon("history", "show", "localhost", "--history", week, "--since", "1d",
                   "--until", "2d")  # fmt: skip
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr.startswith("fleetmon: error: --until 2d is not after --since 1d: ")
    # The runs were 3, 2 and 1 hours ago: --since 2h30m --until 30m holds the last two.
    res = fleetmon("history", "show", "localhost", "cpu.busy_pct", "--history", week,
                   "--since", "2h30m", "--until", "30m")  # fmt: skip
    assert res.returncode == 0, res.stderr
    head = res.stdout.splitlines()[0]
    assert ", 2 point(s) since " in head
    assert " until " in head


def _run_times(history: Path) -> list[int]:
    conn = sqlite3.connect(history)
    try:
        return [r[0] for r in conn.execute("SELECT t FROM runs ORDER BY t")]
    finally:
        conn.close()


def test_since_and_until_take_a_date_or_time(week: Path) -> None:
    """--since and --until also take an ISO 8601 date or time (UTC unless an offset is
    given, as the times shown are): "what happened between 02:00 and 04:00 on the 28th"
    had to be turned into durations back from now by hand. The runs were 3, 2 and 1 hours
    ago: a minute after the first holds the last two, in any of its spellings."""
    first, second, _ = _run_times(week)
    after = datetime.fromtimestamp(first + 60, UTC)
    paris = after.astimezone(timezone(timedelta(hours=1)))
    for since in (
        after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        after.strftime("%Y-%m-%d %H:%M"),  # no offset: UTC
        paris.strftime("%Y-%m-%dT%H:%M:%S+01:00"),
    ):
        assert _shown(week, since) == ("raw", 2), since
    # [since, until): until the second run's start holds the first run only.
    until = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    res = fleetmon("history", "export", "--history", week, "--scope", "host",
                   "--since", "100y", "--until", until, "--format", "json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    times = {r["time"] for r in json.loads(res.stdout)["rows"]}
    assert times == {datetime.fromtimestamp(first, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--since", "2026-13-45"), "--since: '2026-13-45': not a date or time a calendar holds"),
        (("--since", "2026-11-26T25:00"), "--since: '2026-11-26T25:00': not a date or time"),
        (("--since", "9999-01-01"), "--since 9999-01-01 is in the future: an empty range"),
        (("--since", "2026-11-26", "--until", "2026-11-25"),
         "--until 2026-11-25 is not after --since 2026-11-26: an empty range"),
        (("--until", "yesterday"),
         "--until: expected a duration such as 30s, 15m, 6h, 7d, 2w or 2y, got 'yesterday' "
         "(or a date: 2026-11-26, 2026-11-26T03:00Z)"),
    ],
)  # fmt: skip
def test_a_date_no_calendar_holds_or_an_empty_range_is_refused(
    week: Path, args: tuple[str, ...], error: str
) -> None:
    before = week.read_bytes()
    res = fleetmon("history", "show", "localhost", "--history", week, *args)
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr.startswith(f"fleetmon: error: {error}")
    assert res.stderr.count("\n") == 1
    assert week.read_bytes() == before


def test_no_output_replaces_the_history(week: Path, tmp_path: Path) -> None:
    """`history export -o` naming the history wrote the CSV over it; run's and report's
    outputs there are refused as well, before anything runs, its WAL's name too."""
    copy = tmp_path / "h.sqlite"
    src, dst = sqlite3.connect(week), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    before = copy.read_bytes()
    for argv in (
        ("history", "export", "--history", copy, "-o", copy),
        ("history", "show", "localhost", "--history", copy, "-o", f"{copy}-wal"),
        ("run", LOCAL, "--interval", "0.1", "-q", "--history", copy, "--json", copy),
    ):
        res = fleetmon(*argv)
        assert (res.returncode, res.stdout) == (4, ""), res.stderr
        assert " would write over " in res.stderr
    assert copy.read_bytes() == before
    assert not Path(f"{copy}-wal").exists()
    assert len(_runs(copy)) == 3


def test_a_symlinked_history_s_wal_is_beside_its_file_and_spared(
    week: Path, tmp_path: Path
) -> None:
    """SQLite keeps a symlinked history's -wal and -shm beside the file the link names:
    `-o FILE-wal` was compared with LINK-wal, and the CSV replaced the WAL a run may have
    been writing; `history status` left the WAL's bytes out of the file's size."""
    data = tmp_path / "data"
    data.mkdir()
    real = data / "h.sqlite"
    src, dst = sqlite3.connect(week), sqlite3.connect(real)
    src.backup(dst)
    src.close()
    dst.close()
    link = tmp_path / "history.sqlite"
    link.symlink_to(real)
    writer = sqlite3.connect(link)  # an open writer's WAL, as a run's between its commits
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO meta (key, value) VALUES ('probe', 'x')")
    writer.commit()
    try:
        wal = Path(f"{real}-wal")
        assert wal.stat().st_size > 0
        assert not Path(f"{link}-wal").exists()
        before = wal.read_bytes()
        for out in (wal, Path(f"{real}-shm")):
            res = fleetmon("history", "export", "--history", link, "-o", out)
            assert (res.returncode, res.stdout) == (4, ""), res.stderr
            assert f"-o {out} would write over {out}, " in res.stderr
        assert wal.read_bytes() == before
        res = fleetmon("history", "status", "--history", link, "--format", "json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["bytes"] == real.stat().st_size + wal.stat().st_size
    finally:
        writer.close()


def test_an_unusable_history_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    hist = tmp_path / "notes.sqlite"
    conn = sqlite3.connect(hist)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = hist.read_bytes()
    res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", hist)
    assert res.returncode == 4
    assert res.stdout == ""
    assert res.stderr == (
        f"fleetmon: error: history {hist}: a SQLite database of another program, not a "
        "fleetmon history; the file was not touched (--history PATH|none)\n"
    )
    assert hist.read_bytes() == before
    # Nothing left beside it either: the lock this run made is gone with it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


def test_a_history_that_is_no_file_is_refused_before_any_lock(tmp_path: Path) -> None:
    """A device or a FIFO as the history: refused before its lock is taken, so that no
    `.null.lock` is left in /dev nor a `.fifo.lock` beside the FIFO."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for hist in ("/dev/null", str(fifo)):
        res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", hist)
        assert res.returncode == 4
        assert res.stderr == (
            f"fleetmon: error: history {hist}: not a regular file; the file was not touched"
            " (--history PATH|none)\n"
        )
    assert not os.path.exists("/dev/.null.lock")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("limit", [8 * 1024, 40 * 1024], ids=["at-open", "at-write"])
def test_a_full_disk_fails_the_history_but_not_the_report(
    raw_dir: Path, tmp_path: Path, limit: int
) -> None:
    """RLIMIT_FSIZE in the child: no file may grow past `limit` bytes (EFBIG, as a full disk
    gives ENOSPC). 8 KiB fails at opening (the WAL index needs 32 KiB), 40 KiB mid-write."""
    hist = tmp_path / "h.sqlite"
    assert fleetmon("report", raw_dir, "--history", hist).returncode in (0, 1, 2, 3)
    soon = datetime.now(UTC) + timedelta(minutes=5)  # another run, within the clock's tolerance
    later = _with_start(raw_dir, tmp_path, soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for f in ("-wal", "-shm"):
        Path(str(hist) + f).unlink(missing_ok=True)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetmon",
            "report",
            str(later),
            "--history",
            str(hist),
            "--format",
            "nagios",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: _limited(limit),
    )
    assert res.returncode == 4
    assert res.stdout.startswith("FLEETMON ")  # the report
    lines = res.stderr.splitlines()
    assert lines[0] == "fleetmon: the reports were written, but not the history:"
    assert lines[1].startswith(f"fleetmon: error: history {hist}: ")
    assert lines[1].endswith("(is the disk full?)")
    conn = sqlite3.connect(hist)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    conn.close()


def test_two_runs_give_the_average_over_the_gap(tmp_path: Path) -> None:
    hist = tmp_path / "h.sqlite"
    first = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", hist, "--format", "json")
    assert json.loads(first.stdout)["hosts"][0]["since_last_run"] is None
    time.sleep(1.1)  # runs are keyed by their second: one in the same second sees no gap
    second = fleetmon(
        "run", LOCAL, "--interval", "0.1", "-q", "--history", hist, "--format", "json"
    )
    (h,) = json.loads(second.stdout)["hosts"]
    gap = h["since_last_run"]
    assert gap["interval_s"] > 0.1  # the whole gap between the runs, not the 0.1 s sample
    shares = [gap["metrics"][f"cpu.{n}_pct"] for n in ("user", "nice", "system", "idle")]
    assert 0 <= gap["metrics"]["cpu.busy_pct"] <= 100
    assert sum(s for s in shares if s is not None) <= 100.5
    assert set(gap["rows"]) <= {"disk", "nic", "vm"}
    time.sleep(1.1)
    text = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", hist).stdout
    assert "Since the last run: this run's sample / the average over the whole gap" in text
