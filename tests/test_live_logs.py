"""The log lines of the live modes carry a host's text (a failing probe's stderr line, an
SSH error): escaped at the logging edge, as every other output escapes it, whatever the
call site; ordinary lines unchanged."""

from __future__ import annotations

import io
import logging
import subprocess
import time
from pathlib import Path

from hostilesim import EVIL

from fleetmon.cli.main import CleanFormatter
from tests.livesim import FLEETMON, simulated_fleet
from tests.sshd_util import free_port

FORMAT = "fleetmon: %(levelname)s %(name)s: %(message)s"


def _logged(emit: object) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(CleanFormatter(FORMAT))
    logger = logging.getLogger("fleetmon.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)  # type: ignore[operator]
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_the_formatter_escapes_message_arguments_and_tracebacks() -> None:
    ordinary = _logged(lambda lg: lg.warning("serving %d hosts on %s", 3, "http://[::1]:9/"))
    assert ordinary == "fleetmon: WARNING fleetmon.test-logs: serving 3 hosts on http://[::1]:9/\n"
    text = _logged(lambda lg: lg.warning("%s: %s", "h1", f"sh: {EVIL}\r\nfleetmon: forged"))
    assert text.count("\n") == 1  # no forged second line
    assert text.endswith("\n")
    assert text[:-1].isprintable()
    assert "sh: \\x1b]0;PWNED\\x07\\x1b[41mEVIL\\x1b[2J\\x9b31m\\r\\nfleetmon: forged" in text

    def failing(lg: logging.Logger) -> None:
        try:
            raise OSError(f"banner {EVIL}")
        except OSError:
            lg.exception("host %s failed", "h1")

    lines = _logged(failing).splitlines()
    assert lines[0] == "fleetmon: ERROR fleetmon.test-logs: host h1 failed"
    assert lines[1] == "Traceback (most recent call last):"  # the traceback's lines kept
    assert all(ln.isprintable() for ln in lines)
    assert lines[-1].startswith("OSError: banner \\x1b]0;PWNED")


def test_serve_logs_a_failing_hosts_stderr_escaped(tmp_path: Path) -> None:
    """A `cmdfail` host whose stderr line sets the title, clears the screen and forges a
    line: serve logged it raw at every retry."""
    with simulated_fleet(
        tmp_path, hosts=2, kind="linux", faults="cmdfail=1", hostile="stderr"
    ) as inv:
        log = tmp_path / "serve.err"
        argv = [FLEETMON, "serve", str(inv), "--listen", f"127.0.0.1:{free_port()}", "-d", "0.5"]
        with log.open("wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        try:
            end = time.monotonic() + 90
            while b"command_failed" not in log.read_bytes():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < end, log.read_text()
                time.sleep(0.2)
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0, log.read_text()
    text = log.read_bytes().decode()
    assert "command_failed: probe loop exited 1: sh: \\x1b]0;PWNED\\x07\\x1b[41mEVIL" in text
    assert all(line.isprintable() for line in text.splitlines()), text
    assert "\r" not in text
