"""Threshold parsing and testing (pure): comparisons (`> 5`) and Nagios ranges (`@10:20`).

Range semantics follow the Nagios plugin development guidelines ("Threshold and ranges"):
alert when the value is outside start..end, edges inclusive; `@` inverts to inside.
A value shown beside a threshold (fmt_judged, judged_places, and the `judged` filter of
messages: round_judged) keeps the decimals it needs to stay on the side of it the value is:
`0.0149 > 0.01`, not `0.01 > 0.01`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetmon.model import MetricValue
from fleetmon.model.durations import duration_unit, format_duration

_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # ASCII digits only
_NUMBER_RE = re.compile(_NUMBER)
_COMPARISON_RE = re.compile(r"(>=|<=|==|!=|>|<)\s*(.*)", re.DOTALL)
_RANGE_RE = re.compile(rf"(@)?(?:(~|{_NUMBER})?(:))?({_NUMBER})?")

OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

FORMS = "a comparison (> >= < <= == !=) or a Nagios range (10, 10:, ~:10, 10:20, @10:20)"


class ThresholdError(ValueError):
    """A threshold string that is neither a comparison nor a Nagios range."""


class ValueKindError(TypeError):
    """A value of the wrong kind for the threshold (a state string against a number)."""


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _number(value: MetricValue, text: str) -> float:
    if _kind(value) != "number":
        raise ValueKindError(f"value {value!r} is not a number, threshold '{text}' needs one")
    assert isinstance(value, int | float)
    if math.isnan(value):
        raise ValueKindError(f"value is NaN, threshold '{text}' needs a number")
    return float(value)


@dataclass(frozen=True, slots=True)
class Comparison:
    """`> 5`, `!= running`, `== true`: alerts when the comparison holds."""

    text: str
    op: str
    operand: float | bool | str

    @property
    def kind(self) -> str:
        return _kind(self.operand)

    def alerts(self, value: MetricValue) -> bool:
        """Whether `value` breaches this threshold; ValueKindError on a kind mismatch."""
        cls = value.__class__
        if self.operand.__class__ is float and (cls is int or (cls is float and value == value)):
            # The usual judgment (a number against a number), without the kind checks.
            return bool(OPS[self.op](float(value), self.operand))  # type: ignore[arg-type]
        if self.kind == "number":
            return bool(OPS[self.op](_number(value, self.text), self.operand))
        if _kind(value) != self.kind:
            raise ValueKindError(
                f"value {value!r} is not a {self.kind}, threshold '{self.text}' needs one"
            )
        return bool(OPS[self.op](value, self.operand))


@dataclass(frozen=True, slots=True)
class NagiosRange:
    """`[@]start:end`: alerts outside start..end (inside with `@`), edges inclusive."""

    text: str
    start: float
    end: float
    inside: bool = False

    kind = "number"

    def alerts(self, value: MetricValue) -> bool:
        """Whether `value` breaches this range; ValueKindError when it is not a number."""
        cls = value.__class__
        if cls is int or (cls is float and value == value):
            x = float(value)  # type: ignore[arg-type]
        else:
            x = _number(value, self.text)
        within = self.start <= x <= self.end
        return within if self.inside else not within


Threshold = Comparison | NagiosRange


def fmt_value(value: MetricValue) -> str:
    """A value for a message: floats to at most 2 decimals, no trailing zeros; 0 for a
    tiny negative (-0.001 is `0`, not `-0`, which reads as a sign error)."""
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return str(value)


def fmt_judged(value: MetricValue, levels: Sequence[Threshold]) -> str:
    """fmt_value, with the decimals a float needs for each of `levels` to judge the text as
    it judged the value: 0.0149 over `> 0.01` is `0.015`, not `0.01` (`0.01 > 0.01` reads
    as a bug at 3 a.m.); 89.996 under `< 90` is `89.996`. Usually the 2 decimals."""
    text = fmt_value(value)
    if not isinstance(value, float) or not math.isfinite(value):
        return text
    places = _judged_places(value, levels, 2)
    if places == 2:
        return text  # the usual case: 2 decimals do
    return repr(value) if places is None else f"{value:.{places}f}".rstrip("0").rstrip(".")


def _judged_places(
    value: float, levels: Sequence[Threshold], start: int, unit: float = 1.0
) -> int | None:
    """The fewest decimals, `start` or more, that leave `value` rounded on its side of each
    numeric level (what fmt_judged, round_judged and judged_places show); None when none
    below 18 does. round(value, p) is the figure f"{value:.{p}f}" writes; with `unit`, the
    value is written in units of that size (a duration in hours: 3600)."""
    numeric = [t for t in levels if isinstance(t, NagiosRange) or t.operand.__class__ is float]
    want = [t.alerts(value) for t in numeric]
    for places in range(start, max(start + 1, 18)):
        shown = round(value / unit, places) * unit if unit != 1.0 else round(value, places)
        if shown == value or [t.alerts(shown) for t in numeric] == want:
            return places
    return None


#: The context key under which a message template finds its rule's levels (`judged`).
LEVELS = "_fleetmon_levels"


def round_judged(value: Any, levels: Sequence[Threshold], precision: int | None = None) -> Any:
    """The `judged` filter of messages: `value | judged` is the value as the default message
    shows it (fmt_judged); `value | judged(1)` is `value | round(1)`, with the fewest more
    decimals that keep it on its side of every level (5.01 over `> 5`: 5.01, not 5.0;
    17.26: 17.3; `judged(0)` of 98.7: 99). Anything but a finite float is rounded as `round`
    does."""
    if precision is None:
        return fmt_judged(value, levels)
    if value.__class__ is not float or not math.isfinite(value):
        return round(value, precision)
    places = _judged_places(value, levels, precision)
    if places == 0:
        return round(value)  # `judged(0)` of 98.7 is 99, not round(x, 0)'s float `99.0`
    return value if places is None else round(value, places)


def duration_judged(value: Any, levels: Sequence[Threshold]) -> str:
    """The `duration` filter of messages: format_duration, with the fewest more decimals
    that keep the figure on its side of each level: 86,399 s under `< 86400` is
    `23.9997 h`, not `24 h` (a "full in 24 h" critical under "< 1 day" reads as a bug)."""
    if value.__class__ not in (int, float) or not math.isfinite(value):
        return format_duration(value)
    unit, _suffix, usual = duration_unit(value)
    places = _judged_places(float(value), levels, usual, unit) if levels else usual
    return format_duration(value, places)


def _operand(raw: str) -> float | bool | str:
    if _NUMBER_RE.fullmatch(raw):
        return float(raw)
    if raw in ("true", "false"):
        return raw == "true"
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


_UNIT_RE = re.compile(
    rf"(?P<head>[<>=!@~:\s]*?)(?P<n>{_NUMBER})\s*(?P<unit>%|(?:[KMGTkmgt]i?)?B|ms|s|min|m|h|d)"
)
_BYTES = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_SECONDS = {"ms": 1e-3, "s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def _unit_hint(text: str) -> str | None:
    """What to write for a threshold given with a unit (`> 90%`, `> 1GiB`, `> 5m`), or None:
    thresholds are plain numbers in the metric's own unit (METRICS.md)."""
    m = _UNIT_RE.fullmatch(text)
    if m is None:
        return None
    head, n, unit = m["head"], float(m["n"]), m["unit"]
    if unit == "%":
        return f"no units: write {head}{m['n']} (in the metric's own unit)"
    if unit[-1] == "B":
        prefix = unit[:-1].lower()  # KiB: binary, as the reports write sizes; KB: decimal
        scale = 1024.0 ** ("kmgt".index(prefix[0]) + 1) if prefix[-1:] == "i" else _BYTES[prefix]
        return f"no units: write {head}{n * scale:.0f} (in the metric's own unit)"
    seconds = n * _SECONDS[unit]
    return (
        "no units: write the number in the metric's own unit "
        f"(ms for a *_ms metric: {seconds * 1000:g}; seconds for a *_s one: {seconds:g})"
    )


