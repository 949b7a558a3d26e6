"""Cluster runs, the client's connection (I/O): a Dask client made in a background thread
while the run reads its inventory and rules, closed in the background while it writes.

With `local:N` the session starts the cluster itself: N worker processes forked from one
process that imported Dask and fleetmon once, with Dask's periodic bookkeeping (profiler,
event-loop ticks, system monitor, spilling, work stealing) cut to what a run of a few long
tasks needs. A `tcp://` cluster's workers are the user's: the README says how to start
them the same way.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import signal
import socket
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from fleetmon.errors import OptionError

INSTALL_HINT = "--cluster needs Dask's distributed scheduler: pip install 'fleetmon[cluster]'"

#: The client's own event loop, with any cluster: Dask checks the loop's health every 20 ms
#: (`distributed.admin.tick`), 50 wake-ups a second for a warning a run never needs.
CLIENT_CONFIG: dict[str, Any] = {"distributed.admin.tick.interval": "1s"}

#: The scheduler and workers of `local:N` (the nanny hands the workers its config).
LOCAL_CONFIG: dict[str, Any] = {
    **CLIENT_CONFIG,
    # A task whose worker dies fails at once: fleetmon retries it on another worker.
    "distributed.scheduler.allowed-failures": 0,
    # Each worker runs one shard at a time and fleetmon places them: nothing to steal, and
    # the stealing extension wakes up every 100 ms to look.
    "distributed.scheduler.work-stealing": False,
    # Nor any data to move between workers: results go straight to the client.
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
    # The statistical profiler walks the running task's stack every 10 ms for a dashboard
    # page a run never shows.
    "distributed.worker.profile.enabled": False,
    # The system monitor (psutil CPU, memory, disk and network counters, twice a second)
    # feeds the dashboard; memory is still measured for the pause and terminate limits.
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    # A shard's result (a few MB) is never spilled to disk; the worker still pauses, then is
    # restarted, past 80% and 95% of its memory limit, checked once a second.
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.monitor-interval": "1s",
    # Workers forked from one server process that imported Dask and fleetmon once, instead
    # of N fresh interpreters each importing them (~0.4 s of CPU and ~1 s of wall each).
    "distributed.worker.multiprocessing-method": "forkserver",
}

#: What the fork server imports before forking workers: Dask's own list
#: (distributed.utils.get_mp_context), the client's main module and the shard's task.
FORKSERVER_PRELOAD = ("distributed", "dask", "msgpack", "cloudpickle", "tornado", "toolz")
TASK_MODULE = "fleetmon.cluster.task"


def load_distributed() -> ModuleType:
    """The `distributed` package, or OptionError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise OptionError(INSTALL_HINT) from None
    return distributed


#: The Dask schemes a scheduler is reached by: `tcp://`, and `tls://` with Dask's TLS
#: settings (ws, wss and ucx need packages fleetmon does not install; inproc is one
#: process's own).
SCHEMES = ("tcp", "tls")
_ADDRESS = re.compile(
    r"(?P<scheme>[a-z]+)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+)(?::(?P<port>[0-9]{1,5}))?/?"
)


def parse_cluster(text: str) -> tuple[str, int]:
    """`local:N` -> ("local", N); a scheduler address (`tcp://host:8786`) -> (it, 0).
    OptionError for anything else, saying what was expected."""
    if text.startswith("local:"):
        # ASCII digits only: str.isdigit() is true of '²' (int() then fails) and of '٣'.
        n = re.fullmatch(r"0*([0-9]{1,3})", text.removeprefix("local:"))
        if n is None or not 1 <= int(n[1]) <= 256:
            raise OptionError(f"--cluster {text!r}: local:N needs a number of workers, 1-256")
        return "local", int(n[1])
    found = _ADDRESS.fullmatch(text)
    if found is None:
        raise OptionError(
            f"--cluster {text!r}: expected a Dask scheduler address (tcp://HOST:PORT) or local:N"
        )
    if found["scheme"] not in SCHEMES:
        raise OptionError(
            f"--cluster {text!r}: unknown scheme {found['scheme']!r}: tcp:// or tls://"
            " (with Dask's TLS settings)"
        )
    port = found["port"]
    if port is None or not 1 <= int(port) <= 65535:
        raise OptionError(
            f"--cluster {text!r}: expected the scheduler's port, 1-65535"
            " (`dask scheduler` listens on 8786 by default)"
        )
    return text.rstrip("/"), 0


