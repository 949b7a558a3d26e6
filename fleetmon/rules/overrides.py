"""Per-host threshold overrides from the inventory variable `fleetmon_thresholds` (pure).

`fleetmon_thresholds: {host-steal: {warning: "> 10", critical: null, enabled: false}}`,
set on a host or a group; the inventory has already applied Ansible's variable precedence.
The variable is checked here only (the inventory takes any value of it): a malformed one is
an InventoryError, before collection by `check_overrides`, at evaluation by `Tuner`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fleetmon.errors import InventoryError, did_you_mean
from fleetmon.inventory.data import Origin
from fleetmon.inventory.values import is_deferred
from fleetmon.model import HostSpec, Severity
from fleetmon.rules.ranges import ThresholdError, parse_threshold
from fleetmon.rules.ruleset import OFF_HINT, Rule, RuleSet, check_rule

VAR = "fleetmon_thresholds"
KEYS = ("warning", "critical", "severity", "enabled")


class OverrideError(InventoryError):
    """A malformed `fleetmon_thresholds` of a host: `key` is where in the variable
    (`fleetmon_thresholds.host-steal.warning`), `reason` what is wrong there."""

    def __init__(self, host: str, key: str, reason: str) -> None:
        super().__init__(f"host '{host}': {key}: {reason}")
        self.key = key
        self.reason = reason


def _error(host: str, path: str, message: str) -> OverrideError:
    return OverrideError(host, f"{VAR}{path}", message)


def _changes(host: str, name: str, spec: object) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise _error(host, f".{name}", "expected a mapping of warning/critical/severity/enabled")
    out: dict[str, Any] = {}
    for key, raw in spec.items():
        where = f".{name}.{key}"
        if key not in KEYS:
            raise _error(host, where, f"unknown key{did_you_mean(str(key), KEYS)}")
        if key == "enabled":
            if not isinstance(raw, bool):
                raise _error(host, where, f"expected true or false, got {raw!r}")
            out[key] = raw
        elif key == "severity":
            if raw not in ("warning", "critical"):
                raise _error(host, where, f"expected warning or critical, got {raw!r}")
            out[key] = Severity(raw)
        else:
            try:
                out[key] = None if raw is None else parse_threshold(raw)
            except ThresholdError as exc:
                raise _error(host, where, str(exc)) from exc
    return out


def host_overrides(
    host: str, host_vars: Mapping[str, Any], rules: Sequence[Rule], known: Sequence[str]
) -> tuple[list[Rule], list[str]]:
    """The rules as tuned for this host, and notes about overrides naming no known rule.

    An override for an unknown rule is a note, not an error: the variable may be meant for
    a rule file this run did not load. A malformed override is an InventoryError.
    """
    return Tuner(known)(host, host_vars, rules)


class Tuner:
    """host_overrides for every host of a run, each distinct `fleetmon_thresholds` value read
    once: a group's mapping is one object shared by its hosts (the inventory does not copy
    it), so 2,000 hosts of a group with 2,000 overrides parse 2,000 entries, not 4 million.
    """

    def __init__(self, known: Sequence[str]) -> None:
        self._known = set(known)
        self._known_list = known
        # id(value) -> (value, its changes, its notes); the value is kept so its id stays its.
        self._parsed: dict[int, tuple[object, dict[str, dict[str, Any]], list[str]]] = {}
        self._tuned: dict[tuple[int, tuple[int, ...]], list[Rule]] = {}

    def _parse(self, host: str, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        hit = self._parsed.get(id(raw))
        if hit is not None and hit[0] is raw:
            return hit[1], hit[2]
        changes = {str(name): _changes(host, str(name), spec) for name, spec in raw.items()}
        notes = [
            f"{VAR}: no rule named '{name}' in the rule files{did_you_mean(name, self._known_list)}"
            for name in changes
            if name not in self._known
        ]
        self._parsed[id(raw)] = (raw, changes, notes)
        return changes, notes

    def __call__(
        self, host: str, host_vars: Mapping[str, Any], rules: Sequence[Rule]
    ) -> tuple[list[Rule], list[str]]:
        raw = host_vars.get(VAR)
        if raw is None:
            return list(rules), []
        if not isinstance(raw, Mapping):
            raise _error(host, "", "expected a mapping of rule name to overrides")
        changes, notes = self._parse(host, raw)
        key = (id(raw), tuple(map(id, rules)))
        done = self._tuned.get(key)
        if done is not None:
            return list(done), list(notes)
        out: list[Rule] = []
        for rule in rules:
            if rule.name not in changes:
                out.append(rule)
                continue
            tuned = dataclasses.replace(rule, **changes[rule.name])
            problem = check_rule(tuned)
            if problem is not None:
                raise _error(host, f".{rule.name}", problem[1] + OFF_HINT.get(problem[1], ""))
            out.append(tuned)
        self._tuned[key] = out
        return list(out), list(notes)


def check_overrides(
    rs: RuleSet, hosts: Sequence[HostSpec], origin: Callable[[str, str], Origin | None]
) -> None:
    """Refuse, before any host is probed, a malformed `fleetmon_thresholds` of these hosts
    (against every host rule of the set): an InventoryError at the file:line `origin(host,
    VAR)` gives. A value still a template or vault-encrypted is checked once rendered."""
    tune = Tuner(rs.names())
    rules = [r for r in rs.rules if r.scope != "fleet"]  # Tuner never sees fleet rules
    for host in hosts:
        raw = host.vars.get(VAR)
        if raw is None or is_deferred(raw):
            continue
        try:
            tune(host.name, host.vars, rules)
        except InventoryError as exc:
            at = origin(host.name, VAR)
            if at is None:
                raise
            raise InventoryError(exc.detail, file=at.file, line=at.line) from None
