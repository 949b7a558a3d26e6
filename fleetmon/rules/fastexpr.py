"""A fast path for simple `when:`/`expr:` expressions (pure): jinja2 nodes -> Python closures.

Rule conditions are mostly `x is defined`, `x in ('a', 'b')`, `(x or 0) > 100`: calling the
sandbox for each of them costs a jinja2 context per judgment (~1 ms per host). Only names,
constants, tuples/lists of them, and/or/not, comparisons and the defined/undefined/none tests
are compiled, to the same Python operations jinja2's code generator emits for them. Anything
else returns None (the sandbox evaluates it); a missing name or any exception at run time
raises (Fallback for a missing name), and the caller asks the sandbox, which gives the exact
value or error text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes

Fn = Callable[[Mapping[str, Any]], Any]


class Fallback(Exception):
    """The fast path cannot decide: evaluate the expression in the sandbox instead."""


#: jinja2's comparison operators (nodes.Operand.op) as the Python operators it compiles to.
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_MISSING = object()


def _name(name: str) -> Fn:
    def load(ctx: Mapping[str, Any]) -> Any:
        value = ctx.get(name, _MISSING)
        if value is _MISSING:
            raise Fallback(name)  # StrictUndefined semantics live in the sandbox
        return value

    return load


def _test(node: nodes.Test) -> Fn | None:
    if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return None
    if node.name in ("defined", "undefined") and isinstance(node.node, nodes.Name):
        key, want = node.node.name, node.name == "defined"
        return lambda ctx: (key in ctx) is want
    if node.name == "none":
        inner = build(node.node)
        if inner is None:
            return None
        return lambda ctx: inner(ctx) is None
    return None


def _compare(node: nodes.Compare) -> Fn | None:
    first = build(node.expr)
    ops = [(_COMPARE.get(o.op), build(o.expr)) for o in node.ops]
    if first is None or not ops:
        return None
    steps: list[tuple[Callable[[Any, Any], Any], Fn]] = []
    for op, fn in ops:
        if op is None or fn is None:
            return None
        steps.append((op, fn))
    if len(steps) == 1:
        op, right = steps[0]
        return lambda ctx: op(first(ctx), right(ctx))

    def chain(ctx: Mapping[str, Any]) -> Any:
        # Python's chained comparison: stop at the first false link, return the last result.
        left = first(ctx)
        result: Any = True
        for op, fn in steps:
            right = fn(ctx)
            result = op(left, right)
            if not result:
                return result
            left = right
        return result

    return chain


def build(node: nodes.Node) -> Fn | None:
    """A closure computing `node` like jinja2's compiled code does, or None if unsupported."""
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda ctx: value
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return _name(node.name)
    if isinstance(node, nodes.List) or (isinstance(node, nodes.Tuple) and node.ctx == "load"):
        items = [build(i) for i in node.items]
        if any(i is None for i in items):
            return None
        fns = [i for i in items if i is not None]
        if isinstance(node, nodes.Tuple) and all(isinstance(i, nodes.Const) for i in node.items):
            constant = tuple(i.value for i in node.items if isinstance(i, nodes.Const))
            return lambda ctx: constant  # ('running', 'blocked'), built once
        if isinstance(node, nodes.List):
            return lambda ctx: [f(ctx) for f in fns]
        return lambda ctx: tuple(f(ctx) for f in fns)
    if isinstance(node, nodes.And | nodes.Or):
        left, right = build(node.left), build(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.And):
            return lambda ctx: left(ctx) and right(ctx)
        return lambda ctx: left(ctx) or right(ctx)
    if isinstance(node, nodes.Not):
        inner = build(node.node)
        return None if inner is None else lambda ctx: not inner(ctx)
    if isinstance(node, nodes.Compare):
        return _compare(node)
    if isinstance(node, nodes.Test):
        return _test(node)
    return None


def compile_fast(node: nodes.Node) -> Fn | None:
    """The expression's fast closure, or None. It raises Fallback for a missing name, and
    whatever Python raises (None > 3): the caller then asks the sandbox, which words it."""
    return build(node)
