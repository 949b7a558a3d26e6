"""Cluster runs: the task a worker is sent (I/O), made so that a worker without fleetmon,
or with another fleetmon, fails the task in words and lives on.

Sent as `run_shard(shard)`, a task a worker cannot unpickle failed in Dask's own message
stream (distributed 2026.8: the worker process died, its nanny closed, the `dask worker`
ended) and the run said "no worker is connected to the scheduler". The task is instead
`pickle.loads(call)`: a standard-library function a worker always has, with bytes whose
loading calls `run_pickled`, inside the task, where an ImportError is the task's error.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any


class ShardNotLoaded(RuntimeError):
    """The worker's fleetmon could not load a shard (another version's Shard)."""


@dataclass(frozen=True, slots=True)
class Call:
    """`run_pickled(shard, attempt, version)`, done by whoever unpickles it."""

    shard: bytes
    attempt: int
    version: str

    def __reduce__(self) -> tuple[Any, tuple[bytes, int, str]]:
        return run_pickled, (self.shard, self.attempt, self.version)


def task_of(shard: object, attempt: int, version: str) -> tuple[Any, bytes]:
    """The function and argument to submit for one attempt of `shard`."""
    blob = pickle.dumps(shard, pickle.HIGHEST_PROTOCOL)
    return pickle.loads, pickle.dumps(Call(blob, attempt, version), pickle.HIGHEST_PROTOCOL)


def run_pickled(blob: bytes, attempt: int, version: str) -> Any:
    """The shard pickled in `blob` run by this worker's fleetmon (its ShardResult);
    ShardNotLoaded, naming the client's `version`, when this fleetmon is another version
    (whose records may have the same fields and its analysis other figures) or cannot load
    the shard."""
    from fleetmon import __version__
    from fleetmon.cluster.task import run_shard

    if __version__ != version:
        raise ShardNotLoaded(
            f"this worker runs fleetmon {__version__}: install fleetmon {version}, the"
            " client's, on the workers"
        )
    try:
        shard = pickle.loads(blob)
    except Exception as exc:  # a Shard (or a host's settings) of other fields
        raise ShardNotLoaded(
            f"this worker's fleetmon cannot load the shard ({type(exc).__name__}: {exc}):"
            f" install fleetmon {version}, the client's, on the workers"
        ) from None
    return run_shard(shard, attempt)
