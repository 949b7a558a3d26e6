"""Keys of run.json's entries (pure helpers of io.rawstore): a missing key, or a status no
run writes, is a ValueError naming its key path (`hosts[3].spec.name: missing`), which
iter_raw gives as one line naming run.json; a bare KeyError said only "'name'"."""

from __future__ import annotations

from typing import Any

from fleetmon.model import Status


def key(d: Any, at: str, name: str) -> Any:
    """d[name]; ValueError naming the key path (`at`: its parent's, ending in a dot) when
    it is missing, TypeError when d is not an object."""
    if not isinstance(d, dict):
        raise TypeError(f"{at[:-1] or 'run.json'}: expected an object")
    if name not in d:
        raise ValueError(f"{at}{name}: missing")
    return d[name]


def status(value: Any, where: str) -> Status:
    """A host's collection status, as model.Status spells it."""
    try:
        return Status(value)
    except ValueError:
        raise ValueError(f"{where}: unknown status {value!r}"[:300]) from None
