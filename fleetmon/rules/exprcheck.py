"""What a rule expression or message may not say, refused when the rule file loads (pure).

`fleetmon rules lint` reports these with the file and line: literal `_names`; functions
(rules have none: no `range`); methods and filters rules do not have; message statements
other than `{% if %}`, `{% for %}`, `{% set %}` and `{% with %}`; and sizes written as
constants that no judgement's budget could pay (`'x' * 10**9`, `center(10**9)`, `9 ** 99999`).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

from jinja2 import nodes

from fleetmon.errors import did_you_mean
from fleetmon.rules.budget import (
    MAX_CELLS,
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_INT_DIGITS,
    printf_widths,
    repeated_size,
    spec_widths,
    too_long,
)
from fleetmon.rules.historical import FUNCTIONS
from fleetmon.rules.sandbox import ENV, METHODS, REMOVED_FILTERS


class ExprError(ValueError):
    """An expression or template that cannot be compiled; the message says why."""


#: Nesting a rule never needs and Python's compiler cannot take (it stops at 200 brackets;
#: jinja2's code for `a + b` is a call, two brackets deep).
MAX_DEPTH = 100
TOO_DEEP = "nested too deeply to compile (split it into simpler rules)"
_UNKNOWN: Any = object()
#: Message statements allowed; the others are named in the error as they are written.
_STATEMENTS = (nodes.Output, nodes.If, nodes.For, nodes.Assign, nodes.With)
_KEYWORDS = {
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.FilterBlock: "filter",
    nodes.AssignBlock: "set",
    nodes.Block: "block",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
    nodes.Extends: "extends",
    nodes.ScopedEvalContextModifier: "autoescape",
}
#: Filters and str methods whose argument (by position and name) is the size they build.
_SIZED_FILTERS = {"center": (0, "width"), "indent": (0, "width"), "slice": (0, "slices")}
_PRECISION = (0, "precision")  # round(5, -n) computes 10 ** n
_SIZED_METHODS = {"center": 0, "ljust": 0, "rjust": 0, "zfill": 0}


def _too_big(what: str, size: int) -> ExprError:
    return ExprError(
        f"{what} would build {size:,} characters or items "
        f"(a rule judgement may build {MAX_CELLS:,})"
    )


def _too_long(what: str) -> ExprError:
    return ExprError(f"{what} would make a number of more than {MAX_INT_DIGITS:,} digits")


def _printf(fmt: str) -> None:
    try:
        widths = printf_widths(fmt)
    except ValueError as exc:
        raise ExprError(str(exc)) from None
    if widths > MAX_CELLS:
        raise _too_big(f"'{fmt[:40]}'", widths)


def _binop(node: nodes.BinExpr, left: Any, right: Any) -> Any:
    """The value of a constant operation, or ExprError when it is bound to exceed the budget."""
    if isinstance(node, nodes.Pow) and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise ExprError(f"exponent {right} is larger than {MAX_EXPONENT}")
    if isinstance(node, nodes.Pow | nodes.Mul) and too_long(node.operator, left, right):
        raise _too_long(f"'{node.operator}'")
    if isinstance(node, nodes.Mul) and repeated_size(left, right) > MAX_CELLS:
        raise _too_big("'*'", repeated_size(left, right))
    if isinstance(node, nodes.Mod) and isinstance(left, str):
        _printf(left)
    if left is _UNKNOWN or right is _UNKNOWN:
        return _UNKNOWN
    try:
        return ENV.binop_table[node.operator](left, right)
    except Exception:  # 1 / 0, 'a' - 1: an error at run time, not a size
        return _UNKNOWN


def _const(node: nodes.Node) -> Any:
    """The value of a node written with constants only (refusing oversized ones), or _UNKNOWN."""
    if isinstance(node, nodes.Const):
        if isinstance(node.value, int) and node.value.bit_length() > MAX_INT_BITS:
            raise ExprError(f"a number of more than {MAX_INT_DIGITS:,} digits")  # 0xfff…
        if isinstance(node.value, float) and math.isinf(node.value):  # 1e999 compiles to `inf`
            raise ExprError("a number too large (past 1.8e308, the largest float)")
        return node.value
    if isinstance(node, nodes.Neg | nodes.Pos):
        value = _const(node.node)
        if isinstance(value, int | float):
            return -value if isinstance(node, nodes.Neg) else value
        return _UNKNOWN
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_const(i) for i in node.items]
        if any(i is _UNKNOWN for i in items):
            return _UNKNOWN
        return items if isinstance(node, nodes.List) else tuple(items)
    if isinstance(node, nodes.BinExpr):
        return _binop(node, _const(node.left), _const(node.right))
    return _UNKNOWN


def _argument(args: Sequence[nodes.Expr], kwargs: Sequence[Any], at: int, name: str) -> Any:
    """A constant argument given by position or by keyword, or _UNKNOWN."""
    if len(args) > at:
        return _const(args[at])
    return next((_const(k.value) for k in kwargs if k.key == name), _UNKNOWN)


def _check_filter(node: nodes.Filter) -> None:
    if node.name in REMOVED_FILTERS:
        raise ExprError(f"filter '{node.name}' is not available in rule expressions")
    if node.name not in ENV.filters:
        raise ExprError(f"unknown filter '{node.name}'{did_you_mean(node.name, ENV.filters)}")
    if node.name == "format" and node.node is not None:
        fmt = _const(node.node)
        if isinstance(fmt, str):
            _printf(fmt)
    if node.name in ("round", "judged"):
        precision = _argument(node.args, node.kwargs, *_PRECISION)
        if isinstance(precision, int) and abs(precision) > MAX_INT_DIGITS:
            raise _too_long(f"{node.name}({precision})")
    sized = _SIZED_FILTERS.get(node.name)
    if sized is not None:
        size = _argument(node.args, node.kwargs, *sized)
        if isinstance(size, int) and size > MAX_CELLS:
            raise _too_big(f"{node.name}({size})", size)


def _check_call(node: nodes.Call) -> None:
    func = node.node
    if isinstance(func, nodes.Name) and func.name not in FUNCTIONS:
        raise ExprError(
            f"'{func.name}()' is not available: the functions of rule expressions are the "
            "history functions (avg_over, deriv, time_to, …)"
        )
    if isinstance(func, nodes.Name):
        return  # their arguments are literals, checked by expr._history_calls
    if not isinstance(func, nodes.Getattr):
        return  # decided when it runs
    if func.attr not in METHODS:
        raise ExprError(f"'.{func.attr}()' is not available in rule expressions")
    at = _SIZED_METHODS.get(func.attr)
    if at is not None:
        size = _argument(node.args, node.kwargs, at, "width")
        if isinstance(size, int) and size > MAX_CELLS:
            raise _too_big(f".{func.attr}({size})", size)
    text = _const(func.node)
    if func.attr == "format" and isinstance(text, str):
        try:
            specs = [spec for _, _, spec, _ in string.Formatter().parse(text) if spec]
        except ValueError as exc:
            raise ExprError(f"bad format string {text!r}: {exc}") from None
        widths = sum(spec_widths(s) for s in specs if "{" not in s)
        if widths > MAX_CELLS:
            raise _too_big(f"'{text[:40]}'.format()", widths)


def _check_names(tree: nodes.Node, text: str) -> None:
    """Refuse literal access to underscore names; the sandbox still guards computed ones."""
    bad_names: list[str] = []
    kinds = (nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Test)
    for n in (tree, *tree.find_all(kinds)):
        bad: object = None
        if isinstance(n, nodes.Getattr):
            bad = n.attr
        elif isinstance(n, nodes.Getitem) and isinstance(n.arg, nodes.Const):
            bad = n.arg.value
        elif isinstance(n, nodes.Name | nodes.Test) or (
            isinstance(n, nodes.Filter) and n.name.startswith("_")
        ):
            bad = n.name
        elif isinstance(n, nodes.Filter) and n.name == "attr" and n.args:
            arg = n.args[0]
            bad = arg.value if isinstance(arg, nodes.Const) else None
        if isinstance(bad, str) and bad.startswith("_"):
            bad_names.append(bad)
    if bad_names:
        first = min(bad_names, key=text.find)  # the one written first reads best
        raise ExprError(f"access to '{first}' is not allowed")


def _depth(tree: nodes.Node) -> int:
    """How deeply the tree nests, walked without recursion (`a+a+…+a` nests per `+`)."""
    deepest = 0
    todo = [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def check(tree: nodes.Node, text: str) -> None:
    """ExprError for the first thing a rule expression or message may not say."""
    if _depth(tree) > MAX_DEPTH:
        raise ExprError(TOO_DEEP)
    _check_names(tree, text)
    for stmt in tree.find_all(nodes.Stmt):
        if not isinstance(stmt, _STATEMENTS):
            keyword = _KEYWORDS.get(type(stmt), type(stmt).__name__.lower())
            raise ExprError(
                f"'{{% {keyword} %}}' is not allowed in a message "
                "(use {{ }}, {% if %}, {% for %} and {% set %})"
            )
        if isinstance(stmt, nodes.For) and stmt.recursive:
            raise ExprError("'{% for … recursive %}' is not allowed in a message")
    kinds = (nodes.Filter, nodes.Test, nodes.Call, nodes.BinExpr, nodes.Const)
    folded: set[int] = set()  # operations already checked as part of an outer one
    for node in (tree, *tree.find_all(kinds)):
        if isinstance(node, nodes.Filter):
            _check_filter(node)
        elif isinstance(node, nodes.Test) and node.name not in ENV.tests:
            raise ExprError(f"unknown test '{node.name}'{did_you_mean(node.name, ENV.tests)}")
        elif isinstance(node, nodes.Call):
            _check_call(node)
        elif isinstance(node, nodes.BinExpr | nodes.Const) and id(node) not in folded:
            _const(node)
            folded.update(id(n) for n in node.find_all((nodes.BinExpr, nodes.Const)))
