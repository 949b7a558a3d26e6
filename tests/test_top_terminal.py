"""`fleetmon top` in a real pseudo-terminal (pyte) where the terminal is not the usual one:
an ASCII-only locale (LC_ALL=C) with names that are not ASCII, in the screen and the frames."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from fleetmon.render.textfit import ELLIPSIS, fold
from tests.livesim import FLEETMON
from tests.test_top import Tty, _rows

#: Host names as an inventory may hold them: accented and CJK letters (one and two columns
#: each), a bidi override (shown escaped, as clean() shows it), one longer than the window.
NAMES = ("café-主机", "bidi\u202egnp.exe", "x" * 200, "plain")


def _inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.yaml"
    hosts = "".join(f"    {json.dumps(n)}:\n      ansible_connection: local\n" for n in NAMES)
    inv.write_text(f"all:\n  hosts:\n{hosts}", encoding="utf-8")
    return inv


def test_fold_keeps_the_columns_a_character_takes() -> None:
    assert fold("café-主机", "ascii") == "caf?-????"
    assert fold("café-主机", "utf-8") == "café-主机"
    assert fold("café", "latin-1") == "café"  # a letter the encoding has stays
    assert fold("e\u0301x", "ascii") == "ex"  # a combining mark takes no column
    assert fold(f"long{ELLIPSIS}", "ascii") == "long~"
    assert fold("plain ascii", "ascii") == "plain ascii"


def test_an_ascii_only_locale_gets_ascii_in_its_columns(tmp_path: Path) -> None:
    """LC_ALL=C: ncurses wrote é, the CJK letters and the cut's ellipsis as it guessed (bytes
    a C terminal shows as garbage, and fewer columns than the names take): every row after
    them went out of line, figures written over each other."""
    env = {"LANG": "C", "LC_ALL": "C"}
    argv = [FLEETMON, "top", str(_inventory(tmp_path)), "-d", "0.5", "--no-rules"]
    tty = Tty(argv, rows=12, cols=80, extra_env=env)
    try:
        lines = tty.wait_for(lambda ls: "hosts 4: 4 live" in ls[0] and len(_rows(ls)) == 4, 60)
        start = bytes(tty.raw).rfind(b"\x1b[?1049h")
        assert start > -1
        assert bytes(tty.raw)[start:].isascii()  # nothing a C terminal cannot show
        head = next(ln for ln in lines if ln.startswith("HOST "))
        end = head.index("CPU%") + len("CPU%")
        at = lines.index(head) + 1
        rows = {ln.split()[0]: ln for ln in lines[at : at + 4]}  # the window's last: h help
        assert sorted(rows) == ["bidi\\u202egnp.exe", "caf?-????", "plain", "x" * 19 + "~"]
        for name, row in rows.items():
            assert len(row) <= 80, row
            # Each figure ends under its heading: no row shifted by what came before it.
            assert re.fullmatch(r"\d+\.\d", row[:end].split()[-1]), (name, row, head)
            assert row[end] == " ", (name, row, head)
        tty.key("q")
        assert tty.proc.wait(timeout=30) == 0
        tty.assert_restored()
    finally:
        tty.close()


def test_plain_frames_to_an_ascii_only_terminal_are_ascii(tmp_path: Path) -> None:
    """`top -b` to a terminal under LC_ALL=C wrote the names' UTF-8 bytes to it (Python's
    UTF-8 mode, PEP 540), while the screen folds them; to a pipe they stay UTF-8, as every
    other output of fleetmon."""
    inv = _inventory(tmp_path)
    argv = [FLEETMON, "top", str(inv), "-b", "-n", "1", "-d", "0.5", "--no-rules"]
    env = {"LANG": "C", "LC_ALL": "C", "COLUMNS": "100"}
    tty = Tty(argv, rows=40, cols=100, extra_env=env)
    try:
        assert tty.proc.wait(timeout=60) == 0
        tty.pump(0.5)
    finally:
        tty.close()
    raw = bytes(tty.raw)
    assert raw.isascii(), raw
    rows = {ln.split()[0]: ln for ln in raw.decode().splitlines()[4:] if ln.strip()}
    long = max(rows, key=len)
    assert re.fullmatch(r"x{20,}~", long)  # cut, with the ASCII mark of a cut
    assert sorted(rows) == ["bidi\\u202egnp.exe", "caf?-????", "plain", long]
    ends = {ln.index("100.0") for ln in rows.values() if "100.0" in ln}
    assert len(ends) <= 1, rows  # the CPU% figures in one column
    piped = subprocess.run(argv, capture_output=True, timeout=60, env={**os.environ, **env})
    assert piped.returncode == 0, piped.stderr
    assert "café-主机 " in piped.stdout.decode()
