"""The rules' jinja2 environment (pure): the immutable sandbox, metered by budget.Meter.

Operators, method calls, filters and `{{ }}` output charge the Meter the render context
carries; `instrument` reroutes loop steps, comparisons, `~` and slices through it too.
No globals (`range`, `cycler`, …); methods and filters that size their output by an argument
are charged that size before they run.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, cast

from jinja2 import StrictUndefined, nodes, pass_context, pass_environment, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.tests import TESTS
from jinja2.visitor import NodeTransformer

from fleetmon.rules import filtercost
from fleetmon.rules.budget import (
    MAX_EXPONENT,
    METER,
    Meter,
    check_int,
    printf_widths,
    repeated_size,
    spec_widths,
    too_long,
    too_many_digits,
)
from fleetmon.rules.historical import FUNCTIONS, Bound
from fleetmon.rules.ranges import LEVELS, duration_judged, round_judged

Args = tuple[Any, ...]
#: Methods a rule may call, by the type that has them; anything else is refused.
STR_METHODS = frozenset(
    {"capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "format"}
    | {"format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit"}
    | {"isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper"}
    | {"join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix"}
    | {"replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split"}
    | {"splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"}
)
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
SEQUENCE_METHODS = frozenset({"count", "index"})
LOOP_METHODS = frozenset({"cycle", "changed"})
METHODS = STR_METHODS | MAPPING_METHODS | SEQUENCE_METHODS | LOOP_METHODS
#: jinja2 filters left out: `random` would make a judgement depend on chance; the HTML and
#: debugging helpers have no use in a one-line message.
REMOVED_FILTERS = frozenset({"pprint", "random", "urlize", "xmlattr"})
#: Tests that compare their operands (as deep as they go): charged like `==`.
_COMPARING_TESTS = frozenset(
    {"==", "!=", "<", "<=", ">", ">=", "eq", "equalto", "ne", "lt", "lessthan", "le", "gt"}
    | {"greaterthan", "ge", "in"}
)
_CONTEXT = pass_context(lambda: None).jinja_pass_arg  # type: ignore[attr-defined]
_EVAL_CONTEXT = pass_eval_context(lambda: None).jinja_pass_arg  # type: ignore[attr-defined]
_ENVIRONMENT = pass_environment(lambda: None).jinja_pass_arg  # type: ignore[attr-defined]


def meter_of(context: Context) -> Meter:
    """The Meter of the judgement being rendered."""
    meter = context.parent.get(METER)
    if not isinstance(meter, Meter):
        raise SecurityError("rule code runs only with a budget")
    return meter


def _printf(fmt: str) -> int:
    try:
        return printf_widths(fmt)
    except ValueError as exc:
        raise SecurityError(str(exc)) from None


def _power(left: Any, right: Any) -> Any:
    if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
    if too_long("**", left, right):
        raise too_many_digits()
    return left**right


def _charge_str_method(meter: Meter, text: str, name: str, args: Args) -> Args:
    """Charge what a str method builds; `join` gets its items as a list (counted once)."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        meter.take(max(len(text), first if isinstance(first, int) else 0))
    elif name == "expandtabs":
        size = first if isinstance(first, int) else 8
        meter.take(len(text) + text.count("\t") * max(size, 0))
    elif name == "replace" and len(args) >= 2:
        meter.take(filtercost.replaced_size(text, *args[:3]))
    elif name == "join" and args:
        items = first if isinstance(first, Collection) else list(cast(Iterable[Any], first))
        meter.take(meter.weight(items) + len(text) * max(len(items) - 1, 0))
        return (items, *args[1:])
    else:
        meter.take(len(text))
    return args