def parse_threshold(raw: str | int | float) -> Threshold:
    """Parse a threshold; ThresholdError with the reason when it is malformed."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ThresholdError(f"expected a string such as '> 5' or '~:90', got {raw!r}")
    text = str(raw).strip()
    if not text:
        raise ThresholdError(f"empty threshold: expected {FORMS}")
    hint = _unit_hint(text)
    if hint is not None:
        raise ThresholdError(f"bad threshold '{text}': {hint}")
    cmp = _COMPARISON_RE.fullmatch(text)
    if cmp:
        op, operand = cmp.group(1), cmp.group(2).strip()
        if not operand:
            raise ThresholdError(f"bad threshold '{text}': nothing to compare with")
        value = _operand(operand)
        if op not in ("==", "!=") and not isinstance(value, float):
            raise ThresholdError(f"bad threshold '{text}': '{op}' needs a number")
        if isinstance(value, float):
            _finite(text, value)
        return Comparison(text, op, value)
    return _parse_range(text)


def judged_places(value: float, threshold: str | None, places: int) -> int:
    """The decimals, `places` or more, a table cell needs for the finding's `threshold` text
    to judge `value` so rounded as it judged it (0.0122 over `> 0.01`: 3, not 2 that shows
    0.01 beside `> 0.01`); `places` for an expression or a threshold of strings."""
    if threshold is None or not math.isfinite(value):
        return places
    try:
        th = parse_threshold(threshold)
    except ThresholdError:  # an expression rule's threshold is its expression
        return places
    if th.kind != "number":
        return places
    found = _judged_places(value, (th,), places)
    return places if found is None else found


def _finite(text: str, value: float) -> None:
    """ThresholdError for a number past the largest float (1e400 reads as inf)."""
    if not math.isfinite(value):
        raise ThresholdError(f"bad threshold '{text}': a number too large for a threshold")


def _parse_range(text: str) -> NagiosRange:
    m = _RANGE_RE.fullmatch(text)
    if not m or not (m.group(2) or m.group(4)):
        raise ThresholdError(f"bad threshold '{text}': expected {FORMS}")
    at, start_s, colon, end_s = m.groups()
    if colon and start_s is None:
        # monitoring-plugins reads ":10" as 0:10; people often mean ~:10, so refuse it.
        raise ThresholdError(f"bad threshold '{text}': empty range start (write 0:10 or ~:10)")
    if colon:
        start = -math.inf if start_s == "~" else float(start_s)
        end = math.inf if end_s is None else float(end_s)
    else:
        start, end = 0.0, float(end_s)
    for bound in (start_s, end_s):
        if bound not in (None, "~"):
            _finite(text, float(bound))
    if start > end:
        raise ThresholdError(
            f"bad threshold '{text}': range start {_fmt(start)} is greater than end {_fmt(end)}"
        )
    return NagiosRange(text, start, end, inside=bool(at))


def _fmt(x: float) -> str:
    return f"{x:g}"


#: A run of values a threshold alerts on: (low, low included, high, high included).
Interval = tuple[float, bool, float, bool]


def alert_intervals(th: Threshold) -> list[Interval] | None:
    """The numbers a threshold alerts on, as disjoint intervals; None for a threshold of
    strings or booleans. `~:10` is (10, inf), `10:20` below 10 and above 20, `@10:20` 10..20."""
    if isinstance(th, NagiosRange):
        if th.inside:
            return [(th.start, True, th.end, True)]
        out = [(-math.inf, False, th.start, False), (th.end, False, math.inf, False)]
        return [i for i in out if i[0] < i[2]]  # `~:10` alerts below nothing
    if not isinstance(th.operand, float):
        return None
    a = th.operand
    return {
        ">": [(a, False, math.inf, False)],
        ">=": [(a, True, math.inf, False)],
        "<": [(-math.inf, False, a, False)],
        "<=": [(-math.inf, False, a, True)],
        "==": [(a, True, a, True)],
        "!=": [(-math.inf, False, a, False), (a, False, math.inf, False)],
    }[th.op]


def covers(outer: Interval, inner: Interval) -> bool:
    """Whether every value of `inner` is in `outer`."""
    lo, lo_in, hi, hi_in = outer
    return (lo < inner[0] or (lo == inner[0] and (lo_in or not inner[1]))) and (
        inner[2] < hi or (inner[2] == hi and (hi_in or not inner[3]))
    )


def dead_warning(w: Threshold | None, c: Threshold | None) -> str | None:
    """Why a warning can never fire, its critical holding wherever it does (`warning: > 90`
    with `critical: > 80`, or `~:95` with `~:80`: every value over 95 is over 80, judged
    critical first), or None."""
    if w is None or c is None:
        return None
    wants, beats = alert_intervals(w), alert_intervals(c)
    if wants is None or beats is None:
        return None
    # The critical intervals are apart, with a value of neither between two of them: a run
    # of the warning's values within their union is within one of them.
    if all(any(covers(b, i) for b in beats) for i in wants):
        return (
            f"warning '{w.text}' never fires: critical '{c.text}' holds for every "
            "value it does (the critical level is the stricter one)"
        )
    return None
