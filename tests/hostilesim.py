"""Test helper: `fleetmon simulate` whose hosts send terminal escapes, as a compromised host
could: `nic`, every host's NIC wlp5s0 in /proc/net/dev renamed to EVIL (no whitespace: the
parser keeps it whole); `stderr`, the `cmdfail` hosts' error line on stderr carrying EVIL.

    python tests/hostilesim.py nic|stderr SIMULATE-OPTIONS...
"""

from __future__ import annotations

import sys

#: An OSC setting the window title, SGR colours, clear-screen, a C1 CSI and a BEL.
EVIL = "\x1b]0;PWNED\x07\x1b[41mEVIL\x1b[2J\x9b31m"
#: EVIL as fleetmon's clean() shows it.
EVIL_SHOWN = "\\x1b]0;PWNED\\x07\\x1b[41mEVIL\\x1b[2J\\x9b31m"


def main() -> int:
    from fleetmon.sim import render, server

    kind = sys.argv[1]
    if kind == "nic":
        plain = render.render_net_dev

        def evil_net_dev(*args: object) -> str:
            return plain(*args).replace("wlp5s0", EVIL)  # type: ignore[arg-type]

        render.render_net_dev = evil_net_dev  # type: ignore[assignment]
    elif kind == "stderr":
        server.CMDFAIL_STDERR = f"sh: {EVIL}FAKE: all hosts OK\r\n"
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    from fleetmon.cli.main import main as fleetmon

    return fleetmon(["simulate", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
