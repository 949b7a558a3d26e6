"""The history file: created, checked, refused untouched, migrated (fleetmon.history.store)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reportfactory import sample_report

from fleetmon.errors import HistoryError
from fleetmon.history import open_history, paths, query, record_run, schema, store
from fleetmon.model import catalog


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_file_is_a_fleetmon_history_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "history.sqlite"
    hist = open_history(str(path), writable=True)
    hist.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x464C4D48
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for tier in schema.TIERS:
        for scope in ("host", "disk", "nic", "fs", "vm"):
            assert f"{tier}_{scope}" in tables
    # One column per catalogue metric, in its scope's raw table: generated, not hand-written.
    raw_vm = [r[1] for r in conn.execute("PRAGMA table_info(raw_vm)")]
    assert raw_vm == ["k", "status", *(m.name for m in catalog.VM)]
    strict = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'raw_host'").fetchone()[0]
    assert strict.endswith("STRICT")


def test_a_reader_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no such file"):
        open_history(str(tmp_path / "missing.sqlite"), writable=False)
    assert not (tmp_path / "missing.sqlite").exists()


def _other_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    open_history(str(path), writable=True).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()


def _corrupt(path: Path) -> None:
    hist = open_history(str(path), writable=True)
    record_run(hist, sample_report())
    hist.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # page 1 after its header: sqlite_master
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("name,value\nx,1\n"), "not a SQLite database"),
        (_other_sqlite, "a SQLite database of another program"),
        (_newer, f"written by a newer fleetmon \\(schema {schema.SCHEMA_VERSION + 1}"),
        (_corrupt, "corrupt"),
    ],
    ids=["csv", "other-app", "newer", "corrupt"],
)
@pytest.mark.parametrize("writable", [True, False], ids=["writer", "reader"])
def test_a_file_fleetmon_cannot_use_is_refused_and_left_as_it_was(
    tmp_path: Path, make: object, message: str, writable: bool
) -> None:
    path = tmp_path / "history.sqlite"
    make(path)  # type: ignore[operator]
    before = _digest(path)
    with pytest.raises(HistoryError, match=message) as err:
        open_history(str(path), writable=writable)
    assert str(path) in str(err.value)
    assert "the file was not touched" in str(err.value)
    assert _digest(path) == before
    assert not Path(str(path) + "-wal").exists() or writable is False


def test_a_metric_added_to_the_catalogue_is_a_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file made before `vm.vcpu_delay_pct` existed gains its columns when opened; the
    rows written before keep null there, the next run fills it."""
    path = str(tmp_path / "history.sqlite")
    full = schema.stored_scopes()
    older = tuple((s, tuple(m for m in ms if m.name != "vm.vcpu_delay_pct")) for s, ms in full)
    monkeypatch.setattr(schema, "stored_scopes", lambda: older)
    report = sample_report()
    hist = open_history(path, writable=True)
    record_run(hist, report)
    hist.close()
    conn = sqlite3.connect(path)
    assert "vm.vcpu_delay_pct" not in [r[1] for r in conn.execute("PRAGMA table_info(raw_vm)")]
    conn.close()

    monkeypatch.setattr(schema, "stored_scopes", lambda: full)
    hist = open_history(path, writable=True)
    assert hist.notes == [f"history {path}: 1 new metric(s) added: vm.vcpu_delay_pct"]
    later = dataclasses.replace(
        report, run=dataclasses.replace(report.run, started_at="2026-11-26T03:05:00Z")
    )
    record_run(hist, later)
    cols = {c.metric for c in hist.columns["vm"]}
    assert "vm.vcpu_delay_pct" in cols
    hourly = [r[1] for r in hist.conn.execute("PRAGMA table_info(hourly_vm)")]
    assert [c for c in hourly if c.startswith("vm.vcpu_delay_pct:")] == [
        "vm.vcpu_delay_pct:min",
        "vm.vcpu_delay_pct:avg",
        "vm.vcpu_delay_pct:max",
        "vm.vcpu_delay_pct:n",
    ]
    vm = next(r for h in report.hosts for r in h.rows_of("vm") if "vm.vcpu_delay_pct" in r.metrics)
    ent = query.entities(hist, "vm", name=vm.name)[0]
    points = query.series(hist, "raw", "vm", [ent.id], ["vm.vcpu_delay_pct"], 0, 2**40)[ent.id]
    assert [v for _, (v,) in points] == [None, vm.metrics["vm.vcpu_delay_pct"]]
    hist.close()
    # Opened again: nothing more to add.
    hist = open_history(path, writable=True)
    assert hist.notes == []
    hist.close()


