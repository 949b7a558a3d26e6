"""The fast path for simple expressions gives what jinja2's sandbox gives, value and error."""

from __future__ import annotations

from typing import Any

import pytest

from fleetmon.rules.expr import EvalError, Expr, compile_expr

CONTEXTS: list[dict[str, Any]] = [
    {},
    {"hypervisor": "kvm", "vm__state": "running", "vm__cpu_pct": 12.5, "value": 3},
    {"hypervisor": "xen", "vm__state": "crashed", "vm__cpu_pct": None, "value": None},
    {"psi__memory_some_pct": None, "disk__r_await_ms": 150.0, "disk__w_await_ms": None},
    {"psi__memory_some_pct": 7.5, "disk__r_await_ms": None, "disk__w_await_ms": 250},
    {"load__1m": "high", "cpu__count": 4, "value": True, "host": "h1"},
]
SOURCES = [
    "hypervisor == 'kvm'",
    "hypervisor != 'kvm' and value",
    "vm.state in ('running', 'blocked') and vm.cpu_pct is not none",
    "vm.state not in ['crashed', 'paused']",
    "psi.memory_some_pct is defined",
    "psi.memory_some_pct is undefined or psi.memory_some_pct > 5",
    "(disk.r_await_ms or 0) > 100 or (disk.w_await_ms or 0) > 200",
    "disk.r_await_ms > 100",  # None > 100: a TypeError worded by jinja2
    "1 < cpu.count <= 4",
    "0 < cpu.count < 2 < 3",
    "not value",
    "load.1m >= 2",  # 'high' >= 2
    "value == true",
    "vm.cpu_pct is none",
    "host",
    "(1, 2) == (1, value)",
]


def _sandbox(expr: Expr, ctx: dict[str, Any]) -> tuple[str, Any]:
    slow = compile_expr(expr.source)
    object.__setattr__(slow, "_fast", None)  # the same expression, sandbox only
    try:
        return "value", slow(ctx)
    except EvalError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("source", SOURCES)
def test_fast_path_matches_sandbox(source: str) -> None:
    expr = compile_expr(source)
    assert expr._fast is not None  # every source above is in the fast subset
    for ctx in CONTEXTS:
        try:
            got: tuple[str, Any] = ("value", expr(ctx))
        except EvalError as exc:
            got = ("error", str(exc))
        assert got == _sandbox(expr, ctx), (source, ctx)


@pytest.mark.parametrize("source", ["value | round(1) > 2", "cpu.count * 2 > 3", "-value < 0"])
def test_other_expressions_use_the_sandbox(source: str) -> None:
    assert compile_expr(source)._fast is None
