"""What each jinja2 filter costs a rule judgement, charged before it runs (pure).

Most filters read or convert their input once: they are charged its weight. Those whose
output grows with an argument (a width, a count, a separator repeated per item) are charged
that output; an iterator they would consume is handed over as the list it was counted as.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from jinja2.exceptions import SecurityError

from fleetmon.rules.budget import MAX_INT_DIGITS, Meter, printf_widths, too_many_digits

#: Filters that look at a value without reading it through (or read at most one item).
CHEAP = frozenset(
    {"abs", "attr", "count", "d", "default", "duration", "first", "float", "int", "items"}
    | {"last", "length", "safe"}
)
#: Filters that run Python code for each item (a filter, a test, an attribute lookup, a
#: comparison): an operation per item.
PER_ITEM = frozenset(
    {"dictsort", "groupby", "map", "max", "min", "reject", "rejectattr", "select"}
    | {"selectattr", "sort", "sum", "unique"}
)

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


def _arg(args: Args, kwargs: Kwargs, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _listed(meter: Meter, value: Any) -> Any:
    """An iterator as a list (jinja2 would read it through anyway), counted item by item."""
    if isinstance(value, Collection):
        return value
    out = []
    for item in value:
        meter.step()
        out.append(item)
    return out


def replaced_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    """The length of text.replace(old, new, count), without building it."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return len(text)
    n = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(text) + n * len(new)


def _center(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    meter.take(max(meter.weight(value), _count(_arg(args, kwargs, 0, "width", 80))))
    return value


def _indent(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    width = _arg(args, kwargs, 0, "width", 4)
    prefix = _count(width) if isinstance(width, int) else meter.weight(width)
    size = meter.weight(value)
    # Every line but the first (unless first=True) gets the prefix; blank lines may too.
    lines = value.count("\n") if isinstance(value, str) else size
    if _arg(args, kwargs, 1, "first"):
        lines += 1
    meter.take(size + (lines + 1) * prefix)  # the prefix is built first, lines or not
    return value


def _format(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    try:
        widths = printf_widths(value) if isinstance(value, str) else 0
    except ValueError as exc:
        raise SecurityError(str(exc)) from None
    meter.take(meter.weight(value) + widths + meter.weight(args) + meter.weight(kwargs))
    return value


def _replace(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
    meter.take(meter.weight(value) + meter.weight(old) + meter.weight(new))
    count = _arg(args, kwargs, 2, "count")
    if isinstance(value, str):
        meter.take(replaced_size(value, str(old), str(new), -1 if count is None else count))
    return value


def _join(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    value = _listed(meter, value)
    separator = meter.weight(_arg(args, kwargs, 0, "d", ""))
    meter.take(meter.weight(value) + separator * max(len(value) - 1, 0))
    return value


def _wordwrap(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    size = meter.weight(value)
    wrap = _arg(args, kwargs, 2, "wrapstring")
    # At most one line per character, each ending in the wrap string.
    meter.take(size + (size + 1) * (1 if wrap is None else meter.weight(wrap)))
    return value


def _truncate(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    meter.take(meter.weight(value) + meter.weight(_arg(args, kwargs, 2, "end", "...")))
    return value


def _batch(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    meter.take(meter.weight(value))
    if _arg(args, kwargs, 1, "fill_with") is not None:
        meter.take(_count(_arg(args, kwargs, 0, "linecount")))  # the last batch is filled up
    return value


def _slice(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    meter.take(meter.weight(value) + _count(_arg(args, kwargs, 0, "slices")))
    return value


def _sum(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    value = _listed(meter, value)
    size = meter.weight(value)
    start = _arg(args, kwargs, 1, "start", 0)
    # Adding lists (start=[]) copies the sum so far at each step: quadratic.
    meter.take(size if isinstance(start, int | float) else size * max(len(value), 1))
    return value


def _round(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    # round(5, -n) computes 10 ** n, as do the ceil and floor methods.
    precision = _arg(args, kwargs, 0, "precision", 0)
    if isinstance(precision, int) and abs(precision) > MAX_INT_DIGITS:
        raise too_many_digits()
    return value


def _tojson(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    if _arg(args, kwargs, 0, "indent") is not None:
        raise SecurityError("tojson(indent) is not available in rule expressions")
    meter.take(6 * meter.weight(value))  # '<' is written \u003c
    return value


def _urlencode(meter: Meter, value: Any, args: Args, kwargs: Kwargs) -> Any:
    meter.take(3 * meter.weight(value))  # a byte becomes %XX
    return value


Estimate = Callable[[Meter, Any, Args, Kwargs], Any]
#: Filter name -> its charge; the other filters not CHEAP are charged their input's weight.
ESTIMATES: dict[str, Estimate] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "round": _round,
    "judged": _round,  # round_judged: round, with more decimals when a level needs them
    "slice": _slice,
    "sum": _sum,
    "tojson": _tojson,
    "truncate": _truncate,
    "urlencode": _urlencode,
    "wordwrap": _wordwrap,
}
