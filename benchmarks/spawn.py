"""Benchmark harness (I/O): start one client and report its own CPU and peak RSS as JSON.

Linux carries a parent's memory high-water mark into a child at exec, so a child spawned
straight from a big benchmark runner would report the runner's peak as its own. This small
process (started with `python -S`, a few MB) spawns the client instead and writes the
client's wait4 figures to the file named first.
    python -S spawn.py OUT.json NOFILE_SOFT:NOFILE_HARD|- ARGV...
"""

import json
import os
import resource
import sys


def main() -> int:
    """Spawn argv, wait for it, write {cpu_s, maxrss_kb, rc} to the out file."""
    out, nofile, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if nofile != "-":
        soft, _, hard = nofile.partition(":")
        cur_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(soft), int(hard) if hard else cur_hard))
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, ru = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    with open(out, "w") as fh:
        json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss, "rc": rc}, fh)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
