"""The exception tree and the typo suggester (pure).

    FleetmonError                 root: anything fleetmon raises on purpose
     +-- InputError               bad inventory, rule file or option: exit 4, one line
     |    +-- InventoryError
     |    +-- RuleError
     |    +-- OptionError
     +-- LockError                another run holds the lock: exit 3
     +-- OutputError              a report could not be written where asked: exit 4
     |    +-- ExportError         a Pushgateway, InfluxDB or Alertmanager refused or failed
     +-- HistoryError             the history file is not usable, or a run not recorded: exit 4
     +-- ProbeParseError          a host's output could not be parsed (becomes parse_error)

A failed host is not an exception: collection turns it into a RawResult status.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Process exit codes that are not health verdicts (0-3 are; see rules.verdict).
EXIT_INPUT = 4
EXIT_INTERNAL = 70
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class FleetmonError(Exception):
    """Root of every error fleetmon raises on purpose."""


class InputError(FleetmonError):
    """Invalid user input; the message is one line naming the file:line or key path."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.detail = message
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")


class InventoryError(InputError):
    """The inventory (or its group_vars/host_vars, or --limit) is invalid."""


class RuleError(InputError):
    """A rule file is invalid."""


class OptionError(InputError):
    """A command-line option is invalid."""


class LockError(FleetmonError):
    """Another fleetmon run holds the lock."""


class OutputError(FleetmonError):
    """A report (or the raw folder) could not be written; the message names the path."""


class ExportError(OutputError):
    """A network sink (Pushgateway, InfluxDB, Alertmanager) could not be reached or refused
    what was sent, after its retries; the message names the URL and why."""


class HistoryError(FleetmonError):
    """The history file is not a fleetmon history, is newer or corrupt (`refused`: it is
    then left untouched), or a run could not be recorded in it; the message names the file."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class ProbeParseError(FleetmonError):
    """Output from a host could not be parsed; the message names the section."""

    def __init__(self, section: str, message: str) -> None:
        self.section = section
        super().__init__(f"section {section}: {message}")


def suggest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to a misspelt `word`, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`" (did you mean 'hosts'?)"` for a typo, or an empty string. `cutoff`: difflib's
    ratio a candidate needs (names of hosts and VMs: higher, they look alike)."""
    best = suggest(word, candidates, cutoff)
    return f" (did you mean '{best}'?)" if best else ""
