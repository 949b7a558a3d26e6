"""Deltas stage, filesystems (pure): the `fs` rows of one host's df -P -k and -i output, with
notes for what df could not say."""

from __future__ import annotations

from collections.abc import Callable

from fleetmon.analyse.hv import few
from fleetmon.model import Row
from fleetmon.sources.df import DfRow, DfTable, filesystem_rows, parse_df, parse_df_table
from fleetmon.sources.sections import ProbeOutput


def _parse_df_k(text: str) -> DfTable:
    return parse_df_table(text, "df_k")


def _parse_df_i(text: str) -> tuple[DfRow, ...]:
    return parse_df(text, "df_i")


def filesystems(
    out: ProbeOutput, include_pseudo: bool, note: Callable[[str], None]
) -> tuple[Row, ...]:
    """The host's `fs` rows (sample 0's df sections); `note` gets what is worth saying."""
    table = out.parsed(0, "df_k", _parse_df_k)
    if table is None:
        note(f"df -P -k failed: {out.timed_out(0, 'df_k') or 'no filesystem rows'}")
        return ()
    if table.joined:  # repr: a newline shown as \n, the note one line
        names = few([repr(name) for name in table.joined])
        note(f"df printed {names} across lines (a newline in the name): read as one name")
    if table.skipped:
        note(f"df lines not read as a filesystem: {few([repr(s) for s in table.skipped])}")
    inodes = out.parsed(0, "df_i", _parse_df_i)
    if inodes is None:
        why = out.timed_out(0, "df_i")
        note(f"df -P -i failed: {why + ': ' if why else ''}fs.inodes_used_pct null")
    by_mount = {} if inodes is None else {r.mount: r for r in reversed(inodes)}
    rows, no_table = filesystem_rows(table.rows, by_mount, include_pseudo)
    if no_table:
        note(
            f"no fixed inode count on {few(no_table)} (df -i says 0, as"
            " btrfs does): fs.inodes_used_pct not offered there"
        )
    return rows
