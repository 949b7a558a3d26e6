"""The subjects a run stores (pure): a host and its rows of each row scope."""

from __future__ import annotations

from fleetmon.model import HostReport, Row


def rows_of(host: HostReport, scope: str) -> tuple[Row, ...]:
    """A host's rows of one row scope."""
    return host.rows_of(scope)
