"""Inventory stage, input edge (I/O): run an inventory or vault password script, bounded in
time and output.

As ansible-core's script plugin runs it (stdout is the JSON, stderr shown only when it
fails), with the bounds a cron run needs and Ansible lacks: the script runs in a session of
its own, killed with all its process group at the deadline; its stdout is read as it
comes, at most the size of an inventory file (MAX_INVENTORY_BYTES: past it the group is
killed); of its stderr the end is kept, for the message. The script's exit ends the wait:
a process it left holding its output (a helper it detached with `setsid`) is not waited
for past a short quiet spell, and never past the deadline.

A vault password script (vaultpass.py) is run the same way, but with the user's stdin (and,
but for a `-client` script, stderr) so it can prompt. On a terminal it then stays in
fleetmon's session, as in Ansible, so it can open /dev/tty (a new session has none):
only the script itself is killed at the deadline, and the user is there to press Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from fleetmon.errors import InventoryError
from fleetmon.inventory.inputfile import MAX_INVENTORY_BYTES

#: Seconds an inventory or vault password script may run (Ansible waits forever; a cron
#: run must not).
SCRIPT_TIMEOUT_S = 60.0
#: Seconds its output may stay quiet, once the script has exited, before it is taken as done.
EXIT_GRACE_S = 1.0
_STDERR_KEPT = 64 << 10
_CHUNK = 1 << 20
_POLL_S = 0.05  # how often the script's exit is looked for while its pipes are open


class _Run:
    """A started script and what it has printed so far."""

    def __init__(
        self, proc: subprocess.Popen[bytes], name: str, file: str | None, timeout_s: float
    ) -> None:
        self.proc, self.name, self.file, self.timeout_s = proc, name, file, timeout_s
        self.own_session = True
        self.out = bytearray()
        self.err = bytearray()

    def error(self, what: str) -> InventoryError:
        return InventoryError(f"{self.name} {what}", file=self.file)

    def kill(self) -> None:
        """SIGKILL the script's process group (its session: all it started but what it
        detached) and the script itself; either may be gone already."""
        if self.own_session:  # else its group is fleetmon's
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.kill()  # Popen's own: a no-op once the script is reaped

    def take(self, stdout: bool, chunk: bytes) -> None:
        if not stdout:
            self.err += chunk
            del self.err[:-_STDERR_KEPT]
            return
        self.out += chunk
        if len(self.out) > MAX_INVENTORY_BYTES:
            self.kill()
            limit = f"{MAX_INVENTORY_BYTES >> 20} MiB"
            raise self.error(f"printed more than {limit}, an inventory file's limit (killed)")

    def late(self, exited: bool) -> InventoryError:
        """The deadline has passed: the group is killed."""
        self.kill()
        if exited:  # the script is done; something it left behind keeps printing
            return self.error(
                "exited, but a process it left kept printing to its output past "
                f"{self.timeout_s:g} s (killed)"
            )
        return self.error(f"did not finish within {self.timeout_s:g} s (killed)")


def _read(run: _Run, deadline: float) -> bool:
    """Read the script's output until both pipes end (True), or the script has exited and
    they stayed quiet for EXIT_GRACE_S (False: left open); InventoryError at the deadline."""
    assert run.proc.stdout is not None
    stdout = run.proc.stdout.fileno()
    stderr = [run.proc.stderr.fileno()] if run.proc.stderr is not None else []
    quiet_since = time.monotonic()
    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        for fd in (stdout, *stderr):
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if exited_at is None and run.proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - max(quiet_since, exited_at) >= EXIT_GRACE_S:
                return False
            if now >= deadline:
                raise run.late(exited_at is not None)
            for key, _ in sel.select(min(_POLL_S, deadline - now)):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                run.take(key.fd == stdout, chunk)
                quiet_since = time.monotonic()
    return True


def run_script(
    path: str,
    args: list[str],
    timeout_s: float = SCRIPT_TIMEOUT_S,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The stdout of an inventory script run as Ansible runs it; InventoryError when it
    cannot start, fails, hangs past the timeout or prints too much (it is killed), or
    prints non-UTF-8. `warn` is told when the script left a process holding its output."""
    shown = " ".join([path, *args])
    try:
        run = run_bounded(
            [os.path.abspath(path), *args], f"inventory script `{shown}`", timeout_s, path, warn
        )
    except OSError as e:
        raise InventoryError(f"cannot run inventory script: {e.strerror}", file=path) from None
    return _result(run)


def run_bounded(
    command: list[str],
    name: str,
    timeout_s: float,
    file: str | None = None,
    warn: Callable[[str], None] | None = None,
    *,
    user_stdin: bool = False,
    capture_stderr: bool = True,
) -> _Run:
    """`command` run to its end (`.proc.returncode`, `.out`, `.err`), its errors worded as
    `name ...` in `file`: InventoryError when it hangs past `timeout_s` or prints too much
    (killed); OSError when it cannot start. `user_stdin`: the user's stdin, else none."""
    # Its own session (so its own process group): a timeout kills what it started too;
    # not when it may prompt on the user's terminal (see the module's docstring).
    own_session = not (user_stdin and _on_terminal())
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stderr else None,
        stdin=None if user_stdin else subprocess.DEVNULL,
        start_new_session=own_session,
    )
    run = _Run(proc, name, file, timeout_s)
    run.own_session = own_session
    deadline = time.monotonic() + timeout_s
    with proc:  # closes our ends of the pipes (not waiting on them), then reaps the script
        try:
            ended = _read(run, deadline)
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # it closed its output and went on running
            raise run.late(False) from None
        except BaseException:
            run.kill()
            raise
    if not ended and warn is not None:
        warn(f"{name} exited but left a process holding its output open: not waited for")
    return run


def _on_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, ValueError, OSError):  # no stdin, or one without a descriptor
        return False


def _result(run: _Run) -> str:
    code = run.proc.returncode
    if code != 0:
        lines = run.err.decode("utf-8", "replace").strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise run.error(f"exited {code}{detail}")
    try:
        return run.out.decode("utf-8")
    except UnicodeDecodeError:
        raise run.error("printed non-UTF-8 text") from None
