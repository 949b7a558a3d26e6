"""SIGTERM while the rules run ends the run: exit 143, nothing written (issue 16).

It used to be swallowed: rule code catches `Exception` (a failing message template is a note,
not a crash), and Interrupted was one; then, once the event loop had closed, SIGTERM was back
at its default and killed the process outright (no exit 143, no clean end).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from clirun import popen

HOSTS = 20
RULES = 400


def _probes(pid: int) -> int:
    """How many `sh` children `pid` has: the local probes (importing asyncssh may briefly
    run gcc or ldconfig to find libraries)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        count += head.endswith("(sh") and int(tail.split()[1]) == pid
    return count


def _wait_until_collected(pid: int, timeout_s: float = 60) -> None:
    """Wait until the probes have run and ended: collection is over, the rules are running."""
    deadline = time.monotonic() + timeout_s
    seen = False
    quiet_since = None
    while time.monotonic() < deadline:
        if _probes(pid):
            seen, quiet_since = True, None
        elif seen:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not finish collecting within {timeout_s} s")


def test_sigterm_during_rule_evaluation_exits_143_and_writes_nothing(tmp_path: Path) -> None:
    inventory = tmp_path / "local.yaml"
    inventory.write_text(
        "all:\n  hosts:\n"
        + "".join(f"    h{i:02d}:\n      ansible_connection: local\n" for i in range(HOSTS)),
        encoding="utf-8",
    )
    # Every judgement spends most of its budget in `when:` and in its message (whose errors
    # are caught as Exception): 8,000 judgements of a few ms, half a minute unsignalled.
    rules = tmp_path / "slow.yaml"
    rules.write_text(
        "- hosts: all\n  rules:\n"
        + "".join(
            f"    - name: slow{i}\n"
            "      expr: 'true'\n"
            "      severity: warning\n"
            '      when: "(host * 99999) | length > 0"\n'
            "      message: '{% for a in host * 33 %}{% for b in host * 33 %}"
            "{% endfor %}{% endfor %}'\n"
            for i in range(RULES)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "fleet.json"
    proc = popen(
        "run", inventory, "--interval", "0.2", "-f", str(HOSTS), "--no-default-rules", "-r", rules,
        "--format", "json", "-o", out,
    )  # fmt: skip
    try:
        _wait_until_collected(proc.pid)
        assert proc.poll() is None, proc.communicate()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, stderr
    assert stderr == "fleetmon: interrupted (exit 143)\n"
    assert took < 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".fleet.json.lock",
        "local.yaml",
        "slow.yaml",
    ]
