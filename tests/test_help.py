"""Every option of `fleetmon run` and `fleetmon report` has help text in `--help` and a row in
the README's option table, under each of its names (a test, so a new option cannot skip it)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from clirun import ROOT, fleetmon

from fleetmon.cli.options import build_parser


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[name]
    return found


def _options(name: str) -> list[argparse.Action]:
    return [a for a in _subparser(name)._actions if a.option_strings and a.dest != "help"]


def _readme_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("Options of `fleetmon run`")
    table = text[start : text.index("\n\n", text.index("| option |", start))]
    return table


@pytest.mark.parametrize("command", ["run", "report"])
def test_every_option_has_help_text(command: str) -> None:
    missing = [a.option_strings for a in _options(command) if not (a.help or "").strip()]
    assert missing == []


def _unhelped(parser: argparse.ArgumentParser, path: str) -> list[str]:
    """Options of this parser and its subcommands' (at any depth) with no help text."""
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                out += _unhelped(sub, f"{path} {name}")
        elif a.option_strings and a.dest != "help" and not (a.help or "").strip():
            out.append(f"{path} {'/'.join(a.option_strings)}")
    return out


def test_every_option_of_every_command_has_help_text() -> None:
    """top's and serve's --connect-timeout and --accept-new-host-keys, history's --since,
    --format and --scope and rules list's --limit showed a bare name in --help (their
    default and meaning unsaid: --since 7d for show, all that is kept for export)."""
    assert _unhelped(build_parser(), "fleetmon") == []
    show = " ".join(fleetmon("history", "show", "--help").stdout.split())
    assert "start this long ago: 30m, 1d, 2w... (default: 7d)" in show
    export = " ".join(fleetmon("history", "export", "--help").stdout.split())
    assert "(default: all that is kept)" in export


