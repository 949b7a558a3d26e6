"""--save-raw and `fleetmon report DIR` against a hostile file system: planted links, shared
folders, FIFOs and devices in place of files, oversized and deeply nested input."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon
from probetext import NONCE, probe_stdout
from rootonly import require_root

from fleetmon.errors import InputError, OptionError
from fleetmon.inventory.values import Vaulted
from fleetmon.io import files
from fleetmon.io.rawstore import MAX_DEPTH, RawWriter, iter_raw, load_raw, save_raw, stored_vars
from fleetmon.model import HostSpec, RawResult, RunInfo, Status

RUN = RunInfo("0.0.test", "2026-11-26T05:00:00Z", 1.0, "inv.yaml")


def _raw(name: str = "h0", stdout: str = "out\n", **vars_: object) -> RawResult:
    spec = HostSpec(name=name, address="192.0.2.1", groups=("kvm",), vars=vars_)
    return RawResult(spec, Status.OK, None, stdout, 0, "", 0.5, NONCE)


# --- --save-raw DIR ----------------------------------------------------------------------


def test_new_raw_folders_honour_the_umask_and_are_never_group_writable(tmp_path: Path) -> None:
    for umask, expected in ((0o077, 0o700), (0o002, 0o755)):
        folder = tmp_path / f"raw-{umask:o}"
        old = os.umask(umask)
        try:
            save_raw(str(folder), RUN, [_raw()])
        finally:
            os.umask(old)
        assert stat.S_IMODE(folder.stat().st_mode) == expected
        assert stat.S_IMODE((folder / "raw").stat().st_mode) == expected
        assert stat.S_IMODE((folder / "run.json").stat().st_mode) == 0o666 & ~umask


def test_a_planted_raw_symlink_is_refused_and_never_followed(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "saved", tmp_path / "elsewhere"
    folder.mkdir(mode=0o755)
    elsewhere.mkdir()
    (folder / "raw").symlink_to(elsewhere)
    with pytest.raises(OptionError) as err:
        RawWriter(str(folder))
    assert str(err.value) == (
        f"--save-raw {folder}/raw: is a symlink; not followed (give the folder it points to)"
    )
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_at_a_temporary_file_path_is_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "saved"
    writer = RawWriter(str(folder))
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA admin\n")
    # The name the old writer used, and the exact next name the new one will try.
    (folder / "raw" / ".000000.out.tmp").symlink_to(victim)
    (folder / "raw" / ".000000.out.cafe.tmp").symlink_to(victim)
    tokens = iter(["cafe", "f00d", "beef"])  # the third names run.json's temporary file
    monkeypatch.setattr(files.secrets, "token_hex", lambda _n: next(tokens))
    writer.add(0, _raw(stdout="ssh-ed25519 AAAA attacker\n"))
    writer.finish(RUN)
    assert victim.read_text() == "ssh-ed25519 AAAA admin\n"
    assert (folder / "raw" / "000000.out").read_text() == "ssh-ed25519 AAAA attacker\n"
    assert sorted(p.name for p in (folder / "raw").iterdir()) == [
        ".000000.out.cafe.tmp",
        ".000000.out.tmp",
        "000000.out",
    ]


def test_a_group_or_world_writable_raw_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(OptionError) as err:
        RawWriter(str(folder))
    assert str(err.value) == (
        f"--save-raw {folder}: group- or world-writable (mode 0777): another user could plant "
        "files there; chmod go-w it or choose another folder"
    )
    assert list(folder.iterdir()) == []


def test_a_raw_folder_of_another_user_is_refused_exit_4(tmp_path: Path) -> None:
    require_root("folders of another user, device nodes")
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    os.chown(folder, 65534, 65534)
    inv = tmp_path / "local.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    r = fleetmon("run", inv, "--interval", "0.2", "--save-raw", folder)
    assert r.returncode == 4, r.stderr
    assert r.stderr == (
        f"fleetmon: error: --save-raw {folder}: owned by uid 65534, not by you (uid 0): "
        "choose a folder of your own\n"
    )
    assert list(folder.iterdir()) == []


def test_a_full_disk_under_save_raw_is_one_line_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "saved"
    # A real write failure from the kernel: the file size limit (EFBIG) in a child process.
    code = (
        "import resource, signal\n"
        "from fleetmon.io.rawstore import RawWriter\n"
        "from fleetmon.model import HostSpec, RawResult, Status\n"
        f"writer = RawWriter({str(folder)!r})\n"
        "writer.add(0, RawResult(HostSpec('h0', 'a'), Status.OK, stdout='small'))\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "writer.add(1, RawResult(HostSpec('h1', 'a'), Status.OK, stdout='x' * 100000))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last == (
        f"fleetmon.errors.OutputError: cannot write --save-raw {folder}/raw/000001.out: "
        "File too large"
    )
    assert sorted(p.name for p in (folder / "raw").iterdir()) == ["000000.out"]


def test_a_symlinked_raw_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o755)
    (tmp_path / "link").symlink_to("real")
    with pytest.raises(OptionError, match=r"link: is a symlink; not followed"):
        RawWriter(str(tmp_path / "link"))


def test_a_reused_folder_keeps_no_output_of_an_earlier_bigger_run(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    save_raw(str(folder), RUN, [_raw(f"h{i}") for i in range(3)])
    (folder / "raw" / "notes.txt").write_text("mine\n")  # not a name fleetmon writes
    (folder / "raw" / "0001.out").write_text("mine\n")
    save_raw(str(folder), RUN, [_raw("h0")])
    assert sorted(p.name for p in (folder / "raw").iterdir()) == [
        "000000.out",
        "0001.out",
        "notes.txt",
    ]
    assert [h.host.name for h in load_raw(str(folder))[1]] == ["h0"]


def test_a_run_cut_short_leaves_no_earlier_run_json_over_its_outputs(tmp_path: Path) -> None:
    """A reused folder: the earlier run.json named raw/ files the new run overwrote, and a
    run interrupted before its own run.json was replayed as every host's parse error (its
    outputs read with the earlier run's nonces). Until the new run.json, no run.json."""
    folder = tmp_path / "saved"
    save_raw(str(folder), RUN, [_raw(f"h{i}") for i in range(3)])
    writer = RawWriter(str(folder))
    assert (folder / "run.json").exists()  # nothing collected yet: the earlier run stands
    writer.add(0, _raw("h0", "a later run's output\n"))
    writer.close()  # interrupted here
    assert not (folder / "run.json").exists()
    with pytest.raises(InputError, match="not a --save-raw folder"):
        load_raw(str(folder))
    save_raw(str(folder), RUN, [_raw("h0")])  # the next run makes it a run again
    assert [h.host.name for h in load_raw(str(folder))[1]] == ["h0"]


