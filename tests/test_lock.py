"""The run lock: one run at a time, and a lock path nobody can turn into a weapon."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import fleetmon
from rootonly import require_root

from fleetmon.errors import LockError, OptionError
from fleetmon.io.atomic import default_lock_path
from fleetmon.io.lock import run_lock


def _holder(lock: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from fleetmon.io.lock import run_lock\n"
            f"with run_lock({lock!r}):\n print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def _stop(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()


def test_second_holder_is_refused_with_the_pid(tmp_path: Path) -> None:
    lock = str(tmp_path / "run.lock")
    holder = _holder(lock)
    try:
        with pytest.raises(LockError) as err, run_lock(lock):
            pass
        assert str(err.value) == (
            f"another fleetmon run holds the lock {lock} (pid {holder.pid}); "
            "not running (use --lock-wait SECONDS to wait)"
        )
    finally:
        _stop(holder)
    with run_lock(lock):
        assert Path(lock).read_text() == str(os.getpid())


def test_after_waiting_the_message_says_so_not_use_lock_wait(tmp_path: Path) -> None:
    lock = str(tmp_path / "run.lock")
    holder = _holder(lock)
    try:
        started = time.monotonic()
        with pytest.raises(LockError) as err, run_lock(lock, wait_s=0.5):
            pass
        assert time.monotonic() - started >= 0.5
    finally:
        _stop(holder)
    assert str(err.value) == (
        f"another fleetmon run holds the lock {lock} (pid {holder.pid}); "
        "still held after waiting 0.5 s, not running"
    )


def test_a_symlink_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    lock = tmp_path / ".fleet.json.lock"
    lock.symlink_to(victim)
    with pytest.raises(OptionError) as err, run_lock(str(lock)):
        pass
    assert str(err.value) == (
        f"lock file {lock} is a symlink (not followed): remove it or choose another --lock FILE"
    )
    assert victim.read_text() == "root:x:0:0\n"
    dangling = tmp_path / "dangling.lock"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    with (
        pytest.raises(OptionError, match=r"is a symlink \(not followed\)"),
        run_lock(str(dangling)),
    ):
        pass
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_hard_link_at_the_lock_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "shadow"
    victim.write_text("secret\n")
    lock = tmp_path / "run.lock"
    os.link(victim, lock)
    refused = r"has 2 names \(a hard link\); not used"
    with pytest.raises(OptionError, match=refused), run_lock(str(lock)):
        pass
    assert victim.read_text() == "secret\n"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_at_the_lock_path_is_an_input_error_not_a_hang(
    tmp_path: Path, kind: str
) -> None:
    if kind == "fifo":
        lock = str(tmp_path / "run.lock")
        os.mkfifo(lock)
        what = "a FIFO"
    else:
        lock, what = "/dev/null", "a character device"
    inv = tmp_path / "local.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    started = time.monotonic()
    r = fleetmon("run", inv, "--interval", "0.2", "--lock", lock, "--format", "json", timeout=60)
    assert time.monotonic() - started < 30
    assert r.returncode == 4, r.stderr
    assert r.stderr == (
        f"fleetmon: error: lock file {lock} is {what}, not a regular file: "
        "remove it or choose another --lock FILE\n"
    )
    assert r.stdout == ""  # refused before any host was collected


def test_a_file_that_is_no_lock_file_is_locked_but_never_truncated(tmp_path: Path) -> None:
    """`--lock inventory.yaml` truncated the inventory to write a pid into it."""
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts:\n    h1:\n")
    with run_lock(str(inv)):
        assert inv.read_text() == "all:\n  hosts:\n    h1:\n"
    stale = tmp_path / "stale.lock"
    stale.write_text("12345")  # a pid left by an earlier run: replaced by ours
    with run_lock(str(stale)):
        assert stale.read_text() == str(os.getpid())


def test_a_lock_file_of_another_user_is_used_but_not_written(tmp_path: Path) -> None:
    require_root("a lock file of another user")
    lock = tmp_path / "shared.lock"
    lock.write_text("theirs\n")
    os.chown(lock, 65534, 65534)
    with run_lock(str(lock)):
        assert lock.read_text() == "theirs\n"


def test_the_default_lock_sits_beside_a_regular_output_only(tmp_path: Path) -> None:
    assert default_lock_path("/var/lib/fleetmon/fleet.json") == "/var/lib/fleetmon/.fleet.json.lock"
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    for stream_or_device in ("-", "/dev/stdout", "/dev/null", str(fifo)):
        assert default_lock_path(stream_or_device) is None
    html = tmp_path / "fleet.html"
    # -o /dev/null --html FILE (cron): the lock goes beside the HTML, never into /dev.
    assert default_lock_path("/dev/null", None, str(html)) == str(tmp_path / ".fleet.html.lock")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "real.html").write_text("")
    (tmp_path / "link.html").symlink_to("www/real.html")
    assert default_lock_path(str(tmp_path / "link.html")) == str(
        tmp_path / "www" / ".real.html.lock"
    )  # beside the file the link names: every link to it shares one lock
    assert default_lock_path() is None


def test_run_to_dev_null_leaves_dev_null_a_device_and_no_lock_in_dev(tmp_path: Path) -> None:
    inv = tmp_path / "local.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    html = tmp_path / "fleet.html"
    r = fleetmon("run", inv, "--interval", "0.2", "-o", "/dev/null", "--html", html, "--json", "-")
    assert r.returncode in (0, 1, 2, 3), r.stderr
    assert '"schema": "fleetmon.report/1"' in r.stdout  # --json - is standard output
    assert not os.path.islink("/dev/null")
    assert os.stat("/dev/null").st_rdev == os.makedev(1, 3)
    assert not os.path.exists("/dev/.null.lock")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".fleet.html.lock",
        "fleet.html",
        "local.yaml",
    ]


def test_the_lock_goes_beside_a_prom_textfile_and_stays_after_the_run(tmp_path: Path) -> None:
    """README: --prom-textfile is among the outputs the lock goes beside (as .NAME.lock, a
    name node_exporter's *.prom glob skips), and the lock file stays: an flock on a file
    that is unlinked would let a waiting run and a new one both hold it."""
    import argparse

    from fleetmon.cli.common import output_paths

    prom = tmp_path / "fleetmon.prom"
    args = argparse.Namespace(output=None, prom_textfile=str(prom))
    lock = default_lock_path(*output_paths(args))
    assert lock == str(tmp_path / ".fleetmon.prom.lock")
    with run_lock(lock):
        pass
    assert Path(lock).read_text() == str(os.getpid())
    assert not Path(lock).name.endswith(".prom")
