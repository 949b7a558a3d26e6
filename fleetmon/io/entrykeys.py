"""run.json's entries checked (helpers of io.rawstore): a missing key, or a status no run
writes, is a ValueError naming its key path (`hosts[3].spec.name: missing`), which iter_raw
gives as one line naming run.json (a bare KeyError said only "'name'"); every host's raw
file is looked at (lstat: there, regular, under the cap) before the replay opens the
history or analyses a host.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetmon.errors import InputError
from fleetmon.io.files import check_regular
from fleetmon.model import Status

#: What a raw file over the cap means (the read's own error says it too).
OVER_CAP = (
    "more than a host may send under the output cap"
    " (raise it with --output-cap BYTES if the run did)"
)


def key(d: Any, at: str, name: str) -> Any:
    """d[name]; ValueError naming the key path (`at`: its parent's, ending in a dot) when
    it is missing, TypeError when d is not an object."""
    if not isinstance(d, dict):
        raise TypeError(f"{at[:-1] or 'run.json'}: expected an object")
    if name not in d:
        raise ValueError(f"{at}{name}: missing")
    return d[name]


def integer(value: Any, where: str) -> int:
    """An integer (a port): int() took "22" and said of "x" only "invalid literal"."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: expected an integer, got {value!r}"[:300])
    return value


def obj(value: Any, where: str) -> dict[str, Any]:
    """An object (a host's variables): dict() of a string said "dictionary update sequence
    element #0 has length 1", naming no key."""
    if not isinstance(value, dict):
        raise TypeError(f"{where}: expected an object")
    return value


def status(value: Any, where: str) -> Status:
    """A host's collection status, as model.Status spells it."""
    try:
        return Status(value)
    except ValueError:
        raise ValueError(f"{where}: unknown status {value!r}"[:300]) from None


def present(paths: Sequence[Path], limit: int) -> None:
    """InputError naming the file (and its entry) unless each host's raw file is a regular
    file of at most `limit` bytes: a raw file missing, or over the cap, stopped the replay
    only after a history file was made (read_regular checks both again as it reads)."""
    for i, path in enumerate(paths):
        try:
            size = check_regular(str(path)).st_size
        except OSError as exc:
            said = exc.strerror or os.strerror(exc.errno or 0)
            raise InputError(
                f"cannot read hosts[{i}].stdout_file: {said}", file=str(path)
            ) from None
        if size > limit:
            raise InputError(
                f"{size} bytes, over the limit of {limit} bytes: {OVER_CAP}", file=str(path)
            )