def test_an_output_over_what_save_raw_writes_is_refused_before_any_probe(tmp_path: Path) -> None:
    inv = ROOT / "inventories" / "localhost.yaml"
    saved = tmp_path / "saved"
    (saved / "raw").mkdir(parents=True)
    for out, hit in (
        (tmp_path / "x", f"over {tmp_path / 'x'}"),  # the folder-to-be itself
        (saved / "run.json", f"over {saved / 'run.json'}"),
        (saved / "raw" / "000000.out", f"into {saved / 'raw'}"),
    ):
        folder = tmp_path / "x" if out.name == "x" else saved
        res = fleetmon("run", inv, "--history", "none", "--save-raw", folder, "-o", out)
        assert res.returncode == 4
        assert res.stderr == (
            f"fleetmon: error: -o {out} would write {hit}, which --save-raw writes: write the"
            " report elsewhere\n"
        )
    assert not (tmp_path / "x").exists()
    assert [p.name for p in saved.rglob("*")] == ["raw"]
    beside = saved / "report.txt"  # a report beside what --save-raw writes is fine
    res = fleetmon(
        "run", inv, "--history", "none", "--interval", "0.2", "--save-raw", saved, "-o", beside
    )
    assert res.returncode in (0, 1, 2, 3), res.stderr
    assert beside.read_text().startswith("fleetmon")
    assert (saved / "run.json").is_file()