def _allowed(owner: object, name: str) -> bool:
    if isinstance(owner, str):
        return name in STR_METHODS and name not in ("format", "format_map")  # see _StrFormat
    if isinstance(owner, Mapping):
        return name in MAPPING_METHODS
    if isinstance(owner, list | tuple):
        return name in SEQUENCE_METHODS
    if isinstance(owner, Bound):  # avg_over(...), deriv(...): the subject's history
        return name in FUNCTIONS
    return isinstance(owner, LoopContext) and name in LOOP_METHODS


class _Formatter(SandboxedFormatter):
    """str.format with every field charged: its value as text, and its width."""

    def __init__(self, env: _Env, meter: Meter) -> None:
        super().__init__(env)
        self._meter = meter

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        obj, first = super().get_field(field_name, args, kwargs)
        self._meter.charge(obj)
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        self._meter.take(spec_widths(format_spec))
        return super().format_field(value, format_spec)


class _StrFormat:
    """`text.format` / `text.format_map` as rule code sees them: run only through _Env.call."""

    def __init__(self, text: str, is_map: bool) -> None:
        self.text = text
        self.is_map = is_map

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        raise SecurityError("format() runs only inside a rule expression")

    def run(self, env: _Env, meter: Meter, args: Args, kwargs: dict[str, Any]) -> str:
        meter.take(len(self.text))
        formatter = _Formatter(env, meter)
        if not self.is_map:
            return formatter.vformat(self.text, args, kwargs)
        if kwargs or len(args) != 1:
            raise TypeError("format_map() takes exactly one argument")
        return formatter.vformat(self.text, (), args[0])


