"""What an operator's machine does to a history file, for real: a full disk (a small tmpfs),
a read-only filesystem (a read-only bind mount), a symlink, `-` as its path. The run still
reports, and the file keeps every run recorded before.

Real child processes, as cron runs them: the local connection probes this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon
from reportfactory import sample_report
from rootonly import require_root

from fleetmon import __version__
from fleetmon.history import open_history, record_run, schema
from fleetmon.io.atomic import run_lock

LOCAL = ROOT / "inventories" / "localhost.yaml"


@contextlib.contextmanager
def _small_disk(where: Path, size: str = "size=256k") -> Iterator[Path]:
    """A small tmpfs (`size`: its mount options) at `where`, unmounted whatever happens."""
    require_root("mounts a small tmpfs to fill it")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _fill(path: Path) -> None:
    """Write zeros into `path` until the filesystem has no byte left (ENOSPC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0")
    finally:
        os.close(fd)


def _one_run(path: Path) -> Path:
    """A history at `path` holding one run (the sample report), closed: no -wal beside it."""
    hist = open_history(str(path), writable=True)
    record_run(hist, sample_report())
    hist.close()
    return path


def _runs(path: Path) -> tuple[str, int]:
    conn = sqlite3.connect(path)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return str(ok), int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("spare", [0, 48 * 1024], ids=["at-open", "at-write"])
def test_a_full_disk_still_reports_and_keeps_the_runs_recorded_before(
    tmp_path: Path, spare: int
) -> None:
    """No byte free on the history's filesystem (0: its -shm cannot be made), or 48 KiB
    (the -shm's 32 KiB, not the run's WAL frames). With none, the run's pid could not be
    written into the history's lock file, and the run stopped with an internal error (exit
    70) before it collected. Now it reports, says the history was not written (exit 4, as
    for any run not recorded), and the file still holds its earlier run, whole."""
    made = _one_run(tmp_path / "made.sqlite")  # checkpointed: the file alone, no -wal
    with _small_disk(tmp_path / "disk") as disk:
        path = disk / "history.sqlite"
        path.write_bytes(made.read_bytes())
        (disk / "spare").write_bytes(b"\0" * spare)
        _fill(disk / "filler")
        (disk / "spare").unlink()
        res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", path,
                       "--format", "nagios")  # fmt: skip
        assert res.returncode == 4, res.stderr
        assert res.stdout.startswith("FLEETMON ")  # the report
        lines = res.stderr.splitlines()
        assert lines[0] == "fleetmon: the reports were written, but not the history:"
        assert lines[1].startswith(f"fleetmon: error: history {path}: "), lines
        assert lines[1].endswith("(is the disk full?)")
        assert len(lines) == 2
        (disk / "filler").unlink()
        assert _runs(path) == ("ok", 1)


