"""Inventory stage: the HostSpec each selected host is collected with, or why it is not (pure).

As Ansible when it connects: the variables fleetmon reads are decrypted (`!vault`) and
rendered (templates) for that host only, then checked; a host whose value cannot be had is
skipped with the reason and the place of the variable, the others are collected. A host
whose `ansible_connection` fleetmon cannot use (docker, winrm, network_cli...) is skipped.
A template whose regex could take exponential time to match ends the run (InventoryError).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetmon.errors import InventoryError
from fleetmon.inventory.regexcost import CostlyRegex
from fleetmon.inventory.resolve import Inventory
from fleetmon.inventory.values import Vaulted, is_deferred, is_template
from fleetmon.inventory.vars import (
    KNOWN_VARS,
    check_var,
    fleetmon_vars,
    resolve_host,
    unusable_connection,
)
from fleetmon.inventory.vault import Secret, VaultError, decrypt_text
from fleetmon.model import HostSpec

#: Renders one templated value of a host: (host, variable name, value) -> the value, or
#: ValueError with the reason (template.py provides it; None: templates are refused).
Renderer = Callable[[str, str, Any], Any]


@dataclass(frozen=True, slots=True)
class Planned:
    """A selected host as it will be collected, or the reason it is skipped."""

    spec: HostSpec
    skip: str | None = None


def where(inv: Inventory, host: str, var: str) -> str:
    """`var (file:line)`: a variable of a host, and where its winning value is set."""
    origin = inv.origin(host, var)
    if origin is None:
        return var
    line = f":{origin.line}" if origin.line is not None else ""
    return f"{var} ({origin.file}{line})"


def _value(
    name: str, var: str, value: Any, secrets: Sequence[Secret], render: Renderer | None
) -> Any:
    if isinstance(value, Vaulted):
        try:
            return decrypt_text(value.ciphertext, secrets)
        except VaultError as e:
            raise ValueError(f"vault-encrypted: {e}") from None
    if is_template(value):
        if render is None:
            raise ValueError(f"templates are not rendered here, got {value!r}")
        return render(name, var, value)
    return value


def plan_host(
    inv: Inventory,
    spec: HostSpec,
    secrets: Sequence[Secret] = (),
    render: Renderer | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Planned:
    """The HostSpec a host is collected with: its variables decrypted, rendered, checked."""
    if not is_deferred(spec.vars.get("ansible_connection")) and (skip := _connection_skip(spec)):
        return Planned(spec, skip)  # a docker host is skipped whatever else it holds
    values = {**defaults, **spec.vars} if defaults else spec.vars
    # The connection first: once rendered, it decides whether the rest matters.
    names = sorted(KNOWN_VARS.intersection(values), key=lambda v: v != "ansible_connection")
    changed: dict[str, Any] = {}
    for var in names:
        raw = values[var]
        if not is_deferred(raw):
            continue
        try:
            value = _value(spec.name, var, raw, secrets, render)
            check_var(var, value)
        except CostlyRegex as e:
            raise _costly(inv, e.host or spec.name, e.var or var, str(e)) from None
        except ValueError as e:
            return Planned(spec, f"{where(inv, spec.name, var)}: {e}")
        changed[var] = value
        if var == "ansible_connection":
            kind = resolve_host(spec.name, {var: value}, ()).connection
            if kind not in ("ssh", "local"):
                return Planned(spec, unusable_connection(str(value)))
    if (bad := inv.unusable(spec.name)) is not None:
        var, why = bad  # a value checked as the inventory loaded: the host is skipped
        return Planned(spec, f"{where(inv, spec.name, var)}: {why}")
    if not changed and not defaults:
        return Planned(spec)
    resolved = resolve_host(spec.name, {**values, **changed}, spec.groups)
    # Rendered fleetmon_* settings are what the probe and the rules read; the inventory's
    # own variables stay as written (a decrypted secret never lands in `vars`).
    shown = {**spec.vars, **{k: v for k, v in changed.items() if k.startswith("fleetmon_")}}
    return Planned(dataclasses.replace(resolved, vars=shown))


def _costly(inv: Inventory, host: str, var: str, why: str) -> InventoryError:
    """The run's error for a template's regex that could hang it: `file:line: var: why`."""
    origin = inv.origin(host, var)
    if origin is None:
        return InventoryError(f"{var}: {why}")
    return InventoryError(f"{var}: {why}", file=origin.file, line=origin.line)


def _connection_skip(spec: HostSpec) -> str | None:
    if spec.connection in ("ssh", "local"):
        return None
    return unusable_connection(str(spec.vars.get("ansible_connection", spec.connection)))


def plan_hosts(
    inv: Inventory,
    hosts: Sequence[HostSpec],
    secrets: Sequence[Secret] = (),
    render: Renderer | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[Planned]:
    """plan_host for each selected host, in order."""
    return [plan_host(inv, h, secrets, render, defaults) for h in hosts]


def deadline_skip(inv: Inventory, spec: HostSpec, interval_s: float) -> str | None:
    """Why a planned host is skipped for its own `fleetmon_timeout` (None: it is not): its
    deadline must exceed the wait between the probe's samples, or the host always times out."""
    timeout_s = fleetmon_vars(spec).timeout_s
    if timeout_s is None or timeout_s > interval_s:
        return None
    return (
        f"{where(inv, spec.name, 'fleetmon_timeout')}: {timeout_s:g} s must exceed the"
        f" interval between the samples ({interval_s:g} s), or the host always times out"
    )