def test_a_history_where_save_raw_writes_and_save_raw_dash_are_refused(tmp_path: Path) -> None:
    """`--history DIR/run.json --save-raw DIR` exited 0: the raw run.json replaced the new
    history, its -wal and -shm left beside it; `--save-raw -` made a folder named `-`."""
    inv = ROOT / "inventories" / "localhost.yaml"
    saved = tmp_path / "saved"
    for history, hit in ((saved / "run.json", "run.json"), (saved / "raw" / "h.sqlite", "raw")):
        res = fleetmon("run", inv, "--history", history, "--save-raw", saved, "-o", os.devnull)
        assert (res.returncode, res.stderr) == (
            4, f"fleetmon: error: --history {history}: --save-raw writes {saved / hit}\n"
        )  # fmt: skip
    assert not saved.exists()
    res = fleetmon("run", inv, "--history", "none", "--save-raw", "-", "-o", os.devnull)
    assert (res.returncode, res.stderr) == (
        4, "fleetmon: error: --save-raw -: a folder to write, not standard output\n"
    )  # fmt: skip
    assert not (ROOT / "-").exists()


def test_run_json_stores_only_the_variables_fleetmon_needs(tmp_path: Path) -> None:
    host_vars = {
        "api_key": "sk-live-1",
        "db_credential": "hunter2",
        "x_token": "t",
        "ansible_ssh_common_args": "-o ProxyCommand='sshpass -p pw ssh -W %h:%p jump'",
        "ansible_ssh_private_key_file": "~/.ssh/id_fleet",
        "ansible_host": "192.0.2.1",
        "ansible_user": "monitor",
        "fleetmon_hypervisor": "kvm",
        "fleetmon_thresholds": {"host-steal": {"warning": "> 15"}},
        "ansible_become_user": Vaulted("$ANSIBLE_VAULT;1.1;AES256\n6162"),
    }
    save_raw(str(tmp_path / "saved"), RUN, [_raw(**host_vars)])
    text = (tmp_path / "saved" / "run.json").read_text()
    assert json.loads(text)["hosts"][0]["spec"]["vars"] == {
        "ansible_host": "192.0.2.1",
        "ansible_user": "monitor",
        "fleetmon_hypervisor": "kvm",
        "fleetmon_thresholds": {"host-steal": {"warning": "> 15"}},
    }
    for secret in ("sk-live-1", "hunter2", "sshpass", "id_fleet", "ANSIBLE_VAULT"):
        assert secret not in text
    # A folder written before this rule is read the same way: the rest never reaches rules.
    doc = json.loads(text)
    old_vars = {k: v for k, v in host_vars.items() if not isinstance(v, Vaulted)}
    doc["hosts"][0]["spec"]["vars"] = old_vars
    (tmp_path / "saved" / "run.json").write_text(json.dumps(doc))
    _run, (raw,) = load_raw(str(tmp_path / "saved"))
    assert raw.host.vars == stored_vars(old_vars)
    assert "api_key" not in raw.host.vars


def test_report_replays_the_runs_findings_with_only_the_stored_variables(tmp_path: Path) -> None:
    inv = tmp_path / "local.yaml"
    inv.write_text(
        "all:\n  vars:\n    api_key: sk-live-1\n  children:\n    kvm:\n      hosts:\n"
        "        here:\n          ansible_connection: local\n"
        "          fleetmon_hypervisor: none\n"
        "          fleetmon_thresholds:\n"
        "            host-mem-used: {warning: '>= 0', critical: null}\n",
        encoding="utf-8",
    )
    raw, first = tmp_path / "raw", tmp_path / "first.json"
    r = fleetmon(
        "run", inv, "--interval", "0.2", "--format", "json", "-o", first, "--save-raw", raw
    )
    assert r.returncode in (0, 1, 2, 3), r.stderr
    again = fleetmon("report", raw, "--format", "json")
    assert again.returncode == r.returncode, again.stderr
    a, b = json.loads(first.read_text()), json.loads(again.stdout)
    assert a["hosts"][0]["groups"] == b["hosts"][0]["groups"] == ["kvm"]
    assert a["hosts"][0]["findings"] == b["hosts"][0]["findings"]
    assert any(f["rule"] == "host-mem-used" for f in a["hosts"][0]["findings"])
    assert "sk-live-1" not in (raw / "run.json").read_text()


