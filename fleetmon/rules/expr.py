"""The `when:`/`expr:`/`message:` compiler (pure): jinja2's sandboxed expression engine.

Dotted metric names (`cpu.busy_pct`, `load.1m`, `fleet.cpu.busy_pct.p95`) are rewritten to
plain identifiers before jinja2 parses them, so `host` stays the host name and `1m` parses.
Each evaluation gets its own budget (budget.py): past it, the judgement fails with the reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.environment import Template, TemplateExpression
from jinja2.parser import Parser

from fleetmon.errors import did_you_mean
from fleetmon.model import catalog
from fleetmon.rules.budget import (
    MAX_INT_DIGITS,
    MAX_MESSAGE_CHARS,
    MAX_SOURCE_CHARS,
    METER,
    BudgetExceeded,
    Meter,
)
from fleetmon.rules.exprcheck import TOO_DEEP, check
from fleetmon.rules.exprcheck import ExprError as ExprError
from fleetmon.rules.fastexpr import Fn, compile_fast
from fleetmon.rules.historical import FITS, FUNCTIONS, Call, window_of
from fleetmon.rules.ranges import LEVELS
from fleetmon.rules.sandbox import ENV, instrument

_PREFIXES = frozenset(n.split(".", 1)[0] for n in catalog.names() if "." in n)
_KNOWN = frozenset(catalog.names())
_HISTORY = "|".join(sorted(FUNCTIONS, key=len, reverse=True))
_TOKEN_RE = re.compile(
    r"""(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    # A history function's metric is passed by name: `deriv(mem.used_pct, ...)`.
    rf"|(?<![\w.])(?P<fn>{_HISTORY})(?P<open>\s*\(\s*)(?P<arg>[A-Za-z_]\w*(?:\.\w+)+)"
    r"|(?<![\w.])(?P<name>[A-Za-z_]\w*(?:\.\w+)+)(?P<call>\s*\()?"
)
_BLOCK_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


@functools.lru_cache(maxsize=4096)
def mangle(metric: str) -> str:
    """The identifier a metric name has inside expressions (`cpu.busy_pct` -> `cpu__busy_pct`)."""
    return metric.replace(".", "__")


def _rewrite(source: str, used: list[str]) -> str:
    """Replace known dotted metric names by identifiers; refuse unknown ones with a hint."""

    def sub(m: re.Match[str]) -> str:
        if m.group("fn"):
            arg = m.group("arg")
            if arg in _KNOWN and arg.startswith("fleet."):  # never recorded: no series
                raise ExprError(
                    f"{m.group('fn')}: '{arg}' is a fleet statistic, which the history does"
                    " not keep: give the host metric it summarises"
                )
            if arg not in _KNOWN:
                raise ExprError(
                    f"{m.group('fn')}: unknown metric '{arg}'{did_you_mean(arg, catalog.kin(arg))}"
                )
            used.append(arg)
            return f'{m.group("fn")}{m.group("open")}"{arg}"'
        name = m.group("name")
        if name is None:
            return m.group(0)
        if name in _KNOWN:
            used.append(name)
            return mangle(name) + (m.group("call") or "")
        parts = name.split(".")
        # Underscore names are left for _check, which refuses them with a clearer message.
        if parts[0] in _PREFIXES and not m.group("call") and not any(p[:1] == "_" for p in parts):
            raise ExprError(f"unknown metric '{name}'{did_you_mean(name, catalog.kin(name))}")
        return m.group(0)

    return _TOKEN_RE.sub(sub, source)


def _demangler(used: list[str]) -> Mapping[str, str]:
    return {mangle(u): u for u in used}


def _demangle(text: str, names: Mapping[str, str]) -> str:
    for mangled, name in names.items():
        text = text.replace(mangled, name)
    return text