#: The Dask settings a `tls://` client needs (`distributed.comm.tls` in a Dask
#: configuration file, or these variables).
TLS_SETTINGS = (
    "DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"
    " and DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"
)


def check_tls(address: str, distributed: ModuleType) -> None:
    """OptionError when `address` is tls:// and Dask's configuration gives the client no
    TLS context (Dask would fail inside its connect with a TypeError)."""
    if not address.startswith("tls://"):
        return
    try:
        args = distributed.Security().get_connection_args("client")
    except (OSError, ValueError) as exc:  # a file that cannot be read, a key not PEM
        import dask

        named = ", ".join(
            f"{k} {dask.config.get('distributed.comm.tls.' + k, None)}"
            for k in ("ca-file", "client.cert", "client.key")
        )
        raise OptionError(f"--cluster {address}: Dask's TLS settings ({named}): {exc}") from None
    if args.get("ssl_context") is None:
        raise OptionError(
            f"--cluster {address}: tls:// needs Dask's TLS settings"
            f" (distributed.comm.tls: ca-file, client.cert, client.key; or {TLS_SETTINGS})"
        )


def _forkserver(preload: Sequence[str]) -> None:
    """Start the fork server now, importing Dask's list, the client's main module and the
    task's modules: in its own process, beside the client's own start. Dask's
    get_mp_context would set its own list, but only when it starts the server."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", *FORKSERVER_PRELOAD, *preload, TASK_MODULE])
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _stop_forkserver() -> None:
    """Stop the fork server and reap it: its CPU and its workers' (it reaped them) are then
    this process's children's, as spawned workers' would be. Killed first: the workers it
    forked are gone, and its interpreter's orderly exit (0.2-0.5 s of a process holding
    Dask and fleetmon) would serve nothing."""
    from multiprocessing import forkserver

    # Private names (the standard library's own tests use them); without them the server
    # exits by itself when this process does, as it would anyway.
    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    stop = getattr(server, "_stop", None)
    if pid is not None and stop is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        stop()


#: How long the look at why Dask could not connect may take (a name lookup, a TCP connect).
WHY_S = 3.0


def why_unreachable(address: str, exc: BaseException, timeout_s: float = WHY_S) -> str:
    """What to add, as " (WHY)", to Dask's "Timed out trying to connect to ADDRESS after
    10 s" (all it says once its retries run out): a mistyped port (Connection refused) or
    host name (Name or service not known) read as a firewall's silence. WHY is its last
    attempt's error when that says something, else one plain TCP connect's (the last
    attempt is often cut short by the timeout); "" when neither says more (a silent port)."""
    if not isinstance(exc, OSError) or not str(exc).startswith("Timed out trying to connect"):
        return ""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    said = root.strerror if isinstance(root, OSError) else None
    if root is not exc and said and not isinstance(root, TimeoutError):
        return f" ({said})"
    found = _ADDRESS.fullmatch(address)
    if found is None or found["port"] is None:
        return ""
    try:
        with socket.create_connection((found["host"].strip("[]"), int(found["port"])), timeout_s):
            return ""
    except TimeoutError:
        return ""
    except OSError as err:  # gaierror, ConnectionRefusedError...
        return f" ({err.strerror or err})"


class Session:
    """A Dask client being made in a background thread: `client()` waits for it, `close()`
    ends it (the cluster with it, for local:N), `close_soon()` starts that in a thread."""

    def __init__(self, text: str, timeout_s: float, preload: Sequence[str] = ()) -> None:
        self.address, self.workers = parse_cluster(text)
        self.text, self.timeout_s, self.preload = text, timeout_s, tuple(preload)
        self._stack = contextlib.ExitStack()
        self._client: Any = None
        self._error: BaseException | None = None
        self._closing: threading.Thread | None = None
        #: client() gave up waiting for the connecting thread (close() does not wait).
        self._abandoned = False
        self._started = threading.Thread(target=self._start, name="fleetmon-cluster", daemon=True)

    @property
    def local(self) -> bool:
        return self.address == "local"

    def prestart(self) -> Session:
        """For local:N, start the process the workers are forked from (it imports Dask and
        fleetmon while this process does the same): call before importing Dask here."""
        if self.local:
            self._stack.callback(_stop_forkserver)
            _forkserver(self.preload)
        return self

    def start(self) -> Session:
        """Begin connecting (or starting the local cluster) in the background."""
        self._started.start()
        return self

    def _start(self) -> None:
        try:
            self._client = self._connect()
        except BaseException as exc:  # handed to the thread that asks for the client
            self._error = exc

    def _connect(self) -> Any:
        distributed = load_distributed()
        import dask

        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            # Dask logs every worker and client coming and going at INFO, and what it then
            # raises (a lost scheduler, a dead worker) at ERROR with its traceback: the run
            # says those in its hosts' statuses and notes (--debug shows Dask's own words).
            # Nor its CRITICAL: a result the client cannot unpickle (another fleetmon's) is
            # logged so, with its traceback, before it is raised to the run.
            quiet = logging.CRITICAL + 1
            for name in list(logging.root.manager.loggerDict):
                if name.startswith("distributed."):  # Dask's config sets some (client)
                    logging.getLogger(name).setLevel(quiet)
            logging.getLogger("distributed").setLevel(quiet)
        stack = self._stack
        if self.local:
            stack.enter_context(dask.config.set(LOCAL_CONFIG))
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    # The scheduler always serves HTTP: on a free loopback port (8787 may
                    # be another cluster's), with no dashboard and no routes.
                    dashboard_address="127.0.0.1:0",
                    scheduler_kwargs={"dashboard": False},
                    silence_logs=logging.ERROR,
                )
            )
            return stack.enter_context(distributed.Client(cluster))
        stack.enter_context(dask.config.set(CLIENT_CONFIG))
        try:
            return stack.enter_context(distributed.Client(self.address, timeout=self.timeout_s))
        except Exception as exc:  # refused, silent, TLS against plain TCP (a ValueError)...
            why = (str(exc) or type(exc).__name__) + why_unreachable(self.address, exc)
            raise OSError(f"cannot reach the Dask scheduler at {self.address}: {why}") from exc

    def _bound_s(self) -> float | None:
        """How long a scheduler's client may take to be made: Dask's timeout bounds its
        connect, not its handshake, and a port answered by something else (a web server,
        a listener that never speaks) held the run for ever. local:N: unbounded (its
        workers' start under load)."""
        return None if self.local else self.answer_s()

    def answer_s(self) -> float:
        """How long the scheduler may take to answer the client (its handshake, a question
        mid-run): twice the connect timeout and 5 s."""
        return 2 * self.timeout_s + 5

    def client(self) -> Any:
        """The connected client, once it is; OSError when the scheduler cannot be reached."""
        self._started.join(self._bound_s())
        if self._started.is_alive():
            self._abandoned = True
            raise OSError(
                f"cannot reach the Dask scheduler at {self.address}: no Dask handshake within"
                f" {self._bound_s():g} s (is a Dask scheduler listening there?)"
            )
        if self._error is not None:
            raise self._error
        return self._client

    def close_soon(self) -> None:
        """Close in a thread: the workers stop while the client goes on with its report."""
        if self._closing is None and self._started.is_alive() is False:
            self._closing = threading.Thread(target=self._close, name="fleetmon-cluster-close")
            self._closing.start()

    def _close(self) -> None:
        with contextlib.suppress(Exception):  # a cluster that failed to close is not the run's
            self._stack.close()

    def close(self, wait: bool = True) -> None:
        """Close (or wait for the closing started by close_soon). A client still being made
        is waited for up to the bound (`wait` false: not at all, a run ending on an error
        needs none); local:N's cluster always, to stop its workers."""
        if self._abandoned:
            return  # still stuck in its handshake: a daemon thread, ended with the run
        if self._started.ident is not None:
            # A scheduler that accepts and never speaks (or is stopped) held the run for ever.
            self._started.join(None if self.local else self._bound_s() if wait else 0)
            if self._started.is_alive():
                self._abandoned = True
                return
        if self._closing is None:
            self._close()
        else:
            self._closing.join()
