"""Outputs never damage what they point at: each kind of target a report can be sent to.

Run as root (as CI does): root is the user for whom /dev/null, /dev/stdout or a system file
could really be replaced, so these tests mean most there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rootonly import require_root

from fleetmon.errors import OutputError
from fleetmon.io import files
from fleetmon.io.atomic import check_output, resolve_output, write_output, write_text


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_dev_null_stays_a_character_device() -> None:
    before = os.lstat("/dev/null")
    dev_names = set(os.listdir("/dev"))
    write_text("/dev/null", "a report\n")
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert {n for n in set(os.listdir("/dev")) - dev_names if "null" in n} == set()


def test_dev_stdout_is_written_through_the_descriptor_and_stays_a_symlink(
    tmp_path: Path,
) -> None:
    # stdout appended to a file: a rename would replace the file, a reopen would truncate it.
    log = tmp_path / "cron.log"
    log.write_text("earlier line\n")
    code = "from fleetmon.io.atomic import write_text; write_text('/dev/stdout', 'report\\n')"
    with open(log, "a") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, check=True)
    assert log.read_text() == "earlier line\nreport\n"
    assert os.path.islink("/dev/stdout")
    assert _names(tmp_path) == ["cron.log"]
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert piped.stdout == "report\n"


def test_dash_is_standard_output_not_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_output("-", iter(["one ", "two\n"]))
    assert capsys.readouterr().out == "one two\n"
    assert _names(tmp_path) == []


def test_a_fifo_gets_the_bytes_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, iter(["first\n", "second é\n"]))
    reader.join(10)
    assert got == ["first\nsecond é\n".encode()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _names(tmp_path) == ["report.fifo"]


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old\n")
    target.chmod(0o640)
    reader = target.open()  # a reader of the old report keeps reading the old report
    old_inode = target.stat().st_ino
    write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert reader.read() == "old\n"
    reader.close()
    assert target.stat().st_ino != old_inode  # renamed into place, not rewritten
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _names(tmp_path) == ["report.json"]


def test_a_new_report_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "new.html", "<p>\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.html").stat().st_mode) == 0o640


def test_root_replacing_another_users_report_keeps_its_owner(tmp_path: Path) -> None:
    require_root("files of other users, device nodes")
    target = tmp_path / "fleet.html"
    target.write_text("old\n")
    os.chown(target, 65534, 65534)
    write_text(target, "new\n")
    st = target.stat()
    assert (st.st_uid, st.st_gid, target.read_text()) == (65534, 65534, "new\n")


def test_a_symlink_is_followed_and_its_file_replaced_in_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "etc").mkdir()
    real = tmp_path / "www" / "fleet.html"
    real.write_text("old\n")
    link = tmp_path / "etc" / "current.html"
    link.symlink_to("../www/fleet.html")
    write_text(link, "new\n")
    assert link.is_symlink()
    assert os.readlink(link) == "../www/fleet.html"
    assert real.read_text() == "new\n"
    assert _names(tmp_path / "www") == ["fleet.html"]
    assert _names(tmp_path / "etc") == ["current.html"]


def test_another_users_symlink_in_a_sticky_shared_folder_is_not_followed(tmp_path: Path) -> None:
    require_root("files of other users, device nodes")
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "shadow"
    victim.write_text("precious\n")
    planted = shared / "report.html"
    planted.symlink_to(victim)
    os.lchown(planted, 65534, 65534)
    with pytest.raises(OutputError, match=r"symlink of uid 65534 in a shared sticky folder"):
        write_text(planted, "report\n")
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("block", "it is a block device (a report would overwrite the disk)"),
        ("folder", "it is a folder"),
        ("socket", "it is a socket"),
    ],
)
def test_what_a_report_cannot_be_written_over_is_refused(
    tmp_path: Path, make: str, message: str
) -> None:
    path = tmp_path / make
    if make == "block":
        require_root("files of other users, device nodes")
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(0, 0))  # major 0: no driver behind it
    elif make == "folder":
        path.mkdir()
    else:
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    before = os.lstat(path)
    for call in (lambda: check_output(str(path)), lambda: write_text(path, "x\n")):
        with pytest.raises(OutputError) as err:
            call()
        assert str(err.value) == f"cannot write {path}: {message}"
    assert os.lstat(path).st_mode == before.st_mode
    assert _names(tmp_path) == [make]


def test_the_temporary_file_is_never_opened_through_a_planted_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    planted = tmp_path / ".report.json.aaaa.tmp"
    planted.symlink_to(victim)
    tokens = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda _n: next(tokens))
    write_text(tmp_path / "report.json", "report\n")
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink()
    assert (tmp_path / "report.json").read_text() == "report\n"
    assert _names(tmp_path) == [".report.json.aaaa.tmp", "report.json", "victim"]


def test_a_failed_write_keeps_the_previous_report_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous\n")
    # A real write failure from the kernel: the file size limit (EFBIG) in a child process.
    code = (
        "import resource, signal, sys\n"
        "from fleetmon.io.atomic import write_text\n"
        "from fleetmon.errors import OutputError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    write_text({str(target)!r}, 'x' * 100000)\n"
        "except OutputError as exc:\n"
        "    print(exc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == f"cannot write {target}: File too large\n"
    assert target.read_text() == "previous\n"
    assert _names(tmp_path) == ["report.json"]


def test_a_full_device_is_a_one_line_error() -> None:
    with pytest.raises(OutputError) as err:
        write_text("/dev/full", "report\n")
    assert str(err.value) == "cannot write /dev/full: No space left on device"


def test_a_missing_folder_is_refused_before_and_at_write(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "r.txt"
    with pytest.raises(OutputError, match=r"its folder .*nope does not exist"):
        check_output(str(path))
    with pytest.raises(OutputError, match=r"its folder .*nope does not exist"):
        write_text(path, "x")


@pytest.mark.parametrize(
    ("path", "kind", "fd"),
    [("-", "stream", 1), ("/dev/stdout", "stream", 1), ("/dev/stderr", "stream", 2),
     ("/dev/fd/1", "stream", 1), ("/proc/self/fd/2", "stream", 2),
     ("/dev/null", "device", -1), ("/dev/full", "device", -1)],
)  # fmt: skip
def test_streams_and_devices_are_recognised(path: str, kind: str, fd: int) -> None:
    t = resolve_output(path)
    assert (t.kind, t.fd) == (kind, fd)


def _closed(shell: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`fleetmon ...` from a shell line that closes some of its standard descriptors."""
    inv = Path(__file__).resolve().parent.parent / "inventories" / "localhost.yaml"
    fm = f"{sys.executable} -m fleetmon"
    return subprocess.run(
        ["sh", "-c", shell.format(fm=fm, inv=inv)], cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_a_report_to_a_standard_output_closed_at_start_is_refused(tmp_path: Path) -> None:
    """`>&-`: before, sys.stdout was None (an internal error after the whole run), and the
    first file opened took descriptor 1."""
    res = _closed("{fm} run {inv} --history h.sqlite --interval 0.2 --format json >&-", tmp_path)
    assert res.returncode == 4
    assert res.stderr == (
        "fleetmon: error: cannot write standard output: it was closed when fleetmon started"
        " (`>&-`)\n"
    )
    assert list(tmp_path.iterdir()) == []  # refused before anything was opened


@pytest.mark.parametrize(
    "command", ["--help", "--version", "inventory {inv} --list", "top {inv} -b -n 1 -d 0.2"]
)
def test_every_write_to_a_standard_output_closed_at_start_is_an_error(
    tmp_path: Path, command: str
) -> None:
    """As coreutils' `ls >&-` ("write error: Bad file descriptor"): one line and exit 4,
    never a traceback (sys.stdout was None: AttributeError) nor a silent success."""
    res = _closed(f"{{fm}} {command} >&-", tmp_path)
    assert (res.returncode, res.stderr) == (
        4,
        "fleetmon: error: cannot write standard output: it was closed when fleetmon started\n",
    )


def test_closed_standard_descriptors_never_lend_their_number_to_a_file(tmp_path: Path) -> None:
    """With 1 and 2 closed, the history and the report are opened on numbers of their own:
    what goes to standard output or error (a local probe's) never lands in them."""
    res = _closed(
        "{fm} run {inv} --history h.sqlite --interval 0.2 -o r.json --format json"
        " >&- 2>&-; echo $?",
        tmp_path,
    )
    assert res.stdout.strip() in {"0", "1", "2", "3"}
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["hosts"][0]["status"] == "ok"
    conn = sqlite3.connect(tmp_path / "h.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    conn.close()


def test_a_descriptor_that_is_not_open_is_refused() -> None:
    with pytest.raises(OutputError, match=r"^cannot write /dev/fd/987: descriptor 987: Bad file"):
        check_output("/dev/fd/987")


def test_every_command_refuses_its_outputs_before_touching_a_history(tmp_path: Path) -> None:
    """`report` and `history` checked -o only when writing it: `report DIR -o /missing/x
    --history h.sqlite` recorded the run in the history and then failed."""
    saved = tmp_path / "saved"
    res = _closed(f"{{fm}} run {{inv}} --history none --interval 0.2 --save-raw {saved} -o r.txt",
                  tmp_path)  # fmt: skip
    assert res.returncode in (0, 1, 2, 3), res.stderr
    hist = tmp_path / "h.sqlite"
    for line, said in (
        (f"{{fm}} report {saved} --history {hist} -o /missing/x", "/missing/x: its folder"),
        (f"{{fm}} history export --history {hist} -o /missing/x", "/missing/x: its folder"),
        (f"{{fm}} history status --history {hist} >&-", "standard output: it was closed"),
    ):
        res = _closed(line, tmp_path)
        assert res.returncode == 4
        assert res.stderr.startswith(f"fleetmon: error: cannot write {said}")
        assert not hist.exists()
