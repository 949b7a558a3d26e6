"""`fleetmon simulate --fill-history PATH` (I/O edge): weeks of runs of the simulated fleet
written to a history in seconds, on a simulated clock, without SSH.

The fleet answers one probe for real and the pipeline analyses it, as `fleetmon run` would;
sim/timeline.py moves its figures over the period, with trends built in. Then `fleetmon
history`, `fleetmon report` and the HTML report have something to show.
"""

from __future__ import annotations

import argparse
import sys
import time

from fleetmon import __version__
from fleetmon.analyse.pipeline import analyse_host, report_from_hosts
from fleetmon.cli.recording import Recorder
from fleetmon.errors import OptionError
from fleetmon.history import record_run
from fleetmon.model import HostSpec, RawResult, RunInfo, Status
from fleetmon.model.durations import DurationError, parse_duration
from fleetmon.sim.answer import Answer, ScriptInfo
from fleetmon.sim.captures import load_captures
from fleetmon.sim.containers import with_containers
from fleetmon.sim.hosts import HostProfile, endpoints, make_fleet, parse_faults
from fleetmon.sim.render import Moment
from fleetmon.sim.server import local_df
from fleetmon.sim.timeline import timeline

NONCE = "5e" * 8
#: The most runs one --fill-history writes (a million: days of writing, not an endless loop).
MAX_RUNS = 1_000_000


def _raw(host: HostProfile, answer: Answer | None, t0: float) -> RawResult:
    spec = HostSpec(host.name, host.address, port=host.port, groups=(host.kind, host.rack))
    if answer is None:
        return RawResult(spec, Status.UNREACHABLE, f"simulated fault: {host.fault}")
    stdout = answer.first(Moment(0.0, t0)) + answer.second(Moment(1.0, t0 + 1.0))
    return RawResult(spec, Status.OK, None, stdout=stdout, exit_status=0, nonce=NONCE)


def fill_history(args: argparse.Namespace) -> int:
    """Write --days of runs every --every of the simulated fleet into --fill-history."""
    try:
        every = parse_duration(args.every)
    except DurationError as exc:
        raise OptionError(f"--every: {exc}") from None
    runs = int(args.days * 86_400 // every)
    if runs < 1:
        raise OptionError("--days: shorter than one --every")
    now = int(time.time()) // every * every
    start = now - (runs - 1) * every
    if start < 0:  # checked before the history is created: nothing is left behind
        raise OptionError(
            f"--days {args.days:g}: the runs would start before 1970 "
            f"(at most {now // 86_400:,} days back from now)"
        )
    if runs > MAX_RUNS:
        raise OptionError(
            f"--days {args.days:g}: {runs:,} runs of --every {args.every}, at most "
            f"{MAX_RUNS:,}: fewer days or a longer --every"
        )
    where = endpoints(args.base_address, args.hosts, args.port, args.ports_per_address)
    fleet = with_containers(
        make_fleet(args.hosts, args.kind, args.seed, parse_faults(args.faults), where),
        getattr(args, "containers", 0),  # a Namespace built by hand (tests) may lack it
        args.seed,
    )
    cap = load_captures()
    df_k, df_i = local_df("-k"), local_df("-i")
    info = ScriptInfo(nonce=NONCE, interval_s=1.0, hypervisor="auto")
    raws = [
        _raw(h, None if h.fault else Answer(cap, h, info, df_k, df_i), float(start)) for h in fleet
    ]
    run = RunInfo(__version__, "", 1.0, f"simulate --hosts {args.hosts} --kind {args.kind}")
    base = report_from_hosts([analyse_host(r) for r in raws], run)
    began = time.monotonic()
    with Recorder(args.fill_history, args.history_keep, lock=True, wait_s=0.0) as rec:
        assert rec.hist is not None or rec.error is not None
        if rec.error is not None:
            raise rec.error
        assert rec.hist is not None
        for n, report in enumerate(timeline(base, start, runs, every, args.seed), 1):
            record_run(rec.hist, report, rec.keep)
            if sys.stderr.isatty() and (n % 200 == 0 or n == runs):
                sys.stderr.write(
                    f"\rfleetmon simulate: {n}/{runs} runs written, "
                    f"{time.monotonic() - began:.0f} s"
                )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    sys.stdout.write(
        f"{runs} runs of {args.hosts} simulated hosts, every {args.every} over {args.days:g} "
        f"days, written to {args.fill_history} in {time.monotonic() - began:.1f} s\n"
    )
    return 0
