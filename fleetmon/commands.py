"""The subcommands (I/O edge): run, report, inventory, rules. Each returns an exit code."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from fleetmon import __version__
from fleetmon.cli import Progress, run_async, utc_now
from fleetmon.collect import CollectOptions, collect_each
from fleetmon.errors import OptionError
from fleetmon.health import exit_code
from fleetmon.inventory import (
    Inventory,
    check_key_files,
    fleetmon_vars,
    load_inventory,
    render_graph,
    render_host,
    render_list,
)
from fleetmon.model import Finding, HostReport, HostSpec, RawResult, Report, RunInfo, Status
from fleetmon.output import default_lock_path, run_lock, write_atomic, write_atomic_chunks
from fleetmon.parallel import analyse_many
from fleetmon.pipeline import analyse_host, host_key_notes, report_from_hosts
from fleetmon.probe import ProbeOptions
from fleetmon.rawstore import RawWriter, iter_raw
from fleetmon.render.json import json_chunks, render_json
from fleetmon.rules import RuleSet, default_rule_files, evaluate, load_rules, render_rule_list


def render(fmt: str, report: Report) -> str:
    """The report as text, json, html or nagios.

    Each renderer is imported when first asked for: start-up time is client CPU that every
    run pays (3 ms per host at 100 hosts), and a JSON run needs no HTML templates.
    """
    if fmt == "text":
        from fleetmon.render.text import render_text

        return render_text(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        from fleetmon.render.html import render_html

        return render_html(report)
    if fmt == "nagios":
        from fleetmon.render.nagios import render_nagios

        return render_nagios(report)
    raise OptionError(f"unknown format {fmt!r}")  # pragma: no cover


def playbooks_dir() -> Path:
    """The shipped rule files: $FLEETMON_PLAYBOOKS, else `playbooks/` beside the package."""
    env = os.environ.get("FLEETMON_PLAYBOOKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "playbooks"


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand named on the command line."""
    if args.command == "run":
        return cmd_run(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "inventory":
        return cmd_inventory(args)
    if args.command == "rules":
        return cmd_rules(args)
    if args.command == "simulate":
        from fleetmon.simulate import run_simulate

        code: int = run_simulate(args)
        return code
    raise OptionError(f"unknown command {args.command!r}")  # pragma: no cover


def _rule_set(args: argparse.Namespace) -> tuple[RuleSet | None, tuple[str, ...]]:
    if getattr(args, "no_rules", False):
        return None, ()
    files = args.rules or default_rule_files(str(playbooks_dir()))
    return load_rules(files), tuple(files)


def probe_options(interval_s: float, spec: HostSpec) -> ProbeOptions:
    """The probe settings of one host, from its inventory variables."""
    fv = fleetmon_vars(spec)
    return ProbeOptions(
        interval_s=interval_s,
        hypervisor=fv.hypervisor,
        virsh_uri=fv.virsh_uri or "qemu:///system",
        become=spec.become,
        become_user=spec.become_user,
    )


def host_collect_options(opts: CollectOptions, spec: HostSpec) -> CollectOptions:
    """The run's options with the host's own fleetmon_connect_timeout/_timeout/_output_cap."""
    fv = fleetmon_vars(spec)
    if fv.connect_timeout_s is None and fv.timeout_s is None and fv.output_cap_bytes is None:
        return opts
    return dataclasses.replace(
        opts,
        connect_timeout_s=fv.connect_timeout_s or opts.connect_timeout_s,
        timeout_s=fv.timeout_s or opts.timeout_s,
        output_cap_bytes=fv.output_cap_bytes or opts.output_cap_bytes,
    )


def _report(
    args: argparse.Namespace,
    hosts: Sequence[HostReport],
    specs: Mapping[str, HostSpec],
    run: RunInfo,
    rules: RuleSet | None,
    inventory: Inventory | None,
) -> Report:
    evaluator = None
    if rules is not None:

        def match(pattern: str) -> set[str]:
            if inventory is not None:
                return {h.name for h in inventory.select_quiet(pattern)}
            return _match_from_specs(pattern, list(specs.values()))

        def evaluator(
            hosts: tuple[HostReport, ...], fleet: Mapping[str, object]
        ) -> tuple[tuple[HostReport, ...], tuple[Finding, ...]]:
            return evaluate(rules, hosts, specs, fleet, match)  # type: ignore[arg-type]

    def code(hosts: tuple[HostReport, ...], fleet_findings: tuple[Finding, ...]) -> int:
        return exit_code(hosts, fleet_findings, unreachable=args.unreachable, fail_on=args.fail_on)

    return report_from_hosts(hosts, run, evaluate=evaluator, exit_code=code)


def _match_from_specs(pattern: str, specs: list[HostSpec]) -> set[str]:
    from fleetmon.inventory.patterns import match_pattern

    return set(match_pattern(pattern, specs))


def _write_outputs(args: argparse.Namespace, report: Report) -> None:
    # JSON is written as render.json yields it: the whole text at once was the run's peak
    # memory (~60 MB more at 1,000 hosts).
    main_text = render(args.format, report) if args.format != "json" else None
    extra: list[tuple[str, str]] = []
    if args.html:
        extra.append((args.html, render("html", report)))
    if args.junit:
        from fleetmon.render.junit import render_junit

        extra.append((args.junit, render_junit(report, fail_on=args.fail_on)))
    for path, text in extra:
        write_atomic(path, text)
    if args.json_out:
        write_atomic_chunks(args.json_out, json_chunks(report))
    if args.output:
        if main_text is None:
            write_atomic_chunks(args.output, json_chunks(report))
        else:
            write_atomic(args.output, main_text)
    else:
        for chunk in json_chunks(report) if main_text is None else [main_text]:
            sys.stdout.write(chunk)
        sys.stdout.flush()


@contextlib.contextmanager
def _lean_gc() -> Iterator[None]:
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


def cmd_run(args: argparse.Namespace) -> int:
    """`fleetmon run INVENTORY`: collect, analyse, report."""
    inventory = load_inventory(args.inventory)
    hosts = inventory.select(args.limit)
    check_key_files(inventory, hosts)
    rules, rule_files = _rule_set(args)
    for path in (args.output, args.html, args.json_out, args.junit):
        if path and not Path(path).resolve().parent.is_dir():
            raise OptionError(f"cannot write {path}: its folder does not exist")
    lock_path = args.lock or (default_lock_path(args.output) if args.output else None)
    lock = (
        run_lock(lock_path, args.lock_wait)
        if lock_path and not args.no_lock
        else contextlib.nullcontext()
    )
    with lock, _lean_gc():
        run = RunInfo(
            fleetmon_version=__version__,
            started_at=utc_now(),
            interval_s=args.interval,
            inventory=args.inventory,
            rule_files=rule_files,
            limit=args.limit,
            host_key_notes=host_key_notes(hosts, args.accept_new_host_keys),
        )
        opts = CollectOptions(
            interval_s=args.interval,
            forks=args.forks,
            connect_timeout_s=args.connect_timeout,
            timeout_s=args.timeout,
            accept_new_host_keys=args.accept_new_host_keys,
            known_hosts=args.known_hosts,
            output_cap_bytes=args.output_cap,
        )
        progress = Progress(len(hosts), enabled=not args.quiet)
        writer = RawWriter(args.save_raw) if args.save_raw else None

        def on_done(index: int, raw: RawResult) -> HostReport:
            # Analysed as it arrives (the loop idles while other hosts' probes sleep) and
            # its raw output dropped here, so the run never holds every host's output.
            progress(raw.status is Status.OK)
            if writer is not None:
                writer.add(index, raw)
            return analyse_host(raw)

        try:
            analysed = run_async(
                collect_each(
                    hosts,
                    opts,
                    functools.partial(probe_options, args.interval),
                    on_done,
                    host_options=functools.partial(host_collect_options, opts),
                )
            )
        finally:
            progress.finish()
        if writer is not None:
            writer.finish(run)
        gc.freeze()  # the analysed hosts live until exit: rules and renderers skip them
        report = _report(args, analysed, {h.name: h for h in hosts}, run, rules, inventory)
        _write_outputs(args, report)
    return report.exit_code


#: Hosts read from a --save-raw folder per analysis batch (~40 KB of raw text each).
REPORT_BATCH = 2000


def cmd_report(args: argparse.Namespace) -> int:
    """`fleetmon report DIR`: recompute the reports from saved raw output."""
    run, raws = iter_raw(args.raw_dir)
    rules, rule_files = _rule_set(args)
    run = RunInfo(
        fleetmon_version=__version__,
        started_at=run.started_at,
        interval_s=run.interval_s,
        inventory=run.inventory,
        rule_files=rule_files,
        limit=run.limit,
        host_key_notes=run.host_key_notes,
    )
    with _lean_gc():
        # Raw text a batch at a time: read, analysed over every core (forked workers inherit
        # the batch), dropped. Memory stays bounded by the batch, not the fleet.
        specs: dict[str, HostSpec] = {}
        hosts: list[HostReport] = []
        batch: list[RawResult] = []
        for raw in raws:
            specs[raw.host.name] = raw.host
            batch.append(raw)
            if len(batch) >= REPORT_BATCH:
                hosts.extend(analyse_many(batch))
                batch = []
        hosts.extend(analyse_many(batch))
        del batch
        # The analysed fleet lives until exit: no collection needs to walk it again.
        gc.freeze()
        report = _report(args, hosts, specs, run, rules, None)
        _write_outputs(args, report)
    return report.exit_code


def cmd_inventory(args: argparse.Namespace) -> int:
    """`fleetmon inventory INVENTORY --graph|--list|--host NAME`."""
    inventory = load_inventory(args.inventory)
    if args.host:
        text = render_host(inventory, args.host)
    elif args.list:
        text = render_list(inventory)
    else:
        text = render_graph(inventory)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    """`fleetmon rules lint FILE...` and `fleetmon rules list INVENTORY`."""
    if args.rules_command == "lint":
        rs = load_rules(args.files)
        sys.stdout.write(f"{len(rs.rules)} rules OK in {len(args.files)} file(s)\n")
        return 0
    inventory = load_inventory(args.inventory)
    hosts = inventory.select(args.limit)
    files = args.rules or default_rule_files(str(playbooks_dir()))
    sys.stdout.write(
        render_rule_list(
            load_rules(files), hosts, lambda p: {h.name for h in inventory.select_quiet(p)}
        )
    )
    return 0