# --- fleetmon report DIR -----------------------------------------------------------------


def _saved(tmp_path: Path, stdout: str = "out\n") -> Path:
    folder = tmp_path / "saved"
    save_raw(str(folder), RUN, [_raw(stdout=stdout)])
    return folder


def test_a_raw_file_over_the_output_cap_is_refused(tmp_path: Path) -> None:
    folder = _saved(tmp_path, "x" * 30)
    # Up to three bytes stored per byte received (U+FFFD for each invalid byte): 10 -> 30.
    _run, (raw,) = load_raw(str(folder), max_bytes=10)
    assert raw.stdout == "x" * 30
    (folder / "raw" / "000000.out").write_text("x" * 31)
    with pytest.raises(InputError) as err:
        load_raw(str(folder), max_bytes=10)
    assert str(err.value) == (
        f"{folder}/raw/000000.out: 31 bytes, over the limit of 30 bytes: more than a host may "
        "send under the output cap (raise it with --output-cap BYTES if the run did)"
    )
    r = fleetmon("report", folder, "--output-cap", "10", "--no-rules")
    assert r.returncode == 4
    assert "over the limit of 30 bytes" in r.stderr


@pytest.mark.parametrize("where", ["raw/000000.out", "run.json"])
def test_a_fifo_in_place_of_a_file_is_refused_not_a_hang(tmp_path: Path, where: str) -> None:
    folder = _saved(tmp_path)
    (folder / where).unlink()
    os.mkfifo(folder / where)
    r = fleetmon("report", folder, "--no-rules", timeout=30)
    assert r.returncode == 4, r.stderr
    assert r.stderr == f"fleetmon: error: {folder}/{where}: is a FIFO, not a regular file\n"