_OPEN_AT = """
import sys, time
from fleetmon.history import open_history
start = float(sys.argv[2])
while time.time() < start:
    pass
open_history(sys.argv[1], writable=True).close()
"""


def test_two_writers_making_a_new_file_at_once_both_open_it(tmp_path: Path) -> None:
    """Two processes (--no-lock) open a new file at the same moment: the second sees the
    schema the first made under the write lock and goes on (was: table meta already
    exists)."""
    for n in range(3):
        path = str(tmp_path / f"h{n}.sqlite")
        start = str(time.time() + 0.5)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT, path, start],
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        hist = open_history(path, writable=False)
        assert hist.columns["host"]
        hist.close()


def test_migrations_are_numbered_steps_up_to_the_schema_version() -> None:
    assert sorted(store.MIGRATIONS) == list(range(1, schema.SCHEMA_VERSION + 1))


def test_network_filesystem_uses_the_rollback_journal_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "filesystem_of", lambda path: "nfs4")
    path = str(tmp_path / "history.sqlite")
    hist = open_history(path, writable=True)
    assert hist.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert hist.notes == [
        f"history {path} is on nfs4: rollback journal instead of WAL (WAL does not work "
        "over a network filesystem), so readers may briefly block the writer"
    ]
    hist.close()


DATA = Path(__file__).parent / "data" / "history"


def test_mountinfo_capture_gives_each_folder_its_filesystem() -> None:
    mounts = paths.parse_mountinfo((DATA / "docker-fedora-mountinfo.txt").read_text())
    assert len(mounts) == 38
    assert mounts[0] == paths.Mount("/proc", "proc")
    assert paths.fstype_at("/DATA/foo_bla_bla/history.sqlite", mounts) == "cifs"
    assert paths.fstype_at("/run/user/1000/gvfs/x", mounts) == "fuse.gvfsd-fuse"
    assert paths.fstype_at("/var/lib/fleetmon", mounts) == "ext4"
    assert paths.fstype_at("/tmp/mnt/a", mounts) == "ext4"
    assert paths.fstype_at("/tmp/x", mounts) == "tmpfs"
    assert paths.fstype_at("/DATA/foo_bla_blax", mounts) == "ext4"  # not a prefix match
    verdicts = {fs: paths.is_network_fs(fs) for fs in ("cifs", "fuse.gvfsd-fuse", "ext4")}
    assert verdicts == {"cifs": True, "fuse.gvfsd-fuse": True, "ext4": False}


def test_mountinfo_escapes_are_decoded() -> None:
    line = r"31 21 0:23 / /mnt/my\040share rw,relatime - nfs4 srv:/x rw"
    assert paths.parse_mountinfo(line) == [paths.Mount("/mnt/my share", "nfs4")]


def test_this_machine_s_history_folder_has_a_filesystem(tmp_path: Path) -> None:
    assert paths.filesystem_of(str(tmp_path / "h.sqlite")) not in (None, "")


def test_statfs_names_the_filesystem_when_no_mount_covers_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chroot's mountinfo lists only the mounts inside it: statfs(2) still answers.
    monkeypatch.setattr(paths, "parse_mountinfo", lambda text: [])
    assert paths.filesystem_of(str(tmp_path / "h.sqlite")) == paths.statfs_type(str(tmp_path))
    assert paths.statfs_type("/dev/shm") == "tmpfs"
    assert paths.statfs_type(str(tmp_path / "missing" / "dir")) is None


@pytest.mark.parametrize(
    ("env", "euid", "expected"),
    [
        ({}, 1000, "/home/u/.local/state/fleetmon/history.sqlite"),
        ({"XDG_STATE_HOME": "/srv/state"}, 1000, "/srv/state/fleetmon/history.sqlite"),
        (
            {"XDG_STATE_HOME": "relative/state"},
            1000,
            "/home/u/.local/state/fleetmon/history.sqlite",
        ),
        ({"XDG_STATE_HOME": "/srv/state"}, 0, "/var/lib/fleetmon/history.sqlite"),
        ({}, 0, "/var/lib/fleetmon/history.sqlite"),
        ({"FLEETMON_HISTORY": "/x/h.sqlite"}, 0, "/x/h.sqlite"),
        ({"FLEETMON_HISTORY": "none"}, 1000, "none"),
    ],
)
def test_default_path(env: dict[str, str], euid: int, expected: str) -> None:
    assert paths.default_path(env, euid, "/home/u") == expected


def test_the_suite_never_writes_the_real_default() -> None:
    assert paths.resolve(None) is None  # conftest: FLEETMON_HISTORY=none
    assert paths.resolve("/tmp/x.sqlite") == "/tmp/x.sqlite"
    assert paths.resolve("none") is None
