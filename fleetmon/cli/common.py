"""What the subcommands share (I/O edge): rule files, the report, writing the outputs."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path

import fleetmon
from fleetmon.analyse.pipeline import report_from_hosts
from fleetmon.errors import OptionError, OutputError
from fleetmon.inventory import Inventory
from fleetmon.io.atomic import check_output, resolve_output, write_output
from fleetmon.model import Finding, HostReport, HostSpec, Report, RunInfo
from fleetmon.render.json import json_chunks, render_json
from fleetmon.rules import RuleSet, default_rule_files, evaluate, load_rules
from fleetmon.rules.historical import Past, RuleState, StateKey
from fleetmon.rules.verdict import exit_code


def render(fmt: str, report: Report, args: argparse.Namespace | None = None) -> str:
    """The report as text, json, html or nagios, laid out as `args` ask (--width, --top...);
    Prometheus and InfluxDB are written in pieces (cli.exports.format_chunks).

    Each renderer is imported when first asked for: start-up time is client CPU that every
    run pays (3 ms per host at 100 hosts), and a JSON run needs no HTML templates.
    """
    if fmt == "text":
        from fleetmon.render.text import TextOptions, render_text

        opts = TextOptions(
            width=text_width(args),
            problems=bool(getattr(args, "problems", False)),
            top=getattr(args, "top", None),
        )
        return render_text(report, opts)
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        from fleetmon.render.html import render_html

        return render_html(report)
    if fmt == "nagios":
        from fleetmon.render.nagios import MAX_BYTES, render_nagios

        return render_nagios(report, getattr(args, "nagios_max_bytes", MAX_BYTES))
    raise OptionError(f"unknown format {fmt!r}")  # pragma: no cover


def env_size(name: str) -> int | None:
    """$COLUMNS or $LINES when it is a whole number above 0; None when unset or anything
    else (`abc`, `80x`, `-5`, `0`, 5,000 digits), which curses and shutil.get_terminal_size
    ignore too."""
    text = os.environ.get(name, "").strip()
    if not text.isdecimal() or len(text) > 9:
        return None
    value = int(text)
    return value if value > 0 else None


def text_width(args: argparse.Namespace | None) -> int | None:
    """The text report's width: --width (0: none); else, when it goes to standard output and
    that is a terminal, $COLUMNS or the terminal's width; else (a file, a pipe) none, even
    with $COLUMNS set (tmux and some shells export it: a cron mail or `| less` was cut)."""
    asked = getattr(args, "width", None)
    if asked is not None:
        return asked or None
    if getattr(args, "output", None) not in (None, "-", "/dev/stdout"):
        return None
    if not sys.stdout.isatty():
        return None
    columns = env_size("COLUMNS")
    if columns is not None:
        return columns
    # A new pty may report 0 columns: 80 then, as the progress line does.
    return shutil.get_terminal_size().columns or 80


def playbooks_dir() -> Path:
    """The shipped rule files: $FLEETMON_PLAYBOOKS, else the package's own `playbooks/`."""
    env = os.environ.get("FLEETMON_PLAYBOOKS")
    if env:
        return Path(env)
    return Path(fleetmon.__file__).resolve().parent / "playbooks"


def _shipped_dir() -> Path:
    """playbooks_dir() when the rules are loaded from it: a $FLEETMON_PLAYBOOKS that names
    no folder is named itself (its error was `VALUE/linux-host.yaml: cannot read`)."""
    folder = playbooks_dir()
    if os.environ.get("FLEETMON_PLAYBOOKS") and not folder.is_dir():
        raise OptionError(f"FLEETMON_PLAYBOOKS={folder}: not a folder")
    return folder


def rule_files_of(args: argparse.Namespace, history: bool = False) -> list[str]:
    """The rule files to load: the shipped playbooks, then each `-r` file or folder on top
    (`--no-default-rules`: the `-r` ones only). A file named twice is loaded once, first."""
    own = list(getattr(args, "rules", None) or [])
    if getattr(args, "no_default_rules", False):
        if not own:
            raise OptionError("--no-default-rules needs -r FILE (or use --no-rules)")
        shipped: list[str] = []
    else:
        shipped = default_rule_files(str(_shipped_dir()), history=history)
    seen: set[str] = set()
    out: list[str] = []
    for f in [*shipped, *own]:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def rule_set(args: argparse.Namespace) -> tuple[RuleSet | None, tuple[str, ...]]:
    """The rules of this run (None with --no-rules) and the files they came from."""
    if getattr(args, "no_rules", False):
        return None, ()
    from fleetmon.history.paths import resolve

    with_history = resolve(getattr(args, "history", "none")) is not None
    files = rule_files_of(args, history=with_history)
    return load_rules(files), tuple(files)