def test_a_device_or_symlink_in_place_of_a_raw_file_is_refused(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    out = folder / "raw" / "000000.out"
    out.unlink()
    out.symlink_to("../run.json")  # inside the folder, yet not what fleetmon writes
    with pytest.raises(InputError, match=r"000000\.out: is a symlink; not followed"):
        load_raw(str(folder))
    require_root("folders of another user, device nodes")
    out.unlink()
    os.mknod(out, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: never ends
    with pytest.raises(InputError, match=r"000000\.out: is a character device, not a regular"):
        load_raw(str(folder))


def test_deep_nesting_in_run_json_is_an_input_error(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    index = folder / "run.json"
    doc = json.loads(index.read_text())
    index.write_text('{"format": "fleetmon.raw/1", "run": ' + "[" * 100_000 + "]" * 100_000 + "}")
    r = fleetmon("report", folder)
    assert r.returncode == 4, r.stderr
    assert r.stderr == f"fleetmon: error: {index}: invalid: nested too deeply\n"
    deep: object = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    doc["hosts"][0]["spec"]["vars"]["fleetmon_thresholds"] = deep
    index.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        load_raw(str(folder))
    assert str(err.value) == (
        f"{index}: malformed entry: hosts[0]: nested deeper than {MAX_DEPTH} levels"
    )


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("NaN", "invalid: NaN is not a JSON number"),
        ("1e400", "invalid: 1e400 is past the largest number"),
        ("1" + "0" * 400, "malformed entry: int too large to convert to float"),
        ("0", "malformed entry: interval_s: expected a positive number of seconds, got 0"),
    ],
)
def test_an_interval_no_run_has_is_an_input_error(tmp_path: Path, value: str, said: str) -> None:
    """NaN or Infinity in run.json crashed the replay's JSON output (exit 70) after its HTML
    was written, 1e400 written as an integer overflowed (exit 70)."""
    folder = _saved(tmp_path)
    index = folder / "run.json"
    text = index.read_text()
    index.write_text(re.sub(r'"interval_s": [0-9.]+', f'"interval_s": {value}', text, count=1))
    html = tmp_path / "r.html"
    r = fleetmon("report", folder, "--history", "none", "--html", html, "--format", "json")
    assert (r.returncode, r.stdout) == (4, ""), r.stderr
    assert r.stderr == f"fleetmon: error: {index}: {said}\n"
    assert not html.exists()


def test_texts_from_run_json_reach_the_terminal_escaped(tmp_path: Path) -> None:
    raws = [RawResult(HostSpec("h0", "192.0.2.1"), Status.OK, stdout=probe_stdout(), nonce=NONCE)]
    hostile = RunInfo(
        "0.0.test",
        "2026-11-26T05:00:00Z",
        1.0,
        "inv.yaml\x1b]52;c;cm0gLXJmIH4K\x07",
        limit="all\r",
        host_key_notes=("host key checking OFF for \x1b[31mevil\x1b[0m",),
    )
    save_raw(str(tmp_path / "saved"), hostile, raws)
    r = fleetmon("report", tmp_path / "saved", "--no-rules")
    assert r.returncode == 0, r.stderr
    assert [c for c in "\x1b\x07\r" if c in r.stdout] == []
    head = r.stdout.splitlines()
    assert "inventory inv.yaml\\x1b]52;c;cm0gLXJmIH4K\\x07" in head[0]
    assert "limit all\\r" in head[0]
    assert "WARNING: host key checking OFF for \\x1b[31mevil\\x1b[0m" in head
    # A start no run writes is refused (tests/test_replay_inputs.py), its text escaped.
    save_raw(str(tmp_path / "saved"), dataclasses.replace(hostile, started_at="\x1b[2J"), raws)
    r = fleetmon("report", tmp_path / "saved", "--no-rules")
    assert r.returncode == 4
    assert r.stderr.endswith("got '\\x1b[2J'\n")


def test_report_to_dash_writes_standard_output_and_no_file(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "fleetmon", "report", str(folder), "--no-rules", "-o", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert r.returncode == 3, r.stderr  # the host's output is no probe output: parse_error
    assert r.stdout.startswith("fleetmon ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]


def test_an_output_that_cannot_be_written_does_not_stop_the_others(tmp_path: Path) -> None:
    raws = [RawResult(HostSpec("h0", "192.0.2.1"), Status.OK, stdout=probe_stdout(), nonce=NONCE)]
    save_raw(str(tmp_path / "saved"), RUN, raws)
    out, junit = tmp_path / "fleet.json", tmp_path / "fleet.xml"
    out.write_text("previous\n")
    r = fleetmon("report", tmp_path / "saved", "--no-rules", "--format", "json", "-o", out,
                 "--html", "/dev/full", "--junit", junit)  # fmt: skip
    assert r.returncode == 4
    assert r.stderr == "fleetmon: error: cannot write /dev/full: No space left on device\n"
    assert json.loads(out.read_text())["schema"] == "fleetmon.report/1"
    assert junit.read_text().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.json", "fleet.xml", "saved"]
    _run, _hosts = iter_raw(str(tmp_path / "saved"))  # the folder itself is untouched


def test_a_file_given_for_the_folder_is_named_as_not_a_folder(tmp_path: Path) -> None:
    """`report FILE` or `rules lint --raw FILE` with a file (a JSON report, a rule file):
    one line saying it is not a folder, not "[Errno 20] Not a directory: 'FILE/run.json'"."""
    given = tmp_path / "report.json"
    given.write_text("{}")
    with pytest.raises(InputError) as exc:
        iter_raw(str(given))
    assert str(exc.value) == f"{given}: not a folder: expected a --save-raw folder"
