"""`fleetmon run INVENTORY` (I/O edge): collect, analyse, judge, report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from fleetmon import __version__
from fleetmon.analyse.pipeline import analyse_host, host_key_notes
from fleetmon.cli.common import (
    build_report,
    check_history_spared,
    check_outputs,
    check_outputs_spare,
    lean_gc,
    output_paths,
    playbooks_dir,
    rule_set,
)
from fleetmon.cli.exports import check_exports
from fleetmon.cli.inputs import host_reads, rule_reads
from fleetmon.cli.options import TIMEOUT_MARGIN_S
from fleetmon.cli.progress import Progress
from fleetmon.cli.recording import finish, recorder
from fleetmon.cli.runtime import run_async, utc_now
from fleetmon.cli.sources import (
    DEFAULT_CONNECT_TIMEOUT_S,
    in_selection_order,
    open_inventory,
    plan,
    skip_unreadable_keys,
    warn,
)
from fleetmon.collect.probe import ProbeOptions
from fleetmon.collect.runner import CollectOptions, big_output, collect_each
from fleetmon.errors import OptionError
from fleetmon.history import resolve
from fleetmon.inventory import fleetmon_vars
from fleetmon.io.atomic import default_lock_path, run_lock
from fleetmon.io.rawstore import RawWriter
from fleetmon.model import HostReport, HostSpec, RawResult, RunInfo, Status
from fleetmon.rules.overrides import check_overrides

if TYPE_CHECKING:  # Dask is imported by a cluster run only
    from fleetmon.cluster.session import Session


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
    with _cluster_session(args) as session:
        return _run(args, session)


@contextlib.contextmanager
def _cluster_session(args: argparse.Namespace) -> Iterator[Session | None]:
    """With --cluster, its client being connected (its local cluster started) in the
    background while the inventory and rules load; closed before the run exits."""
    if args.cluster is None:
        yield None
        return
    from fleetmon.cluster.session import Session, check_tls, load_distributed, parse_cluster

    address = parse_cluster(args.cluster)[0]
    if args.save_raw:
        raise OptionError("--save-raw cannot be used with --cluster: raw output stays on workers")
    # The scheduler is reached while ansible.cfg is read: --connect-timeout, else the default.
    timeout_s = args.connect_timeout or DEFAULT_CONNECT_TIMEOUT_S
    session = Session(args.cluster, timeout_s, preload=("fleetmon.cli.main",))
    try:
        session.prestart()
        # Or say how to install it, or set up TLS, before anything is read or probed.
        check_tls(address, load_distributed())
        yield session.start()
    except BaseException:
        # The error is said at once: a client still connecting is not waited for.
        session.close(wait=False)
        raise
    session.close()


def _run(args: argparse.Namespace, session: Session | None) -> int:
    opened = open_inventory(args)
    inventory = opened.inventory
    selected = inventory.select(args.limit, warn=warn)
    if not selected:
        sys.stderr.write(f"fleetmon: {inventory.path}: the inventory has no hosts to collect\n")
        return 3  # UNKNOWN: nothing was looked at
    hosts, skipped = plan(opened, selected, args.interval)
    if args.cluster is None:  # with --cluster, the workers' files are read there
        hosts, skipped = skip_unreadable_keys(inventory, hosts, skipped)
    rules, rule_files = rule_set(args)
    if rules is not None:
        check_overrides(rules, hosts, inventory.origin)
    reads = [*opened.read, *host_reads(args, hosts), *rule_reads(args, str(playbooks_dir()))]
    _check_outputs(args, reads)
    rec = recorder(args, rules)
    with _lock_for(args), rec, lean_gc():
        run = _run_info(args, inventory.path, hosts, rule_files, rec.notes)
        found, run = _collect_and_analyse(args, hosts, skipped, run, session)
        analysed = in_selection_order(selected, found)
        gc.freeze()  # the analysed hosts live until exit: rules and renderers skip them
        specs = {h.name: h for h in [*hosts, *(r.host for r in skipped)]}
        analysed, past, run = rec.prepare(rules, analysed, run)
        report = build_report(args, analysed, specs, run, rules, inventory, past, rec.states)
        finish(args, report, rec, rules)  # the outputs, the history, then the exports
    return report.exit_code


def _check_outputs(args: argparse.Namespace, reads: list[str]) -> None:
    """Refuse, before any host is probed, an output that cannot be written, or that would
    replace a file the run reads (`reads`: the inventory, its vars, rules, keys...), the
    history or what --save-raw writes, and an export option that cannot work."""
    check_outputs(args)
    check_outputs_spare(args, reads)
    history = resolve(args.history)
    check_history_spared(args, history)
    if args.save_raw:
        if args.save_raw == "-":
            raise OptionError("--save-raw -: a folder to write, not standard output")
        # The folder's own files, and the folder itself while it is not one yet (a report
        # beside run.json, `-o DIR/report.html`, is fine).
        kept = [os.path.join(args.save_raw, n) for n in ("run.json", "raw")]
        if not os.path.isdir(args.save_raw):
            kept.append(args.save_raw)
        check_outputs_spare(args, kept, uses="--save-raw writes")
        _check_history_apart(history, kept)
    check_exports(args)


def _check_history_apart(history: str | None, kept: list[str]) -> None:
    """OptionError when the history is what --save-raw writes (run.json, raw/...): the raw
    run.json replaced the new history, leaving its -wal and -shm beside it."""
    if history is None:
        return
    where = os.path.realpath(history)
    for path in kept[:2]:
        real = os.path.realpath(path)
        if where == real or where.startswith(os.path.join(real, "")):
            raise OptionError(f"--history {history}: --save-raw writes {path}")


def _lock_for(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """The run's lock: --lock, else one beside a regular output file; none with --no-lock."""
    lock_path = args.lock or default_lock_path(*output_paths(args))
    if lock_path and not args.no_lock:
        return run_lock(lock_path, args.lock_wait)
    return contextlib.nullcontext()


