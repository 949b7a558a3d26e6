"""The process around a command (I/O edge): signals, the event loop, the clock."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from fleetmon.errors import EXIT_SIGINT, EXIT_SIGTERM

T = TypeVar("T")


def _install_signal_handlers(task: asyncio.Future[Any]) -> dict[str, int]:
    got: dict[str, int] = {}
    loop = asyncio.get_running_loop()

    def stop(code: int) -> None:
        got.setdefault("code", code)
        task.cancel()

    loop.add_signal_handler(signal.SIGINT, stop, EXIT_SIGINT)
    loop.add_signal_handler(signal.SIGTERM, stop, EXIT_SIGTERM)
    return got


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: stop, write nothing, exit 130/143.

    A BaseException, like KeyboardInterrupt: no `except Exception` (a rule's message
    template, a parser's guard) can swallow it and carry on.
    """

    def __init__(self, code: int) -> None:
        super().__init__(f"interrupted (exit {code})")
        self.code = code


def _restore_signal_handlers(previous: dict[signal.Signals, Any]) -> None:
    """Give SIGINT/SIGTERM back to the handlers they had before the loop took them.

    Closing the loop would reset them to the defaults: a SIGTERM during the rules or the
    writing that follow would kill the process outright, neither exit 143 nor clean.
    Blocked meanwhile, a signal that arrives waits and then goes to the restored handler.
    """
    loop = asyncio.get_running_loop()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, previous)
    try:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:  # None: a handler not set from Python, left as it is
                signal.signal(sig, handler)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; SIGINT/SIGTERM cancel it and raise Interrupted."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    async def main() -> T:
        task = asyncio.ensure_future(coro)
        got = _install_signal_handlers(task)
        try:
            return await task
        except asyncio.CancelledError:
            if "code" in got:
                raise Interrupted(got["code"]) from None
            raise
        finally:
            _restore_signal_handlers(previous)

    return asyncio.run(main())


def terminate(signum: int, frame: object) -> None:
    raise Interrupted(EXIT_SIGTERM)


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
