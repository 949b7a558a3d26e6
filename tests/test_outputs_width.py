"""--width counts terminal columns, not characters: a CJK host name takes two columns a
character, and tables and lines of such names still fit (the README: "no line wider")."""

from __future__ import annotations

import dataclasses
import random

import pytest
import reportfactory as rf
from wcwidth import wcswidth

from fleetmon.render.text import TextOptions, render_text
from fleetmon.render.textfit import fit_line, fit_table, shorten

TOKYO = "東京データセンター仮想化ホスト"  # 15 characters, 30 columns


def _cjk_report() -> rf.Report:
    rng = random.Random(11)
    hosts = [
        rf.host(f"{TOKYO}{i}", rng, vms=[rf.vm(f"仮想マシン{i}", rng)], notes=[f"{TOKYO} の注記"])
        for i in range(4)
    ]
    return rf.report(hosts)


def test_shorten_counts_columns() -> None:
    assert shorten("東京データ", 10) == "東京データ"
    assert shorten("東京データ", 9) == "東京デー\u2026"  # 8 columns and the ellipsis's one
    assert shorten("東京データ", 8) == "東京デ\u2026"  # 6: no half of a wide character
    assert shorten("東京データ", 2) == "\u2026"  # no half of a wide character
    assert shorten("abcdef", 4) == "abc\u2026"


def test_a_line_of_wide_words_is_wrapped_at_the_width() -> None:
    line = f"note: {TOKYO}0, {TOKYO}1 and a word"
    got = fit_line(line, 24, "  ")
    assert got == [
        "note:",
        "  東京データセンター仮想",
        "  化ホスト0,",
        "  東京データセンター仮想",
        "  化ホスト1 and a word",
    ]
    assert max(wcswidth(x) for x in got) <= 24


def test_a_table_of_wide_names_fits() -> None:
    rows = [[f"{TOKYO}{i}", "CRITICAL", "a message that is long enough"] for i in range(3)]
    for width, host in ((60, f"{TOKYO}0"), (50, "東京データセンター仮想化ホス\u2026")):
        table = fit_table(rows, ["HOST", "HEALTH", "MESSAGE"], width, flex=("MESSAGE", "HOST"))
        lines = table.split("\n")
        assert max(wcswidth(x) for x in lines) == width
        # The message shortened first; the name then, by columns (tabulate pads by them).
        assert lines[2].startswith(f"{host}  CRITICAL  a messag")


@pytest.mark.parametrize("width", [120, 80, 40, 20, 9])
def test_no_line_of_the_text_report_is_wider_than_asked(width: int) -> None:
    """Before, 89 lines of such a report were wider than 80 columns, up to 110."""
    text = render_text(_cjk_report(), TextOptions(width=width))
    wide = [line for line in text.splitlines() if wcswidth(line) > width]
    assert wide == []
    assert TOKYO[:3] in text


def test_ascii_reports_are_laid_out_as_before() -> None:
    report = rf.sample_report()
    report = dataclasses.replace(report, hosts=report.hosts[:4])
    for width in (80, 40):
        text = render_text(report, TextOptions(width=width))
        assert max(len(line) for line in text.splitlines()) <= width
