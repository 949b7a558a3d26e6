"""Collect stage, a fake transport for tests (I/O only in that it sleeps): canned answers.

`with fake_transport(answers): ...` registers it as `ansible_connection: fake`; each host
named in `answers` gets its FakeAnswer (stdout, delay, exit status), others a HostFailure.
The rest of the collect stage (deadlines, concurrency, result building) runs for real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from fleetmon.collect.base import CollectOptions, HostFailure, Outcome
from fleetmon.collect.runner import TRANSPORTS
from fleetmon.collect.ssh import Progress
from fleetmon.collect.sshcontext import SshContext
from fleetmon.model import HostSpec, Status

NAME = "fake"


@dataclass(frozen=True, slots=True)
class FakeAnswer:
    """What the fake host prints, after how long, and how the probe exits."""

    stdout: str = ""
    delay_s: float = 0.0
    exit_status: int = 0
    stderr: str = ""


@contextlib.contextmanager
def fake_transport(answers: Mapping[str, FakeAnswer]) -> Iterator[str]:
    """Register the fake transport for the block; yields its connection name."""

    async def run(
        host: HostSpec, script: str, opts: CollectOptions, ctx: SshContext, progress: Progress
    ) -> Outcome:
        answer = answers.get(host.name)
        if answer is None:
            raise HostFailure(Status.UNREACHABLE, f"fake host {host.name!r} has no answer")
        progress.stage = "running"
        await asyncio.sleep(answer.delay_s)
        return Outcome(answer.stdout.encode(), answer.stderr.encode(), answer.exit_status)

    previous = TRANSPORTS.get(NAME)
    TRANSPORTS[NAME] = run
    try:
        yield NAME
    finally:
        if previous is None:
            del TRANSPORTS[NAME]
        else:
            TRANSPORTS[NAME] = previous
