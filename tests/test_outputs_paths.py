"""Output paths as the kernel reads them: one file named two ways is one output."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from fleetmon.cli.common import check_outputs
from fleetmon.errors import OptionError
from fleetmon.io.atomic import default_lock_path


def _args(**outputs: str) -> argparse.Namespace:
    base = {"output": None, "json_out": None, "html": None, "junit": None, "prom_textfile": None}
    return argparse.Namespace(format="text", **{**base, **outputs})


def test_one_file_named_two_ways_is_refused(tmp_path: Path) -> None:
    """`-o d/x.out --html dlink/x.out` (dlink -> d) and `-o x --json d/../x`: the later
    write replaced the earlier report, no error."""
    (tmp_path / "d").mkdir()
    (tmp_path / "dlink").symlink_to("d")
    for first, second in (
        (tmp_path / "d" / "x.out", tmp_path / "dlink" / "x.out"),
        (tmp_path / "x2.out", tmp_path / "d" / ".." / "x2.out"),
    ):
        with pytest.raises(OptionError) as err:
            check_outputs(_args(output=str(first), html=str(second)))
        assert str(err.value) == (
            f"--html {second} and -o {first} both write to {second}: send one of them to"
            " another file (-o FILE for the main report)"
        )
    check_outputs(_args(output=str(tmp_path / "d" / "x.out"), html=str(tmp_path / "x.out")))


def test_one_file_named_two_ways_has_one_lock(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "dlink").symlink_to("d")
    lock = str(tmp_path / "d" / ".x.out.lock")
    assert default_lock_path(str(tmp_path / "dlink" / "x.out")) == lock
    assert default_lock_path(str(tmp_path / "d" / "e" / ".." / "x.out")) == lock