def build_report(
    args: argparse.Namespace,
    hosts: Sequence[HostReport],
    specs: Mapping[str, HostSpec],
    run: RunInfo,
    rules: RuleSet | None,
    inventory: Inventory | None,
    past: Past | None = None,
    states: MutableMapping[StateKey, RuleState | None] | None = None,
) -> Report:
    """The report: fleet statistics, the rules (with the history's `past`), exit code."""
    evaluator = None
    if rules is not None:

        def match(pattern: str) -> set[str]:
            if inventory is not None:
                return {h.name for h in inventory.select_quiet(pattern)}
            return match_from_specs(pattern, list(specs.values()))

        def evaluator(
            hosts: tuple[HostReport, ...], fleet: Mapping[str, object]
        ) -> tuple[tuple[HostReport, ...], tuple[Finding, ...]]:
            return evaluate(
                rules,
                hosts,
                specs,
                fleet,  # type: ignore[arg-type]
                match,
                past=past,
                states_out=states,
            )

    def code(hosts: tuple[HostReport, ...], fleet_findings: tuple[Finding, ...]) -> int:
        return exit_code(hosts, fleet_findings, unreachable=args.unreachable, fail_on=args.fail_on)

    return report_from_hosts(hosts, printable_run(run), evaluate=evaluator, exit_code=code)


def printable_run(run: RunInfo) -> RunInfo:
    """The run facts with control characters escaped as host output is (render.text.clean):
    the inventory path, --limit and host-key notes (inventory host names) reach the text
    report's header, and `report DIR` reads them all from a run.json anyone may have written.
    """
    texts = (run.started_at, run.inventory, run.limit or "", *run.host_key_notes, *run.notes)
    if all(t.isprintable() for t in texts):
        return run  # the common case pays no tabulate import (the text renderer's module)
    from fleetmon.render.text import clean

    return dataclasses.replace(
        run,
        started_at=clean(run.started_at),
        inventory=clean(run.inventory),
        limit=None if run.limit is None else clean(run.limit),
        host_key_notes=tuple(clean(n) for n in run.host_key_notes),
        notes=tuple(clean(n) for n in run.notes),
    )


def match_from_specs(pattern: str, specs: list[HostSpec]) -> set[str]:
    """The hosts among `specs` an Ansible host pattern selects (without an inventory)."""
    from fleetmon.inventory.patterns import match_pattern

    return set(match_pattern(pattern, specs))


#: The report options that name an output, as the user writes them, and their attributes
#: (in the order the run lock looks for a regular file to sit beside).
_OUTPUT_OPTIONS = (("-o", "output"), ("--json", "json_out"), ("--html", "html"),
                   ("--junit", "junit"), ("--prom-textfile", "prom_textfile"))  # fmt: skip


def output_paths(args: argparse.Namespace) -> tuple[str | None, ...]:
    """The paths of the report's outputs as given (None: not asked for, or -o not given)."""
    return tuple(getattr(args, attr, None) for _, attr in _OUTPUT_OPTIONS)


def check_outputs_spare(
    args: argparse.Namespace, inputs: Sequence[str], uses: str = "this command reads"
) -> None:
    """OptionError (exit 4, before anything is read) when an output would replace a file
    the command reads (`merge a.json -o a.json`) or write into a folder it reads (or, as
    `uses` says, writes itself). An input not there yet (a history's WAL) is compared by its
    path."""
    read: list[tuple[str, str, os.stat_result | None]] = []
    for p in inputs:
        try:
            st: os.stat_result | None = os.stat(p)
        except OSError:
            st = None
        read.append((p, os.path.realpath(p), st))
    for option, attr in _OUTPUT_OPTIONS:
        path = getattr(args, attr, None)
        try:
            target = resolve_output(path) if path is not None else None
        except OutputError:
            continue  # left to the outputs' own checks
        if target is None or target.kind != "file":
            continue
        real = os.path.realpath(target.path)
        for shown, where, st in read:
            folder = os.path.isdir(where)
            if folder:
                hit = os.path.commonpath([real, where]) == where
            elif st is None:
                hit = real == where
            else:
                hit = os.path.exists(real) and os.path.samestat(os.stat(real), st)
            if hit:
                raise OptionError(
                    f"{option} {path} would write {'into' if folder else 'over'} {shown}, "
                    f"which {uses}: write the report elsewhere"
                )


