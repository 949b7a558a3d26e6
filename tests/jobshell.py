"""Test helper: a job-control shell in miniature, for Ctrl-Z in a pseudo-terminal. Run as the
session leader: runs ARGV as the terminal's foreground job in a process group of its own
(as an interactive shell does; stop signals to an orphaned group are dropped); prints
`child PID`, then `stopped` when the job stops (the terminal taken back), `exited N` at
its end; SIGUSR1 is `fg`.

    python tests/jobshell.py ARGV...
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main() -> int:
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # tcsetpgrp from the background
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpgrp())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execv(sys.argv[1], sys.argv[1:])
    # Both sides set the group, as a shell does, whichever comes first: EACCES here is the
    # child having exec'd already, its group set by then (under load, CI: the jobshell died
    # of it, the session's leader gone before `child PID`, and the screen stayed empty).
    with contextlib.suppress(PermissionError):
        os.setpgid(pid, pid)

    def fg(signum: int, frame: object) -> None:
        os.tcsetpgrp(0, pid)
        os.killpg(pid, signal.SIGCONT)

    signal.signal(signal.SIGUSR1, fg)
    print(f"child {pid}", flush=True)
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            os.tcsetpgrp(0, os.getpgrp())
            print("stopped", flush=True)
        else:
            print(f"exited {os.waitstatus_to_exitcode(status)}", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
