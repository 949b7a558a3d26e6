"""`fleetmon serve INVENTORY --listen 127.0.0.1:9712` (I/O edge): an exporter and a live report
over the streaming collector.

    /metrics      Prometheus/OpenMetrics exposition of the latest tick (render.prom; with
                  --export-groups, a `groups` label as run's exports)
    /             the HTML report of the latest tick, refreshing itself every tick
    /api/report   the JSON report of the latest tick
    /healthz      200 while samples come, 503 before the first, when they stop and when
                  no host is live (saying which)

Before the first tick every page answers 503 `no tick yet` (servepages.Holder.report).

A request only reads the latest tick's report (rendered once per tick and kept), so it never
waits for SSH. The HTTP server (servehttp and servenet: the standard library's, one
thread per connection) runs beside the collector's event loop. Anything but loopback needs the
web-config file's TLS and basic auth, or --insecure-listen. SIGHUP reloads the inventory,
rules and web config, SIGTERM stops cleanly (exit 0); systemd's notify protocol is spoken
when NOTIFY_SOCKET is set (contrib/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from typing import Any

from fleetmon.cli.live import LiveFleet, Plan, load_plan, run_live
from fleetmon.cli.servehttp import Server, make_server, web_settings
from fleetmon.cli.servepages import Holder
from fleetmon.errors import FleetmonError

log = logging.getLogger(__name__)


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about the service's state, when it runs us."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(path)
        s.sendall(state.encode())


class _Watch:
    """One LiveFleet streaming on the loop: started for a plan, stopped for the next."""

    def __init__(
        self, args: argparse.Namespace, plan: Plan, holder: Holder, seed: LiveFleet | None = None
    ) -> None:
        self.fleet = LiveFleet(args, plan, seed)
        holder.fleet = self.fleet
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(run_live(self.fleet, self.stop))

    async def close(self) -> None:
        self.fleet.stop_soon()
        self.stop.set()
        await asyncio.gather(self.task, return_exceptions=True)


async def _reloaded(
    args: argparse.Namespace, server: Server, holder: Holder, watch: _Watch
) -> _Watch:
    """SIGHUP: the inventory, rules and web config read again; the watch restarted on the
    new plan. Anything invalid keeps everything as it was, with one error line."""
    try:
        plan = load_plan(args)
        auth, tls = web_settings(args)
    except FleetmonError as exc:
        log.error("reload refused, still watching the old inventory: %s", exc)
        return watch
    if server.tls is not None and tls is None:
        # Same scheme throughout: a TLS listener does not turn into plain HTTP.
        log.error("reload: the web config has no TLS any more: kept the old TLS and users")
    else:
        server.auth, server.tls = auth, tls  # taken by each new connection
    holder.previous = watch.fleet.kept() or holder.previous
    await watch.close()
    log.info("reloaded: %d hosts", len(plan.hosts))
    return _Watch(args, plan, holder, seed=watch.fleet)


async def _first(*aws: asyncio.Future[Any]) -> None:
    await asyncio.wait(aws, return_when=asyncio.FIRST_COMPLETED)


def watchdog_every_s() -> float | None:
    """Half systemd's WatchdogSec (WATCHDOG_USEC, when WATCHDOG_PID is unset or this process),
    as sd_watchdog_enabled(3) reads it; None without a watchdog."""
    usec, pid = os.environ.get("WATCHDOG_USEC", ""), os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def _watchdog(every_s: float | None) -> None:
    """WATCHDOG=1 while the event loop runs: a loop stuck for WatchdogSec (a hung collector)
    stops the pings, and systemd restarts the service."""
    while every_s is not None:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(every_s)


async def _serve(args: argparse.Namespace, plan: Plan, server: Server, holder: Holder) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()

    def on_stop(signum: int, frame: object) -> None:
        # Python's own handler, not the loop's: it runs between two bytecodes of this
        # thread even while one step of a saturated loop takes seconds (the loop's would
        # wait for that step), and it stops the analysis first so the steps get short.
        if holder.fleet is not None:
            holder.fleet.stop_soon()
        loop.call_soon_threadsafe(stop.set)

    before = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    thread = threading.Thread(target=server.serve_forever, name="fleetmon-http", daemon=True)
    thread.start()
    host, port = str(server.server_address[0]), server.server_address[1]
    scheme = "https" if server.tls is not None else "http"
    where = f"[{host}]" if ":" in host else host
    log.info("serving %d hosts on %s://%s:%s/", len(plan.hosts), scheme, where, port)
    sd_notify("READY=1")
    watch = _Watch(args, plan, holder)
    pings = asyncio.ensure_future(_watchdog(watchdog_every_s()))
    try:
        while True:
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, reload)]
            try:
                await _first(watch.task, *waiters)
            finally:
                for w in waiters:
                    w.cancel()
            if watch.task.done():
                watch.task.result()  # the collector failed: raised here
            if stop.is_set():
                break
            reload.clear()
            sd_notify("RELOADING=1")
            watch = await _reloaded(args, server, holder, watch)
            sd_notify("READY=1")
    finally:
        pings.cancel()
        sd_notify("STOPPING=1")
        await watch.close()
        await asyncio.to_thread(server.shutdown)
        for sig, handler in before.items():
            signal.signal(sig, handler)
        log.info("stopped")


def command(args: argparse.Namespace) -> int:
    """`fleetmon serve`: until SIGTERM (exit 0)."""
    if not args.debug:
        logging.getLogger("fleetmon").setLevel(logging.INFO)
    holder = Holder(args.delay, groups=args.export_groups)
    server = make_server(args, holder)
    try:
        plan = load_plan(args)
        asyncio.run(_serve(args, plan, server, holder))
    finally:
        server.server_close()
    return 0