class _Env(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        meter = meter_of(context)
        meter.step()
        # A huge int (a hex literal, `int(text, 16)`, an inventory value) makes division
        # and multiplication quadratic: numbers stay within what Python prints.
        check_int(left)
        check_int(right)
        if operator == "**":
            return _power(left, right)
        if operator == "*":
            if too_long("*", left, right):
                raise too_many_digits()
            meter.take(repeated_size(left, right))
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                meter.take(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):  # printf formatting
            meter.take(len(left) + _printf(left) + meter.weight(right))
        return self.binop_table[operator](left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        meter = meter_of(context)
        meter.step()
        if isinstance(obj, _StrFormat):
            return obj.run(self, meter, args, kwargs)
        if isinstance(obj, Undefined):
            return obj(*args, **kwargs)  # raises the error that names the undefined value
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", type(obj).__name__)
        if not _allowed(owner, name):
            raise SecurityError(f"'{name}()' is not available in rule expressions")
        meter.charge(args)
        meter.charge(kwargs)
        if isinstance(owner, str):
            args = _charge_str_method(meter, owner, name, args)
        elif isinstance(owner, list | tuple):
            meter.charge(owner)  # count() and index() compare every item
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if (
            isinstance(value, types.BuiltinMethodType)
            and value.__name__ in ("format", "format_map")
            and isinstance(value.__self__, str)
        ):
            return _StrFormat(value.__self__, value.__name__ == "format_map")
        return None


def _metered_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, charging its cost (filtercost) before it runs."""
    kind = getattr(func, "jinja_pass_arg", None)
    estimate = filtercost.ESTIMATES.get(name)
    cheap = name in filtercost.CHEAP
    per_item = name in filtercost.PER_ITEM

    @pass_context
    def metered(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        meter = meter_of(context)
        meter.step(len(value) if per_item and isinstance(value, Collection) else 1)
        if estimate is not None:
            value = estimate(meter, value, args, kwargs)
        elif not cheap:
            meter.charge(value)
        if kind is _CONTEXT:
            result = func(context, value, *args, **kwargs)
        elif kind is _EVAL_CONTEXT:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif kind is _ENVIRONMENT:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        check_int(result)  # int('f' * 9999, 16)
        return result

    return metered


def _metered_test(func: Callable[..., Any]) -> Callable[..., Any]:
    @pass_context
    def metered(context: Context, value: Any, *args: Any) -> Any:
        meter = meter_of(context)
        meter.step()
        meter.charge(value)
        meter.charge(args)
        return func(value, *args)

    return metered


@pass_context
def _duration(context: Context, value: Any) -> str:
    """`{{ value | duration }}`: duration_judged over the levels of the rule the message is of."""
    return duration_judged(value, context.parent.get(LEVELS, ()))


@pass_context
def _judged(context: Context, value: Any, precision: int | None = None) -> Any:
    """`{{ value | judged(1) }}`: round_judged over the levels of the rule the message is of."""
    return round_judged(value, context.parent.get(LEVELS, ()), precision)


@pass_context
def _iterate(context: Context, iterable: Any, cost: int) -> Any:
    """A `{% for %}` loop's items, each charged the operations of the loop's body."""
    meter = meter_of(context)
    for item in iterable:
        meter.step(cost)
        yield item


@pass_context
def _weigh(context: Context, value: Any) -> Any:
    """An operand of a comparison, a key or an index: charged as deep as it goes."""
    meter_of(context).charge(value)
    return value


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """`a ~ b`: each part charged as text before it is converted."""
    meter = meter_of(context)
    for part in parts:
        meter.charge(part)
    return "".join(map(str, parts))


@pass_context
def _sized(context: Context, value: Any) -> Any:
    """A slice, charged its length."""
    meter_of(context).take(len(value) if isinstance(value, Collection) else 1)
    return value


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    """`{{ value }}`: charged before it is printed (text is counted as it is output)."""
    if type(value) is not str:
        meter_of(context).charge(value)
    return value


class _Instrument(NodeTransformer):
    """Route loop steps, comparison operands, `~`, slices, keys and indexes to the Meter."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        cost = _body_cost(node)  # counted before the body gets its own wrappers
        self.generic_visit(node)
        node.iter = _through("_iterate", cast(nodes.Expr, node.iter), nodes.Const(cost))
        return node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _weighed(node.expr)
        for op in node.ops:
            op.expr = _weighed(op.expr)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        if all(isinstance(n, nodes.Const) for n in node.nodes):
            return node
        return _through("_concat", nodes.List(node.nodes, lineno=node.lineno))

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):
            return _through("_sized", node)
        node.arg = _weighed(node.arg)
        return node

    def visit_Pair(self, node: nodes.Pair) -> nodes.Node:
        self.generic_visit(node)
        node.key = _weighed(node.key)
        return node


def _body_cost(loop: nodes.For) -> int:
    """The nodes one pass of a loop evaluates (an inner loop's body charges for itself)."""
    todo: list[nodes.Node] = [*loop.body, *([loop.test] if loop.test else [])]
    cost = 1
    while todo:
        node = todo.pop()
        cost += 1
        if isinstance(node, nodes.For):
            todo.extend(n for n in (node.iter, node.test) if n is not None)
        else:
            todo.extend(node.iter_child_nodes())
    return cost


def _through(name: str, node: nodes.Expr, *args: nodes.Expr) -> nodes.Expr:
    return nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)


def _weighed(node: nodes.Expr) -> nodes.Expr:
    return node if isinstance(node, nodes.Const) else _through("_weigh", node)


def instrument(tree: nodes.Node) -> None:
    """Make a parsed, checked expression or template charge the Meter (in place)."""
    _Instrument().visit(tree)
    tree.set_environment(ENV)


def _environment() -> _Env:
    env = _Env(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, finalize=_finalize
    )
    env.globals.clear()
    filters = {
        **FILTERS,
        "duration": _duration,
        "judged": _judged,
    }  # {{ value | duration }}: 2.3 days
    env.filters = {
        name: _metered_filter(name, func)
        for name, func in filters.items()
        if name not in REMOVED_FILTERS
    }
    env.filters.update(_iterate=_iterate, _weigh=_weigh, _concat=_concat, _sized=_sized)
    env.tests = {
        name: _metered_test(cast(Callable[..., Any], func)) if name in _COMPARING_TESTS else func
        for name, func in TESTS.items()
    }
    return env


ENV = _environment()
