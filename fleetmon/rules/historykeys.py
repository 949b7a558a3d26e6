"""The history keys of a rule (pure): `apply:`, `for:`, `keep_firing_for:`, `min_points:`,
`min_r2:`, checked and made into what a Rule holds."""

from __future__ import annotations

import re
from typing import Any

from fleetmon.model.durations import DurationError, parse_duration
from fleetmon.rules.expr import Expr, compile_expr
from fleetmon.rules.historical import FUNCTIONS
from fleetmon.rules.ruleset import Span

_APPLY_RE = re.compile(r"\s*([a-z_0-9]+)\s*\((.*)\)\s*", re.DOTALL)
_RUNS_RE = re.compile(r"\s*(\d+)\s*runs?\s*")
#: The functions `apply:` takes: those with a value to judge (has_since_last_run is true
#: or false, for a `when:` or an `expr:`).
_APPLIED = frozenset(FUNCTIONS) - {"has_since_last_run"}


def history_key(key: str, raw: Any) -> Any:
    """The value of apply, for, keep_firing_for, min_points or min_r2; ValueError if bad."""
    if key == "apply":
        m = _APPLY_RE.fullmatch(raw) if isinstance(raw, str) else None
        if m is None or m.group(1) not in _APPLIED:
            names = ", ".join(sorted(_APPLIED))
            raise ValueError(f"expected a history function of the metric ({names}), got {raw!r}")
        return raw
    if key == "min_points":
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 2:
            raise ValueError(f"expected a whole number of at least 2, got {raw!r}")
        return raw
    if key == "min_r2":
        if not isinstance(raw, int | float) or isinstance(raw, bool) or not 0 <= raw <= 1:
            raise ValueError(f"expected a number from 0 to 1, got {raw!r}")
        return float(raw)
    text = str(raw)
    runs = _RUNS_RE.fullmatch(text)
    if runs and key == "for":
        if int(runs.group(1)) < 1:
            raise ValueError("expected at least 1 run")
        return Span(int(runs.group(1)), "runs", text.strip())
    try:
        return Span(parse_duration(text), "s", text.strip())
    except DurationError as exc:
        runs_too = " or a number of runs ('3 runs')" if key == "for" else ""
        raise ValueError(f"{exc}{runs_too}") from None


def compile_apply(text: str, metric: str) -> Expr:
    """`time_to(100, "24h")` on fs.used_pct -> the expression time_to(fs.used_pct, 100, "24h")."""
    m = _APPLY_RE.fullmatch(text)
    assert m is not None
    args = m.group(2).strip()
    return compile_expr(f"{m.group(1)}({metric}{', ' + args if args else ''})")