@pytest.mark.parametrize("command", ["run", "report"])
def test_every_option_is_in_the_readme_table(command: str) -> None:
    table = _readme_table()
    names = [s for a in _options(command) for s in a.option_strings] + ["--debug"]
    missing = [n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", table)]
    assert missing == []


def test_the_readme_table_gives_the_defaults_ansible_cfg_sets() -> None:
    """-f and --connect-timeout default to ansible.cfg's forks and timeout, as their --help
    says; the table said 200 and 10 only, so a site's forks = 20 looked ignored."""
    lines = [r for r in _readme_table().splitlines() if r.startswith("| `")]
    rows = {r.split("|")[1].strip(): r.split("|")[2] for r in lines}
    help_text = {a.dest: a.help or "" for a in _options("run")}
    for row, dest, key in (("`-f/--forks N`", "forks", "forks"),
                           ("`--connect-timeout S`", "connect_timeout", "timeout")):  # fmt: skip
        assert f"ansible.cfg {key}, else" in help_text[dest]
        assert f"ansible.cfg `{key}`, else" in rows[row]


def test_help_shows_the_help_of_the_options_issue_11_named() -> None:
    r = fleetmon("run", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for words in (
        "--interval S seconds between the probe's two samples",
        "--connect-timeout S TCP + SSH handshake limit",
        "--lock-wait S wait this long for another run's lock",
        "--fail-on {warning,critical} the least severity that JUnit counts as a failed test",
    ):
        assert words in text


def test_default_timeout_is_the_interval_plus_the_probe_s_limits_and_a_margin() -> None:
    from fleetmon.cli.options import TIMEOUT_MARGIN_S
    from fleetmon.cli.run import _collect_options
    from fleetmon.collect.base import CollectOptions
    from fleetmon.sources.sections import WORST_GUARDED_S

    args = build_parser().parse_args(
        ["run", "inv.yaml", "--interval", "2.5", "--connect-timeout", "4"]
    )
    assert TIMEOUT_MARGIN_S == 30.0  # see cli/options.py
    assert _collect_options(args).deadline_s == 32.5
    args = build_parser().parse_args(["run", "inv.yaml", "--timeout", "7"])
    assert _collect_options(args).deadline_s == 7.0
    assert "(default: interval + 30 s)" in " ".join(fleetmon("run", "--help").stdout.split())
    # The probe's own time limits, one hung command of each kind, fit in the default
    # deadline with the most a host took past the interval otherwise (timeout_bench: 3.5 s),
    # in `run` and in a tick of the streaming loop: a hung tool costs its figures, not all.
    assert WORST_GUARDED_S == 25
    assert TIMEOUT_MARGIN_S >= WORST_GUARDED_S + 3.5
    assert CollectOptions(interval_s=2.0).deadline_s - 2.0 >= WORST_GUARDED_S + 3.5


#: What may come before `fleetmon` on a README command line: the venv's path (the simulator
#: example) or a crontab line's five time fields (the Cron and node_exporter examples).
_PREFIX = re.compile(r"(?:\.venv/bin/|(?:[\d*/,-]+ ){5})?(?=fleetmon )")


def _readme_commands() -> list[tuple[int, list[str]]]:
    """Each `fleetmon ...` line of the README's code blocks (continuations joined), split as
    a shell would, its `# comment` and a last `&` dropped."""
    import shlex

    found, block, pending = [], False, ""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    for no, line in enumerate(lines, 1):
        if line.startswith("```"):
            block = not block
            continue
        m = _PREFIX.match(line)
        if not block or not (pending or m):
            continue
        pending += (line if pending or m is None else line[m.end() :]).rstrip("\\") + " "
        if not line.endswith("\\"):
            words = shlex.split(pending.split(" >", 1)[0], comments=True)
            found.append((no, words[1:-1] if words[-1] == "&" else words[1:]))
            pending = ""
    return found


def test_every_command_line_of_the_readme_parses() -> None:
    """Copy-pasting an example works: a description after a command is a `# comment`, so
    no word of it is taken for an argument (the history and top examples were not). The
    simulator's `.venv/bin/fleetmon` lines and the crontab lines count too."""
    parser = build_parser()
    commands = _readme_commands()
    assert sum(argv[0] == "simulate" for _, argv in commands) >= 1
    assert sum("/etc/ansible/hosts.yaml" in argv for _, argv in commands) == 2  # the crontabs
    bad = []
    for no, argv in commands:
        try:
            _, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --version exits 0
            extra = [] if exc.code == 0 else ["(refused)"]
        if extra:
            bad.append((no, extra))
    assert bad == []


def test_run_takes_i_for_the_inventory_as_ansible_and_the_other_commands_do() -> None:
    """`fleetmon run -i hosts.ini` (the Ansible reflex) is the inventory, as in top, serve,
    rules and inventory; the interval is --interval."""
    args = build_parser().parse_args(["run", "-i", "inventories/localhost.yaml", "-i", "b.ini"])
    assert args.inventories == ["inventories/localhost.yaml", "b.ini"]
    assert args.interval == 1.0
    r = fleetmon("run", "-i", "inventories/localhost.yaml", "--interval", "0.1", "-q",
                 "--history", "none", "--no-rules", "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"name": "localhost"' in r.stdout
    assert "warning" not in r.stderr


def test_run_i_with_a_number_naming_no_file_is_still_the_interval_with_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Scripts of before (`run inv.yaml -i 5`) keep working, told once to use --interval;
    an existing file named like a number is an inventory."""
    args = build_parser().parse_args(["run", "inv.yaml", "-i", "2.5"])
    assert (args.inventory, args.inventories, args.interval) == (["inv.yaml"], [], 2.5)
    warning = "fleetmon: warning: -i is the inventory now, as in ansible; use --interval\n"
    assert capsys.readouterr().err == warning
    args = build_parser().parse_args(["run", "-i", "LICENSE"])  # a file, not a number
    assert args.inventories == ["LICENSE"]
    r = fleetmon("run", "inventories/localhost.yaml", "-i", "5000")
    assert (r.returncode, r.stderr.splitlines()[1:]) == (
        4,
        ["fleetmon: error: argument -i: --interval must be 3600 or less, got '5000'"
         " (see 'fleetmon run --help')"],
    )  # fmt: skip


def test_run_i_file_named_like_a_number_is_the_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "5").write_text("localhost ansible_connection=local\n")
    args = build_parser().parse_args(["run", "-i", "5"])
    assert (args.inventories, args.interval) == (["5"], 1.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "x.yaml", "--debug"],
        ["--debug", "run", "x.yaml"],
        ["top", "--debug", "x.yaml"],
        ["history", "show", "h", "--debug"],
        ["rules", "lint", "f.yaml", "--debug"],
        ["simulate", "--debug"],
    ],
)
def test_debug_counts_before_or_after_the_command(argv: list[str]) -> None:
    """README lists --debug among run's options: `fleetmon run ... --debug` was refused."""
    assert build_parser().parse_args(argv).debug is True
    without = [a for a in argv if a != "--debug"]
    assert build_parser().parse_args(without).debug is False


def test_debug_after_the_command_shows_the_traceback() -> None:
    r = fleetmon("report", "/nonexistent-raw-dir", "--debug")
    plain = fleetmon("report", "/nonexistent-raw-dir")
    assert r.returncode == plain.returncode == 4
    assert "Traceback" in r.stderr
    assert "Traceback" not in plain.stderr


def test_help_states_the_defaults_the_readme_states() -> None:
    """run's --unreachable and --output-cap, every simulate option with a default, and the
    help of inventory's --list and --host (they had none)."""
    run = " ".join(fleetmon("run", "--help").stdout.split())
    assert "count in the exit code (default: unknown)" in run
    assert "from one host (default 16 MiB)" in run
    sim = " ".join(fleetmon("simulate", "--help").stdout.split())
    for words in ("hosts to play (default: 200)", "(default: kvm)", "(default: 2222)",
                  "(default: 7.0)", "(default: 5m)", "same fleet (default: 0)"):  # fmt: skip
        assert words in sim
    assert "(default: None)" not in sim
    assert "(default: False)" not in sim
    inv = {a.dest: a.help for a in _options("inventory")}
    assert inv["list"]
    assert inv["host"]


def test_an_option_error_points_at_the_command_s_help() -> None:
    r = fleetmon("run", "inventories/localhost.yaml", "--timeout", "5", "--interval", "5")
    assert r.returncode == 4
    assert r.stderr.count("\n") == 1
    assert r.stderr.endswith("(see 'fleetmon run --help')\n")