def _run_info(
    args: argparse.Namespace,
    inventory: str,
    hosts: Sequence[HostSpec],
    rule_files: tuple[str, ...],
    notes: tuple[str, ...],
) -> RunInfo:
    """The facts at the top of the report; the run starts once the locks are held."""
    return RunInfo(
        fleetmon_version=__version__,
        started_at=utc_now(),
        interval_s=args.interval,
        inventory=inventory,
        rule_files=rule_files,
        limit=args.limit,
        host_key_notes=host_key_notes(hosts, args.accept_new_host_keys, args.known_hosts),
        notes=notes,
    )


def _collect_options(args: argparse.Namespace) -> CollectOptions:
    """The run-wide collection settings from the command line."""
    return CollectOptions(
        interval_s=args.interval,
        forks=args.forks,
        connect_timeout_s=args.connect_timeout,
        timeout_s=args.timeout if args.timeout is not None else args.interval + TIMEOUT_MARGIN_S,
        accept_new_host_keys=args.accept_new_host_keys,
        known_hosts=args.known_hosts,
        output_cap_bytes=args.output_cap,
    )


def _collect_and_analyse(
    args: argparse.Namespace,
    hosts: Sequence[HostSpec],
    skipped: Sequence[RawResult],
    run: RunInfo,
    session: Session | None = None,
) -> tuple[list[HostReport], RunInfo]:
    """The collected hosts, then the skipped ones, analysed, and the run with its duration and
    notes; with --save-raw, every raw result stored (the skipped after the collected) and the
    folder completed; with --cluster, the hosts collected and analysed by shards on Dask
    workers."""
    started = time.monotonic()
    notes: tuple[str, ...] = ()
    writer = RawWriter(args.save_raw) if args.save_raw else None
    if session is not None:
        from fleetmon.cli.clusterrun import collect_on_cluster

        opts = _collect_options(args)
        analysed, notes = collect_on_cluster(
            args,
            session,
            hosts,
            opts,
            functools.partial(probe_options, args.interval),
            functools.partial(host_collect_options, opts),
        )
    else:
        analysed = _collect(args, hosts, writer)
    analysed = [*analysed, *map(analyse_host, skipped)]
    duration_s = round(time.monotonic() - started, 3)
    run = dataclasses.replace(run, notes=(*run.notes, *notes), duration_s=duration_s)
    if writer is not None:
        for i, raw in enumerate(skipped, len(hosts)):
            writer.add(i, raw)
        writer.finish(run)
    return analysed, run


def _collect(
    args: argparse.Namespace, hosts: Sequence[HostSpec], writer: RawWriter | None
) -> list[HostReport]:
    """Every host probed and analysed as it answers, in inventory order."""
    opts = _collect_options(args)
    progress = Progress([h.name for h in hosts], not args.quiet, slow_after_s=args.interval)

    books = threading.Lock()  # a big host's on_done runs in a thread (offload)
    counters = resolve(args.history) is not None  # only a history reads them

    def on_done(index: int, raw: RawResult) -> HostReport:
        # Analysed as it arrives (the loop idles while other hosts' probes sleep) and
        # its raw output dropped here, so the run never holds every host's output.
        with books:
            progress.done(index, raw.status is Status.OK)
            if writer is not None:
                writer.add(index, raw)
        return analyse_host(raw, counters)

    try:
        return run_async(
            progress.track(
                collect_each(
                    hosts,
                    opts,
                    functools.partial(probe_options, args.interval),
                    on_done,
                    host_options=functools.partial(host_collect_options, opts),
                    on_start=progress.start,
                    offload=big_output,
                )
            )
        )
    finally:
        progress.finish()
