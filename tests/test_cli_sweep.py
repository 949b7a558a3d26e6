"""Every subcommand's bad options as a user meets them: one line, exit 4, the intended
option named for a typo, the subcommand's own `--help` pointed at, contradictions refused."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from clirun import fleetmon

INV = "inventories/localhost.yaml"


def _one_error_line(args: list[str]) -> str:
    r = fleetmon(*args, timeout=30)
    assert r.returncode == 4, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("fleetmon: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "typo", "meant", "prog"),
    [
        (["run", INV, "--fromat", "json"], "--fromat", "--format", "fleetmon run"),
        (["run", INV, "--histroy=x"], "--histroy", "--history", "fleetmon run"),
        (["report", "raw", "--fromat", "json"], "--fromat", "--format", "fleetmon report"),
        (["merge", "a.json", "--jsno", "b"], "--jsno", "--json", "fleetmon merge"),
        (["inventory", INV, "--grpah"], "--grpah", "--graph", "fleetmon inventory"),
        (["simulate", "--hostss", "3"], "--hostss", "--hosts", "fleetmon simulate"),
        (["top", INV, "--dealy", "2"], "--dealy", "--delay", "fleetmon top"),
        (["serve", INV, "--lisen", ":9"], "--lisen", "--listen", "fleetmon serve"),
        # Nested subcommands: the typo is theirs, and so is the --help to read.
        (["history", "status", "--chek"], "--chek", "--check", "fleetmon history status"),
        (["history", "show", "h", "--sinse", "1d"], "--sinse", "--since", "fleetmon history show"),
        (["history", "export", "--fromat", "x"], "--fromat", "--format", "fleetmon history export"),
        (["history", "prune", "--vacum"], "--vacum", "--vacuum", "fleetmon history prune"),
        (["rules", "lint", "x.yaml", "--no-defualt-rules"], "--no-defualt-rules",
         "--no-default-rules", "fleetmon rules lint"),
        (["rules", "list", INV, "--limt", "x"], "--limt", "--limit", "fleetmon rules list"),
    ],
)  # fmt: skip
def test_a_misspelt_option_names_the_intended_one(
    args: list[str], typo: str, meant: str, prog: str
) -> None:
    line = _one_error_line(args)
    assert f"unrecognized arguments: {typo}" in line
    assert f"(did you mean '{meant}'?)" in line
    assert line.endswith(f"(see '{prog} --help')")


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (["hsitory", "status"], "history"),
        (["history", "stauts"], "status"),
        (["rules", "lnt", "x.yaml"], "lint"),
        (["run", INV, "--format", "jsno"], "json"),
    ],
)
def test_a_misspelt_choice_names_the_intended_one(args: list[str], meant: str) -> None:
    line = _one_error_line(args)
    assert "invalid choice" in line
    assert f"(did you mean '{meant}'?)" in line


def test_an_unknown_option_far_from_any_names_none() -> None:
    line = _one_error_line(["run", INV, "--zzzzzzzz"])
    assert "unrecognized arguments: --zzzzzzzz" in line
    assert "did you mean" not in line


def test_a_missing_host_is_the_one_required_argument_of_history_show() -> None:
    # METRIC may be left out (the key metrics then): it is not required.
    line = _one_error_line(["history", "show"])
    assert "the following arguments are required: HOST (see" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", INV, "--no-rules", "-r", "x.yaml"], "-r and --no-rules contradict"),
        (["report", "raw", "--no-rules", "-r", "x.yaml"], "-r and --no-rules contradict"),
        (["merge", "a.json", "--no-rules", "-r", "x"], "-r and --no-rules contradict"),
        (["top", INV, "--no-rules", "-r", "x.yaml"], "-r and --no-rules contradict"),
        (["serve", INV, "--no-rules", "-r", "x.yaml"], "-r and --no-rules contradict"),
        (
            ["run", INV, "--no-rules", "--no-default-rules"],
            "--no-default-rules and --no-rules contradict",
        ),
        (["run", INV, "--no-lock", "--lock", "x.lock"], "--lock and --no-lock contradict"),
        (["run", INV, "--no-lock", "--lock-wait", "5"], "--lock-wait and --no-lock contradict"),
    ],
)
def test_options_that_contradict_each_other_are_refused(args: list[str], message: str) -> None:
    assert message in _one_error_line(args)


@pytest.mark.parametrize("command", ["status", "show"])
def test_an_empty_history_file_is_not_called_missing(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    args = ["history", command, *(["h"] if command == "show" else []), "--history", str(empty)]
    line = _one_error_line(args)
    assert "no such file" not in line
    assert f"history {empty}: an empty file" in line
    assert empty.read_bytes() == b""


def test_a_vault_password_fifo_without_a_writer_is_empty_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    line = _one_error_line(["inventory", INV, "--list", "--vault-password-file", str(fifo)])
    assert line == f"fleetmon: error: vault password file {fifo} is empty"


def test_a_vault_password_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    # As `--vault-password-file <(pass show vault)` gives it: read to the writer's end.
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("pw\n",), daemon=True)
    writer.start()
    r = fleetmon("inventory", INV, "--list", "--vault-password-file", fifo, timeout=30)
    assert r.returncode == 0, r.stderr
    writer.join(5)
    assert not writer.is_alive()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # Without --fill-history the fleet is served: these were silently dropped.
        (["--days", "3"], "--days does nothing without --fill-history"),
        (["--every", "1h"], "--every does nothing without --fill-history"),
        (["--history-keep", "raw=1d"], "--history-keep does nothing without --fill-history"),
        # With it nothing is served and no file but the history written: these were not.
        (["--fill-history", "h.sqlite", "--inventory-out", "i.yaml"],
         "--inventory-out does nothing with --fill-history"),
        (["--fill-history", "h.sqlite", "--client-key-out", "k"],
         "--client-key-out does nothing with --fill-history"),
        (["--fill-history", "h.sqlite", "--known-hosts-out", "kh"],
         "--known-hosts-out does nothing with --fill-history"),
    ],
)  # fmt: skip
def test_simulate_refuses_options_its_mode_ignores(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    # --port 1: a privileged port, so a simulate that went on to serve fails fast.
    args = ["simulate", "--hosts", "1", "--port", "1", "--base-address", "127.0.0.1"]
    args += [str(tmp_path / e) if e in ("h.sqlite", "i.yaml", "k", "kh") else e for e in extra]
    assert message in _one_error_line(args)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("sort", "meant"), [("cpuu", "cpu"), ("heatlh", "health"), ("stael", "steal")]
)
def test_a_misspelt_top_sort_column_names_the_intended_one(sort: str, meant: str) -> None:
    line = _one_error_line(["top", INV, "-b", "-n", "1", "--sort", sort])
    assert f"has no column '{sort}' (did you mean '{meant}'?)" in line


@pytest.mark.parametrize("where", ["file", "missing"])
def test_a_playbooks_variable_that_names_no_folder_is_named(tmp_path: Path, where: str) -> None:
    # The error named only "<value>/linux-host.yaml", not the variable that made it up.
    value = tmp_path / "playbooks"
    if where == "file":
        value.write_text("x\n")
    r = fleetmon("rules", "list", INV, env={"FLEETMON_PLAYBOOKS": str(value)}, timeout=30)
    assert r.returncode == 4, r.stderr
    assert r.stderr == f"fleetmon: error: FLEETMON_PLAYBOOKS={value}: not a folder\n"
