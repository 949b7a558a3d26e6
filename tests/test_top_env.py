"""`fleetmon top` with $COLUMNS and $LINES that are not a size: ignored, as curses and
shutil.get_terminal_size ignore them, in the plain frames and on the screen alike."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.livesim import FLEETMON
from tests.test_top import Tty


def _local(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  hosts:\n    a:\n      ansible_connection: local\n")
    return inv


@pytest.mark.parametrize("columns", ["abc", "80x", "-5", "0", " ", "9" * 5000])
def test_batch_frames_ignore_a_columns_that_is_not_a_size(tmp_path: Path, columns: str) -> None:
    """`COLUMNS=abc top -b` was an internal error (exit 70), after every host had been
    contacted; `COLUMNS=-5` cut every line five characters short of its end."""
    cmd = [FLEETMON, "top", str(_local(tmp_path)), "-b", "-n", "1", "-d", "0.5", "--no-rules"]
    env = {**os.environ, "COLUMNS": columns, "LINES": columns}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert (out.returncode, out.stderr) == (0, "")
    lines = out.stdout.splitlines()
    assert lines[0].endswith("hosts 1: 1 live")  # whole: the default width, 160
    assert all(len(ln) <= 160 for ln in lines)
    assert any(ln.startswith("a ") for ln in lines)


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [
        {"COLUMNS": "abc", "LINES": "abc"},
        {"COLUMNS": "-5", "LINES": "0"},
        {"COLUMNS": "80x", "LINES": "2"},  # a valid LINES under 5: one plain frame
        # Larger than the window: ncurses could not allocate it and exited with
        # "Error opening terminal: xterm." (exit 1).
        {"COLUMNS": "99999", "LINES": "99999"},
    ],
    ids=["abc", "negative-zero", "80x-2", "huge"],
)
def test_the_screen_ignores_sizes_that_are_not_the_window(
    tmp_path: Path, env: dict[str, str]
) -> None:
    argv = [FLEETMON, "top", str(_local(tmp_path)), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=24, cols=80, extra_env=env)
    try:
        lines = tty.wait_for(lambda ls: "hosts 1: 1 live" in ls[0], limit_s=60)
        assert all(len(ln) <= 80 for ln in lines)
        if env["LINES"] != "2":
            tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        assert tty.proc.stderr is not None
        assert tty.proc.stderr.read() == b""
    finally:
        tty.close()
