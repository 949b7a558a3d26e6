"""`fleetmon run INVENTORY` (I/O edge): collect, analyse, judge, report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import sys

from fleetmon import __version__
from fleetmon.analyse.pipeline import analyse_host, host_key_notes
from fleetmon.cli.common import build_report, lean_gc, rule_set
from fleetmon.cli.recording import finish, recorder
from fleetmon.cli.runtime import Progress, run_async, utc_now
from fleetmon.cli.sources import in_selection_order, open_inventory, plan, warn
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, collect_each
from fleetmon.inventory import check_key_files, fleetmon_vars
from fleetmon.io.atomic import check_output, default_lock_path, run_lock
from fleetmon.io.rawstore import RawWriter
from fleetmon.model import HostReport, HostSpec, RawResult, RunInfo, Status


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


def command(args: argparse.Namespace) -> int:
    """`fleetmon run INVENTORY`: collect, analyse, report."""
    opened = open_inventory(args)
    inventory = opened.inventory
    selected = inventory.select(args.limit, warn=warn)
    if not selected:
        sys.stderr.write(f"fleetmon: {inventory.path}: the inventory has no hosts to collect\n")
        return 3  # UNKNOWN: nothing was looked at
    hosts, skipped = plan(opened, selected)
    check_key_files(inventory, hosts)
    rules, rule_files = rule_set(args)
    outputs = (args.output, args.json_out, args.html, args.junit)
    for path in filter(None, outputs):
        check_output(path)  # a block device, a folder, a missing folder: before collecting
    lock_path = args.lock or default_lock_path(*outputs)  # beside a regular file only
    lock = (
        run_lock(lock_path, args.lock_wait)
        if lock_path and not args.no_lock
        else contextlib.nullcontext()
    )
    rec = recorder(args, rules)
    with lock, rec, lean_gc():
        run = RunInfo(
            fleetmon_version=__version__,
            started_at=utc_now(),
            interval_s=args.interval,
            inventory=inventory.path,
            rule_files=rule_files,
            limit=args.limit,
            host_key_notes=host_key_notes(hosts, args.accept_new_host_keys),
            notes=rec.notes,
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
            for i, raw in enumerate(skipped, len(hosts)):
                writer.add(i, raw)
            writer.finish(run)
        analysed = in_selection_order(selected, [*analysed, *map(analyse_host, skipped)])
        gc.freeze()  # the analysed hosts live until exit: rules and renderers skip them
        specs = {h.name: h for h in [*hosts, *(r.host for r in skipped)]}
        analysed, past = rec.prepare(rules, analysed, run.started_at)
        report = build_report(args, analysed, specs, run, rules, inventory, past, rec.states)
        finish(args, report, rec)  # the outputs, then the history
    return report.exit_code
