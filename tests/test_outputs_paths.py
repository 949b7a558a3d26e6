"""Output paths as the kernel reads them: one file named two ways is one output, a name
ending in `/` names a folder, and a long name's temporary file and lock still fit NAME_MAX."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from fleetmon.cli.common import check_outputs
from fleetmon.errors import OptionError, OutputError
from fleetmon.io.atomic import check_output, default_lock_path, run_lock, write_text


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


@pytest.mark.parametrize("name", ["newdir/", "newdir/.", "keep.txt/", "keep.txt/.", "keep.txt//"])
def test_a_name_ending_in_a_slash_is_a_folders(tmp_path: Path, name: str) -> None:
    """`--html newdir/` created a file `newdir`; `-o keep.txt/` replaced keep.txt (where
    the shell says "Is a directory" / "Not a directory")."""
    keep = tmp_path / "keep.txt"
    keep.write_text("kept\n")
    path = f"{tmp_path}/{name}"
    for check in (check_output, lambda p: write_text(p, "report\n")):
        with pytest.raises(OutputError) as err:
            check(path)
        assert str(err.value) == f"cannot write {path}: it names a folder, not a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert keep.read_text() == "kept\n"


def test_an_existing_folder_named_with_a_slash_is_still_a_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r": it is a folder$"):
        check_output(f"{tmp_path}/")


@pytest.mark.parametrize("name", ["b" * 242, "b" * 255, "é" * 127 + "x", "\udcff" * 255])
def test_a_name_as_long_as_the_kernel_allows_is_written(tmp_path: Path, name: str) -> None:
    """`.NAME.8hex.tmp` was 14 bytes longer than NAME: for 242-255 bytes it failed with
    "File name too long" once the whole run was done; the lock `.NAME.lock` beside it was
    an internal error (exit 70) from 250 bytes."""
    target = tmp_path / name
    check_output(str(target))
    write_text(str(target), "report\n")
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert target.read_text() == "report\n"
    lock = default_lock_path(str(target))
    assert lock is not None
    assert lock == default_lock_path(str(target))  # one lock, run after run
    assert len(os.fsencode(os.path.basename(lock))) <= 255
    with run_lock(lock, 0):
        write_text(str(target), "again\n")
    assert target.read_text() == "again\n"


def test_a_name_longer_than_the_kernel_allows_is_refused_before(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r": File name too long$"):
        check_output(str(tmp_path / ("b" * 256)))
