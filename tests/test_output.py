"""Atomic report files and the run lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetmon.errors import LockError, OptionError
from fleetmon.io.atomic import default_lock_path, run_lock, write_atomic


def test_write_atomic_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_write_atomic_failure_keeps_previous_report(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous\n")

    with pytest.raises(TypeError):
        write_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_write_atomic_into_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "r.txt", "x")


def test_default_lock_path_sits_beside_the_output() -> None:
    assert default_lock_path("/var/lib/fleetmon/fleet.json") == "/var/lib/fleetmon/.fleet.json.lock"


def test_second_holder_is_refused_with_the_pid(tmp_path: Path) -> None:
    lock = str(tmp_path / "run.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from fleetmon.io.atomic import run_lock\n"
            f"with run_lock({lock!r}):\n print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        refused = rf"holds the lock .*run\.lock \(pid {holder.pid}\)"
        with pytest.raises(LockError, match=refused), run_lock(lock, wait_s=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    with run_lock(lock):
        assert Path(lock).read_text() == str(os.getpid())
