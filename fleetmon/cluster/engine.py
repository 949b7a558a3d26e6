"""Cluster runs, the client's side (I/O): shards submitted to a Dask scheduler, each retried
once, their hosts gathered; every host of the run comes back exactly once.

An attempt fails when its task raises, when its worker dies (Dask's KilledWorker) or when it
runs past the shard's deadline (counted from the start its worker announces, not from the
submission: a shard waiting for a free worker is not late). The second attempt goes to
another eligible worker when there is one: not the one it failed on, nor that worker
restarted by its nanny (the same `--name` at another address: the same machine, the same
missing route or key); a second failure makes the shard's hosts `shard_failed` or
`shard_timeout`, with both reasons.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any

from fleetmon import __version__
from fleetmon.cluster import entry
from fleetmon.cluster.shards import Shard, failed_hosts, site_resource
from fleetmon.cluster.task import TOPIC, ShardResult, checked
from fleetmon.cluster.wire import WireError, unloadable
from fleetmon.model import HostReport, Status

log = logging.getLogger(__name__)

#: How often the client looks at its shards (deadlines, start events, workers gone): a
#: finished shard is seen at once, each look costs the client's event loop a round trip.
POLL_S = 0.5
#: How often it asks the scheduler which workers are alive (for shards waiting on a site).
WORKERS_EVERY_S = 2.0
#: Attempts per shard: the first, and one retry.
ATTEMPTS = 2
#: A worker whose heartbeat (the scheduler's `last_seen` of it, about every second) has not
#: moved for this long has stopped answering (SIGSTOP, a hung host): the shards it holds,
#: started or not, are taken back. The scheduler would forget it only after its
#: worker-ttl (5 minutes), and a shard it never started has no deadline running.
SILENT_S = 30.0
#: How long the scheduler may take to answer one of the client's questions (its workers,
#: what they hold, a shard's result): a scheduler stopped with its TCP connection still up
#: (SIGSTOP, a hung host, a partition) never answers, and Dask waits for ever.
ANSWER_S = 25.0
LOST = "lost the connection to the Dask scheduler"
#: How long a shard under way waits for a worker that can run it when its site has none
#: left: a worker killed (OOM, kill -9) is restarted by its nanny within seconds, under
#: another address. A site with no worker when the run starts fails at once.
REJOIN_S = 20.0


@dataclass
class _Attempt:
    shard: Shard
    number: int
    future: Any
    reasons: tuple[str, ...]
    #: Start events seen: more than one when the scheduler reran the task itself.
    seen: int = 0
    started: float | None = None
    worker: str | None = None
    #: The hosts its worker collects at once (its open-file limit may allow fewer).
    forks: int | None = None
    #: The workers a retry is restricted to (the others than the one it failed on).
    only: tuple[str, ...] = ()
    #: Since when no live worker can run it (this clock), None while one can.
    orphaned: float | None = None


class ShardRunner:
    """Submit the shards, watch them, retry once, and hand every shard's hosts to `on_done`.

    With `pin_sites` false (local:N, whose workers all reach every site), a site's shards go
    to any worker.
    """

    def __init__(
        self,
        client: Any,
        on_start: Callable[[Shard], None] = lambda s: None,
        on_done: Callable[[Shard, Sequence[HostReport]], None] = lambda s, h: None,
        deadline_s: float | None = None,
        tick: Callable[[], None] = lambda: None,
        pin_sites: bool = True,
    ) -> None:
        self.client = client
        self.on_start, self.on_done, self.tick = on_start, on_done, tick
        self.deadline_s = deadline_s
        self.pin_sites = pin_sites
        #: How long a question to the scheduler may go unanswered (the session's bound).
        self.answer_s = ANSWER_S
        self.run_id = uuid.uuid4().hex[:12]
        self.notes: list[str] = []
        self.results: list[ShardResult] = []
        #: The workers that started a shard of this run (whether it came back or not).
        self.ran: set[str] = set()
        #: The start events of this run's tasks, by Dask key.
        self._starts: dict[str, list[tuple[float, str, int | None]]] = {}
        self._workers: dict[str, Any] = {}
        #: Each worker's name by address, those gone included (a retry avoids the name).
        self._names: dict[str, str] = {}
        self._workers_at = float("-inf")
        #: Each worker's last heartbeat seen, and when (this clock) it last moved.
        self._heard: dict[str, tuple[Any, float]] = {}

    def _event(self, event: tuple[float, Any]) -> None:
        # Called on the client's own event loop thread: one dict item set, atomic.
        msg = event[1]
        task = str(msg.get("task"))
        if task.startswith(f"fleetmon-{self.run_id}-"):  # not another run's on the scheduler
            forks = msg.get("forks")
            start = (time.monotonic(), str(msg["worker"]), int(forks) if forks else None)
            self._starts.setdefault(task, []).append(start)

    def _eligible(self, shard: Shard, refresh: bool = False) -> list[str]:
        return self._offering(self._resources(shard), refresh)

    def _offering(self, need: dict[str, float], refresh: bool = False) -> list[str]:
        """The live workers offering the resources `need` (asked again every few seconds)."""
        now = time.monotonic()
        if refresh or now - self._workers_at > WORKERS_EVERY_S:
            self._workers = self._ask(self.client.scheduler.identity, n_workers=-1)["workers"]
            self._workers_at = now
            for addr, info in self._workers.items():
                # Dask names a worker started without --name by its address.
                self._names[addr] = str(info.get("name") or addr)
                seen = info.get("last_seen")
                if addr not in self._heard or self._heard[addr][0] != seen:
                    self._heard[addr] = (seen, now)
        return [
            addr
            for addr, info in self._workers.items()
            if all((info.get("resources") or {}).get(r, 0) >= n for r, n in need.items())
        ]

    def _ask(self, question: Callable[..., Any], **kwargs: Any) -> Any:
        """The scheduler's answer; OSError when none comes within answer_s (the run's
        remaining shards then fail with that reason)."""
        try:
            return self.client.sync(question, callback_timeout=self.answer_s, **kwargs)
        except TimeoutError:
            raise self._silent() from None
        except OSError as exc:  # Dask's CommClosedError...: the scheduler is gone
            raise OSError(LOST) from exc

    def _silent(self) -> OSError:
        return OSError(
            f"the Dask scheduler stopped answering (no answer within {self.answer_s:g} s)"
        )

    def _resources(self, shard: Shard) -> dict[str, float]:
        return shard.resources if self.pin_sites else {}

    def workers_for(self, site: str | None) -> int:
        """How many workers can run a shard of `site` (None: of no site) now."""
        need = {site_resource(site): 1.0} if site is not None and self.pin_sites else {}
        return len(self._offering(need))

    def _submit(
        self,
        shard: Shard,
        number: int,
        reasons: tuple[str, ...],
        avoid: str | None,
        tag: str = "",
    ) -> _Attempt | None:
        eligible = self._eligible(shard, refresh=number > 1)
        if not eligible and number == 1:
            self._no_worker(shard, reasons)
            return None
        # A retry with no worker to run it waits in the scheduler for REJOIN_S (_orphaned).
        others = [w for w in eligible if not self._same(w, avoid)] if avoid is not None else []
        task, call = entry.task_of(shard, number, __version__)
        future = self.client.submit(
            task,
            call,
            key=f"fleetmon-{self.run_id}-{shard.key}-{number}{tag}",
            resources=self._resources(shard) or None,
            # Not a loose restriction: Dask would then drop the site's resource too.
            workers=others or None,
            allow_other_workers=False,
            pure=False,
        )
        return _Attempt(shard, number, future, reasons, only=tuple(others))

    def _same(self, worker: str, avoid: str) -> bool:
        """Whether `worker` is `avoid`, or `avoid` started again by its nanny: Dask keeps a
        worker's name across restarts (a name is unique on a scheduler)."""
        name = self._names.get(avoid)
        return worker == avoid or (name is not None and self._names.get(worker) == name)

    def _no_worker(self, shard: Shard, reasons: tuple[str, ...]) -> None:
        need = site_resource(shard.site) if shard.site else "any"
        why = (
            f"no worker offers the resource {need} (start one with"
            f" `dask worker SCHEDULER --resources {need}=1`)"
            if shard.site
            else "no worker is connected to the scheduler"
        )
        self._fail(shard, Status.SHARD_FAILED, (*reasons, why))

    def _fail(self, shard: Shard, status: Status, reasons: tuple[str, ...]) -> None:
        reason = f"shard {shard.key}: " + "; ".join(reasons)
        self.notes.append(f"{reason} ({len(shard.hosts)} hosts not collected)")
        self.on_done(shard, failed_hosts(shard, status, reason))

    def run(self, shards: Sequence[Shard]) -> None:
        """Every shard to its end: its hosts collected, or failed twice."""
        self.client.subscribe_topic(TOPIC, self._event)
        try:
            pending = [a for s in shards if (a := self._submit(s, 1, (), None)) is not None]
            while pending:
                self._wait(pending)
                stuck = self._stuck()
                pending = [n for a in pending for n in self._step(a, stuck)]
                self.tick()
        except CancelledError as exc:  # a future's, the scheduler lost between two looks
            raise OSError(LOST) from exc
        finally:
            with contextlib.suppress(Exception):  # a lost scheduler hears nothing more
                self.client.unsubscribe_topic(TOPIC)

    def _wait(self, pending: Sequence[_Attempt]) -> None:
        """Until an attempt ends or POLL_S passes; OSError once the scheduler is gone (its
        futures cancelled, the client no longer running): no retry could run anywhere."""
        import distributed

        # CancelledError: Dask's FuturesCancelledError, when the scheduler is lost.
        with contextlib.suppress(TimeoutError, CancelledError):
            distributed.wait(  # type: ignore[no-untyped-call]
                [a.future for a in pending], timeout=POLL_S, return_when="FIRST_COMPLETED"
            )
        if self.client.status not in ("running", "newly-created"):
            raise OSError(LOST)

    def _stuck(self) -> dict[str, tuple[str, float]]:
        """The tasks (by key) held by a worker silent for SILENT_S: its address and how
        long it has been silent. Asked of the scheduler only when a worker is silent."""
        self._offering({})  # the workers (and their heartbeats), every few seconds
        now = time.monotonic()
        silent = {
            w: now - at
            for w, (seen, at) in self._heard.items()
            if seen is not None and w in self._workers and now - at > SILENT_S
        }
        if not silent:
            return {}
        held = self._ask(self.client.scheduler.processing, workers=list(silent))
        return {str(key): (w, silent[w]) for w, keys in held.items() for key in keys}

    def _step(self, a: _Attempt, stuck: dict[str, tuple[str, float]]) -> list[_Attempt]:
        """The attempt again if it goes on, its retry if it failed once, else nothing."""
        starts = self._starts.get(str(a.future.key), [])
        if len(starts) > a.seen:
            self._started(a, starts)
        status = a.future.status
        if status == "finished":
            return self._finished(a)
        if status in ("error", "cancelled", "lost"):
            return self._retry(a, Status.SHARD_FAILED, self._why(a))
        if a.future.key in stuck:
            worker, quiet = stuck[a.future.key]
            a.future.cancel()
            why = f"its worker {worker} stopped answering (no heartbeat for {quiet:.0f} s)"
            return self._retry(a, Status.SHARD_FAILED, why, avoid=worker)
        unknown = a.worker is not None and a.worker not in self._workers
        eligible = self._eligible(a.shard, refresh=unknown)  # joined since the last look?
        if a.worker is not None and a.worker not in self._workers:
            # Gone from the scheduler: its task would wait for a worker that may never come
            # back (the only one of its site), or be rerun by the scheduler unseen.
            a.future.cancel()
            return self._retry(a, Status.SHARD_FAILED, f"its worker {a.worker} left the cluster")
        if not eligible:
            return self._orphaned(a)
        a.orphaned = None
        if a.started is None and a.only and not any(w in self._workers for w in a.only):
            return self._unpin(a)
        limit = self.deadline_s or a.shard.deadline_s(a.forks)
        if a.started is not None and time.monotonic() - a.started > limit:
            a.future.cancel()
            where = f" on worker {a.worker}" if a.worker else ""
            why = f"ran past its deadline of {limit:g} s{where}"
            return self._retry(a, Status.SHARD_TIMEOUT, why)
        return [a]

    def _orphaned(self, a: _Attempt) -> list[_Attempt]:
        """An attempt no live worker can run: kept REJOIN_S for one to come (back), then its
        shard failed."""
        now = time.monotonic()
        if a.orphaned is None:
            a.orphaned = now
        if now - a.orphaned <= REJOIN_S:
            return [a]
        a.future.cancel()
        self._no_worker(a.shard, a.reasons)
        return []

    def _started(self, a: _Attempt, starts: list[tuple[float, str, int | None]]) -> None:
        if a.seen == 0 and a.number == 1:
            self.on_start(a.shard)
        for at, worker, forks in starts[a.seen :]:
            if a.worker is not None and worker != a.worker:
                # The scheduler ran it again elsewhere (its worker died: Dask's own
                # rescheduling, distributed.scheduler.allowed-failures): that is its retry.
                why = f"its worker {a.worker} left mid-run; the scheduler reran it on {worker}"
                self.notes.append(f"shard {a.shard.key}: retried ({why})")
                a.reasons = (*a.reasons, f"attempt {a.number}: {why}")
                a.number = min(a.number + 1, ATTEMPTS)
            a.started, a.worker, a.forks = at, worker, forks
            self.ran.add(worker)
        a.seen = len(starts)

    def _unpin(self, a: _Attempt) -> list[_Attempt]:
        """A retry whose workers all left before starting it (it would wait for them for
        ever), submitted again to any eligible worker."""
        a.future.cancel()
        gone = ", ".join(a.only)
        self.notes.append(
            f"shard {a.shard.key}: attempt {a.number} sent to any eligible worker ({gone}"
            " left before starting it)"
        )
        nxt = self._submit(a.shard, a.number, a.reasons, None, tag="-any")
        return [] if nxt is None else [nxt]

    def _why(self, a: _Attempt) -> str:
        try:
            exc = a.future.exception(timeout=5)
        except Exception as err:  # the scheduler forgot the task (a cancelled, lost future)
            exc = err
        name = type(exc).__name__
        if isinstance(exc, ImportError):  # raised where the worker unpickled the task
            return (
                f"its worker cannot import fleetmon ({name}: {exc}): install fleetmon"
                f" {__version__}, the client's, on the workers"
            )
        if name == "KilledWorker":
            worker = getattr(getattr(exc, "last_worker", None), "address", a.worker)
            a.worker = a.worker or worker  # its start unseen: the retry avoids it all the same
            return f"its worker {worker} died"
        where = f" on worker {a.worker}" if a.worker else ""
        return f"failed{where}: {name}: {exc}"

    def _retry(
        self, a: _Attempt, status: Status, why: str, avoid: str | None = None
    ) -> list[_Attempt]:
        reasons = (*a.reasons, f"attempt {a.number}: {why}")
        if a.number >= ATTEMPTS:
            self._fail(a.shard, status, reasons)
            return []
        self.notes.append(f"shard {a.shard.key}: retried ({why})")
        nxt = self._submit(a.shard, a.number + 1, reasons, avoid or a.worker)
        return [] if nxt is None else [nxt]

    def _finished(self, a: _Attempt) -> list[_Attempt]:
        try:  # gathered through the scheduler
            result = checked(a.future.result(timeout=self.answer_s))
            got = {h.name: h for h in result.hosts}
        except TimeoutError:
            raise self._silent() from None
        except (OSError, CancelledError):  # the scheduler lost (run() says so)
            raise
        except Exception as exc:  # another fleetmon's result: not loaded, or fields amiss
            # Tried again on another worker, as for one that cannot import fleetmon: a
            # cluster being upgraded has workers of either version.
            why = str(exc) if isinstance(exc, WireError) else unloadable(exc)
            where = f"worker {a.worker}: " if a.worker else ""
            return self._retry(a, Status.SHARD_FAILED, where + why)
        finally:
            a.future.release()
        # Kept for the notes (where it ran, its CPU), without its hosts.
        self.results.append(dataclasses.replace(result, packed=((), (), ())))
        hosts = [got.get(n) for n in a.shard.names]
        missing = [n for n, h in zip(a.shard.names, hosts, strict=True) if h is None]
        if missing:  # never from run_shard; a host is accounted for all the same
            lost = failed_hosts(a.shard, Status.SHARD_FAILED, "missing from its shard's result")
            hosts = [h or lost[i] for i, h in enumerate(hosts)]
        self.on_done(a.shard, [h for h in hosts if h is not None])
        return []