def _pick(context: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    # jinja2 copies the whole context on every call: hand it only the names the
    # expression reads (a host context holds hundreds of metrics and fleet statistics),
    # and the budget of this one evaluation.
    out = {n: context[n] for n in names if n in context}
    out[METER] = Meter()
    return out


@dataclass(frozen=True, slots=True)
class Expr:
    """A compiled `when:`/`expr:` expression; `metrics` are the catalogue names it reads."""

    source: str
    metrics: tuple[str, ...]
    _fn: TemplateExpression = field(repr=False, compare=False)
    _names: Mapping[str, str] = field(repr=False, compare=False)
    _reads: frozenset[str] = field(repr=False, compare=False)
    _fast: Fn | None = field(default=None, repr=False, compare=False)
    #: The history functions it calls, with their metrics and windows.
    history: tuple[Call, ...] = ()
    #: (metric, operator, text) of each string a metric is compared with (`vm.state == 'x'`,
    #: `cpu.busy_pct > '80'`): `rules lint` checks them.
    states: tuple[tuple[str, str, str], ...] = ()

    @property
    def reads(self) -> frozenset[str]:
        """Every context name the expression may read (mangled): nothing else is looked up."""
        return self._reads

    def __call__(self, context: Mapping[str, Any]) -> Any:
        """The expression's value; EvalError (with a readable reason) when it fails."""
        if self._fast is not None:
            try:
                return self._fast(context)
            except Exception:  # Fallback, or None > 3 and the like
                pass  # the sandbox below decides, and words any error
        return self._slow(context)

    def _slow(self, context: Mapping[str, Any]) -> Any:
        try:
            value = self._fn(_pick(context, self._reads))
            if isinstance(value, StrictUndefined):
                bool(value)  # raises UndefinedError with the name
            return value
        # A rule expression is user code: whatever it raises (undefined name, None > 3,
        # sandbox refusal, 1/0) becomes an UNKNOWN finding with the reason, never a crash.
        except Exception as exc:
            raise EvalError(_demangle(str(exc), self._names)) from exc

    def truth(self, context: Mapping[str, Any]) -> bool:
        """The expression as a condition; EvalError when it cannot be decided."""
        if self._fast is not None:
            try:
                return bool(self._fast(context))  # one call per condition: 170 a host
            except Exception:
                pass
        value = self._slow(context)
        try:
            return bool(value)
        except Exception as exc:
            raise EvalError(_demangle(str(exc), self._names)) from exc


class EvalError(RuntimeError):
    """An expression or message failed on one host's data."""


def compile_expr(source: str) -> Expr:
    """Compile a `when:`/`expr:` expression; ExprError when it is invalid or unsafe."""
    if not isinstance(source, str) or not source.strip():
        raise ExprError("expected a non-empty expression string")
    _check_length(source)
    try:
        return _compile_expr(source)
    except (RecursionError, SyntaxError):  # jinja2's parser, or Python's, on `a+a+…+a`
        raise ExprError(TOO_DEEP) from None


def _check_length(source: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise ExprError(
            f"{len(source):,} characters: an expression or a message may have "
            f"{MAX_SOURCE_CHARS:,} (split the rule)"
        )


def _compile_expr(source: str) -> Expr:
    used: list[str] = []
    text = _rewrite(source, used)
    try:
        parser = Parser(ENV, text, state="variable")
        node = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("unexpected text after the expression", 1)
    except TemplateSyntaxError as exc:
        names = _demangler(used)
        raise ExprError(
            f"syntax error in '{source}': {_demangle(exc.message or '', names)}"
        ) from exc
    except ValueError:  # the lexer's int() refuses more digits than Python prints
        raise ExprError(f"a number of more than {MAX_INT_DIGITS:,} digits") from None
    try:
        check(node, text)
    except ExprError as exc:
        raise ExprError(_demangle(str(exc), _demangler(used))) from None
    # An expression binds no names (no for/set), so every Name it loads is a read.
    reads = frozenset(
        n.name for n in (node, *node.find_all(nodes.Name)) if isinstance(n, nodes.Name)
    )
    fast = compile_fast(node)  # before instrument(): the fast path charges nothing
    calls = _history_calls(node)
    states = _states_compared(node)
    # What ENV.compile_expression does, from the checked tree.
    tree = nodes.Template([nodes.Assign(nodes.Name("result", "store"), node, lineno=1)], lineno=1)
    instrument(tree)
    fn = TemplateExpression(ENV.from_string(tree), undefined_to_none=False)
    metrics = tuple(dict.fromkeys(used))
    return Expr(source, metrics, fn, _demangler(used), reads, fast, calls, states)


_METRIC_NAMES = {mangle(n): n for n in catalog.names()}
_ORDER = ("eq", "ne", "lt", "lteq", "gt", "gteq")


def _states_compared(node: nodes.Node) -> tuple[tuple[str, str, str], ...]:
    """(metric, operator, text) of each string literal a metric is compared with: `==`,
    `!=`, `<`... on either side, or an item of the tuple or list `in`/`not in` looks in."""
    out: list[tuple[str, str, str]] = []
    for cmp in (node, *node.find_all(nodes.Compare)):
        if not isinstance(cmp, nodes.Compare):
            continue
        sides = [cmp.expr, *(o.expr for o in cmp.ops)]
        for i, op in enumerate(cmp.ops):
            left, right = sides[i], sides[i + 1]
            if op.op in _ORDER:
                pairs = [(left, [right]), (right, [left])]
            elif op.op in ("in", "notin") and isinstance(right, nodes.Tuple | nodes.List):
                pairs = [(left, right.items)]
            else:
                continue
            for name, others in pairs:
                if isinstance(name, nodes.Name) and name.name in _METRIC_NAMES:
                    metric = _METRIC_NAMES[name.name]
                    out += [
                        (metric, op.op, c.value)
                        for c in others
                        if isinstance(c, nodes.Const) and isinstance(c.value, str)
                    ]
    return tuple(out)


def _history_calls(node: nodes.Node) -> tuple[Call, ...]:
    """The history functions an expression calls; ExprError unless their arguments are
    literals (the command line fetches the windows they name before the rules run)."""
    out = []
    for call in (node, *node.find_all(nodes.Call)):  # find_all leaves the root out
        if not isinstance(call, nodes.Call):
            continue
        if not (isinstance(call.node, nodes.Name) and call.node.name in FUNCTIONS):
            continue
        fn = call.node.name
        args: list[object] = []
        for a in call.args:
            if isinstance(a, nodes.Neg) and isinstance(a.node, nodes.Const):
                args.append(-a.node.value)
            elif isinstance(a, nodes.Const):
                args.append(a.value)
            else:
                raise ExprError(f"{fn}: give its arguments as literals ('6h', 95)")
        allowed = ("min_points", "min_r2") if fn in FITS else ()
        for kw in call.kwargs:
            if kw.key not in allowed:
                raise ExprError(f"{fn}: unknown argument '{kw.key}'")
        if call.dyn_args or call.dyn_kwargs or not args or not isinstance(args[0], str):
            raise ExprError(f"{fn}: the first argument is a metric name")
        try:
            out.append(window_of(fn, args[0], args[1:]))
        except ValueError as exc:
            raise ExprError(str(exc)) from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A compiled `message:` template."""

    source: str
    _template: Template = field(repr=False, compare=False)
    _names: Mapping[str, str] = field(repr=False, compare=False)
    _reads: frozenset[str] = field(repr=False, compare=False)

    @property
    def reads(self) -> frozenset[str]:
        """Every context name the template may read: nothing else is looked up."""
        return self._reads

    def render(self, context: Mapping[str, Any]) -> str:
        """The message text; EvalError when the template fails on this data."""
        try:
            parts = []
            size = 0
            picked = _pick(context, self._reads)
            if LEVELS in context:  # the rule's levels, for the `judged` filter
                picked[LEVELS] = context[LEVELS]
            for part in self._template.generate(picked):
                size += len(part)
                if size > MAX_MESSAGE_CHARS:
                    raise BudgetExceeded(f"a message longer than {MAX_MESSAGE_CHARS:,} characters")
                parts.append(part)
            return "".join(parts)
        except Exception as exc:  # user template: see Expr.__call__
            raise EvalError(_demangle(str(exc), self._names)) from exc


def compile_message(source: str) -> MessageTemplate:
    """Compile a `message:` template; ExprError when it is invalid or unsafe."""
    if not isinstance(source, str):
        raise ExprError(f"expected a string, got {source!r}")
    _check_length(source)
    try:
        return _compile_message(source)
    except (RecursionError, SyntaxError):  # see compile_expr
        raise ExprError(TOO_DEEP) from None


def _compile_message(source: str) -> MessageTemplate:
    used: list[str] = []
    text = _BLOCK_RE.sub(lambda m: _rewrite(m.group(0), used), source)
    names = _demangler(used)
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise ExprError(
            f"syntax error in '{source}': {_demangle(exc.message or '', names)}"
        ) from exc
    except ValueError:  # see compile_expr
        raise ExprError(f"a number of more than {MAX_INT_DIGITS:,} digits") from None
    try:
        check(tree, text)
    except ExprError as exc:
        raise ExprError(_demangle(str(exc), names)) from None
    reads = frozenset(meta.find_undeclared_variables(tree))
    instrument(tree)
    return MessageTemplate(source, ENV.from_string(tree), names, reads)
