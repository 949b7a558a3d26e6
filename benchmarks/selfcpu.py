"""Benchmark harness (I/O): run `fleetmon ARGV` in this process, then write the process's
own CPU (RUSAGE_SELF: every thread, none of its child processes) to the file named first.

With `--cluster local:N` the workers are child processes: spawn.py's wait4 counts them
with the client, this file counts the client alone.
    python selfcpu.py OUT.json run INVENTORY ...
"""

import json
import resource
import sys

from fleetmon.cli.main import main

if __name__ == "__main__":
    out = sys.argv[1]
    code = main(sys.argv[2:])
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as fh:
        json.dump({"self_cpu_s": ru.ru_utime + ru.ru_stime}, fh)
    sys.exit(code)