def check_history_spared(args: argparse.Namespace, history: str | None) -> None:
    """OptionError when an output would replace the history file or its WAL (`history
    export -o` naming the history wrote the CSV over it)."""
    if history is not None:
        real = os.path.realpath(history)  # SQLite's -wal: beside the file a symlink names
        check_outputs_spare(args, [history, real + "-wal", real + "-shm"])


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before anything is read or probed, an output that cannot be written (a block
    device, a folder, a missing folder, a standard output closed at start: the main output,
    without -o, is standard output), then two outputs naming one place."""
    for _, attr in _OUTPUT_OPTIONS:
        path = getattr(args, attr, None)
        if path is not None or attr == "output":
            check_output(path or "-")
    _check_outputs_apart(args)


def _check_outputs_apart(args: argparse.Namespace) -> None:
    """OptionError when two outputs name the same place: both on standard output their texts
    would run into each other, and of one file the later write would replace the earlier."""
    seen: dict[tuple[str, str | int | None], str] = {}
    for option, attr in _OUTPUT_OPTIONS:
        path = getattr(args, attr, None)
        if attr == "output" and path is None:
            path = "-"
        if path is None:
            continue
        try:
            target = resolve_output(path)
        except OutputError:
            continue
        if target.kind == "device":  # /dev/null and the like take any number of outputs
            continue
        # One file by its real path: `d/x` and `dlink/x` (dlink -> d), `x` and `d/../x`.
        key = (target.kind, target.fd if target.kind == "stream" else os.path.realpath(target.path))
        named = (
            f"{option} {path}" if attr != "output" or path != "-" else f"the {args.format} report"
        )
        if key in seen:
            where = "standard output" if target.kind == "stream" and target.fd == 1 else path
            raise OptionError(
                f"{named} and {seen[key]} both write to {where}: send one of them to another"
                " file (-o FILE for the main report)"
            )
        seen[key] = named


def write_outputs(args: argparse.Namespace, report: Report) -> None:
    """Write every output asked for: --html, --junit, --json, --prom-textfile, then the
    main one (-o, or standard output). One that cannot be written does not stop the others;
    the failures are then raised together as one OutputError (exit 4)."""
    from fleetmon.cli.exports import file_exports, format_chunks

    # JSON, Prometheus and InfluxDB are written as their renderers yield them: the whole
    # text at once was the run's peak memory (~60 MB more at 1,000 hosts).
    main = (
        json_chunks(report) if args.format == "json" else format_chunks(args.format, report, args)
    )
    if main is None:
        main = (render(args.format, report, args),)
    outputs: list[tuple[str, Callable[[], Iterable[str]]]] = []
    if args.html:
        outputs.append((args.html, lambda: (render("html", report),)))
    if args.junit:
        from fleetmon.render.junit import render_junit

        passes = getattr(args, "junit_passes", "summary")
        outputs.append(
            (args.junit, lambda: (render_junit(report, fail_on=args.fail_on, passes=passes),))
        )
    if args.json_out:
        outputs.append((args.json_out, lambda: json_chunks(report)))
    outputs += file_exports(args, report)
    outputs.append((args.output or "-", lambda: main))
    failed = []
    for path, chunks in outputs:
        try:
            write_output(path, chunks())
        except OutputError as exc:
            failed.append(str(exc))
    if failed:
        raise OutputError("; ".join(failed))


@contextlib.contextmanager
def lean_gc() -> Iterator[None]:
    """Fewer, cheaper garbage collections for the run, restored after.

    What the imports made lives until exit: frozen, no full collection walks it again. The
    run makes many short-lived objects per host; a larger first threshold collects them in
    fewer passes. Collection was ~8% of the client's CPU at 100 hosts, this makes it <1%.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