@pytest.mark.parametrize(
    "argv",
    [
        ("run", LOCAL, "--interval", "0.1", "-q", "--format", "nagios"),
        ("history", "status"),
    ],
    ids=["run", "history-status"],
)
def test_dash_as_the_history_is_refused_and_makes_no_file(
    tmp_path: Path, argv: tuple[str | Path, ...]
) -> None:
    """`--history -` made a SQLite file named `-` (and `--wal`, `--shm`, `.-.lock`) in the
    current folder; a reader read that one. Refused, as a run's bad history is: exit 4
    before anything is collected, one line."""
    res = subprocess.run(
        [sys.executable, "-m", "fleetmon", *map(str, argv), "--history", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr == (
        "fleetmon: error: history -: a history is a file, not standard input or output; "
        "nothing was written (--history PATH|none; ./- for a file named -)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_no_inode_left_for_the_lock_still_reports(tmp_path: Path) -> None:
    """A first run where no file can be made (no inode left; a full ext4 folder's block):
    "cannot open lock file ...: No space left on device", exit 4 before collecting, no
    report. Now the report, then that line (exit 4), the file as it was."""
    made = _one_run(tmp_path / "made.sqlite")
    with _small_disk(tmp_path / "disk", "size=1m,nr_inodes=2") as disk:  # the root, the file
        path = disk / "history.sqlite"
        path.write_bytes(made.read_bytes())
        res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", path,
                       "--format", "nagios")  # fmt: skip
        assert res.returncode == 4, res.stderr
        assert res.stdout.startswith("FLEETMON ")
        assert res.stderr.splitlines()[1:] == [
            f"fleetmon: error: history {path}: cannot create lock file {disk}/.history.sqlite"
            ".lock: No space left on device (is the disk full?)"
        ]
        assert path.read_bytes() == made.read_bytes()


def test_a_full_disk_s_history_can_still_be_read(tmp_path: Path) -> None:
    """No room for WAL's -shm beside the file: `history status` failed ("disk I/O error")
    when the operator looked why runs went unrecorded. With no writer's -wal there the file
    is all there is and is read as immutable; with one, the error says why not."""
    made = _one_run(tmp_path / "made.sqlite")
    with _small_disk(tmp_path / "disk") as disk:
        path = disk / "history.sqlite"
        path.write_bytes(made.read_bytes())
        _fill(disk / "filler")
        res = fleetmon("history", "status", "--history", path, "--format", "json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["runs"] == 1
        (disk / "filler").unlink()
        Path(f"{path}-wal").write_bytes(b"\0" * 4096)  # a writer's, not checkpointed
        _fill(disk / "filler")
        res = fleetmon("history", "status", "--history", path)
        assert (res.returncode, res.stdout) == (4, "")
        assert res.stderr == (
            f"fleetmon: error: history {path}: cannot open it: no room beside it for its -shm "
            "file and a writer's -wal file is beside it (is the disk full?)\n"
        )
        assert path.read_bytes() == made.read_bytes()


def test_prune_on_a_full_disk_says_so(tmp_path: Path) -> None:
    """`history prune` where the history could not be opened for want of room: an internal
    error (AssertionError, exit 70); now the one line a run gives, exit 4, file as it was."""
    made = _one_run(tmp_path / "made.sqlite")
    with _small_disk(tmp_path / "disk") as disk:
        path = disk / "history.sqlite"
        path.write_bytes(made.read_bytes())
        _fill(disk / "filler")
        res = fleetmon("history", "prune", "--history", path)
        assert (res.returncode, res.stdout) == (4, ""), res.stderr
        assert res.stderr.startswith(f"fleetmon: error: history {path}: ")
        assert res.stderr.endswith("(is the disk full?)\n")
        assert len(res.stderr.splitlines()) == 1
        assert path.read_bytes() == made.read_bytes()


@contextlib.contextmanager
def _read_only_view(folder: Path, where: Path) -> Iterator[Path]:
    """`folder` bind-mounted read-only at `where` (a filesystem remounted read-only after
    errors), unmounted whatever happens."""
    require_root("bind-mounts a folder read-only")
    where.mkdir()
    subprocess.run(["mount", "--bind", str(folder), str(where)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_read_only_history_folder_still_reports(tmp_path: Path) -> None:
    """The history's filesystem read-only: the run stopped before collecting ("cannot open
    lock file ...: Read-only file system", exit 4), so no report and no export went out.
    Now it reports, then says why the history was not written (exit 4); `history status`
    reads the file; nothing is made beside it. A new history's folder that cannot be made
    there: the same (was "cannot create", exit 4 before collecting)."""
    folder = tmp_path / "state"
    folder.mkdir()
    _one_run(folder / "history.sqlite")
    before = (folder / "history.sqlite").read_bytes()
    with _read_only_view(folder, tmp_path / "ro") as view:
        path = view / "history.sqlite"
        res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", path,
                       "--format", "nagios")  # fmt: skip
        assert res.returncode == 4, res.stderr
        assert res.stdout.startswith("FLEETMON ")
        assert res.stderr == (
            "fleetmon: the reports were written, but not the history:\n"
            f"fleetmon: error: history {path}: {view} is on a read-only filesystem\n"
        )
        status = fleetmon("history", "status", "--history", path, "--format", "json")
        assert json.loads(status.stdout)["runs"] == 1, status.stderr
        new = view / "state" / "history.sqlite"  # a folder it cannot make there
        res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", new,
                       "--format", "nagios")  # fmt: skip
        assert res.returncode == 4, res.stderr
        assert res.stdout.startswith("FLEETMON ")
        assert res.stderr.splitlines()[1:] == [
            f"fleetmon: error: history {new}: cannot create {new.parent}: Read-only file system"
        ]
    assert (folder / "history.sqlite").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["history.sqlite"]


def test_a_history_reached_by_a_symlink_is_locked_and_written_beside_its_file(
    tmp_path: Path,
) -> None:
    """`--history LINK`: SQLite writes the -wal beside the file the link names, and the
    lock went beside the link, so a run by the link and one by the file held two locks.
    Both are beside the file now; a link in a read-only folder (/etc) to a history in a
    writable one records."""
    data = tmp_path / "data"
    data.mkdir()
    _one_run(data / "history.sqlite")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "history.sqlite").symlink_to(data / "history.sqlite")
    with _read_only_view(etc, tmp_path / "ro") as view:
        link = view / "history.sqlite"
        with run_lock(str(data / ".history.sqlite.lock")):
            held = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", link)
        assert held.returncode == 3  # LockError
        assert held.stderr.startswith(
            f"fleetmon: another fleetmon run holds the lock {data}/.history.sqlite.lock"
        )
        res = fleetmon("run", LOCAL, "--interval", "0.1", "-q", "--history", link,
                       "--format", "nagios")  # fmt: skip
        assert res.returncode in (0, 1, 2, 3), res.stderr
    assert _runs(data / "history.sqlite") == ("ok", 2)
    assert sorted(p.name for p in etc.iterdir()) == ["history.sqlite"]


def test_report_prune_and_simulate_refuse_a_newer_fleetmon_s_history(
    tmp_path: Path,
) -> None:
    """The store refuses it (test_history_store), `run` a file not its own before it
    collects (test_history_cli); `report DIR`, `history prune` and `simulate
    --fill-history` do as well, before they write anything: exit 4, one line, the bytes
    unchanged."""
    path = tmp_path / "history.sqlite"
    open_history(str(path), writable=True).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    raw = ROOT / "tests" / "data" / "golden-report" / "raw"
    for argv in (
        ("report", raw, "--history", path),
        ("history", "prune", "--history", path),
        ("simulate", "--hosts", "2", "--days", "0.01", "--fill-history", path),
    ):
        res = fleetmon(*argv)
        assert (res.returncode, res.stdout) == (4, ""), (argv, res.stderr)
        assert res.stderr == (
            f"fleetmon: error: history {path}: written by a newer fleetmon (schema "
            f"{schema.SCHEMA_VERSION + 1}; this fleetmon {__version__} knows up to "
            f"{schema.SCHEMA_VERSION}); the file was not touched (--history PATH|none)\n"
        ), argv
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not Path(f"{path}-wal").exists()
