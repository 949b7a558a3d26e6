"""History functions of rule expressions (pure): avg_over, deriv, predict_linear, time_to...

A rule reads a subject's past through them: `deriv(mem.used_pct, "6h") > 0`. The points
come from Past, which the command line fetched from the history before the rules ran; the
current run's value is the newest point. A function with nothing to say (too few points,
a fit below the rule's `min_r2`, a line that never reaches the threshold) raises NoValue:
the rule is then OK for this subject, with the reason, as a PromQL alert without samples
does not fire.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetmon.errors import did_you_mean
from fleetmon.model import MetricValue, catalog
from fleetmon.model.durations import DurationError, format_duration, parse_duration
from fleetmon.rules import trends
from fleetmon.rules.trends import Point

#: name -> (positional parameters after the metric, index of the window among them or None)
FUNCTIONS: dict[str, tuple[tuple[str, ...], int | None]] = {
    "avg_over": (("window",), 0),
    "min_over": (("window",), 0),
    "max_over": (("window",), 0),
    "p95_over": (("window",), 0),
    "stddev_over": (("window",), 0),
    "change": (("window",), 0),
    "change_pct": (("window",), 0),
    "deriv": (("window",), 0),
    "predict_linear": (("window", "horizon"), 0),
    "time_to": (("threshold", "window"), 1),
    "anomaly": (("weeks",), None),
    "since_last_run": ((), None),
    "has_since_last_run": ((), None),
}
NAMES = frozenset(FUNCTIONS)
#: The unit of the functions whose value is not in the metric's (the others, averages,
#: extremes, changes and forecasts, are): seconds, percent, or a bare figure (a rate per
#: second of the metric's unit; a score).
APPLIED_UNITS = {"time_to": "s", "change_pct": "%", "deriv": "", "anomaly": ""}
#: Functions that fit a line: they take min_points and min_r2.
FITS = frozenset({"deriv", "predict_linear", "time_to"})
#: anomaly compares with the same hour of the week over this many weeks by default.
ANOMALY_WEEKS = 4
WEEK_S = 7 * 86_400


class NoValue(Exception):
    """A history function has no value for this subject this run; the message says why."""


@dataclass(frozen=True, slots=True)
class Call:
    """One history function call of an expression: what the command line must fetch."""

    fn: str
    metric: str
    #: How far back the points must reach, in seconds.
    window_s: int
    #: Hourly points (an anomaly over weeks) rather than one per run.
    hourly: bool = False


def window_of(fn: str, metric: str, args: Sequence[object]) -> Call:
    """The Call of `fn(metric, *args)` with constant arguments; ValueError when invalid."""
    params, widx = FUNCTIONS[fn]
    if catalog.scope_of(metric) in (None, "fleet"):
        kept = (n for n in catalog.names() if catalog.scope_of(n) != "fleet")
        raise ValueError(f"{fn}: unknown metric '{metric}'{did_you_mean(metric, kept)}")
    if len(args) > len(params):
        raise ValueError(f"{fn} takes a metric and {', '.join(params)}")
    if fn in ("since_last_run", "has_since_last_run"):
        if args:
            raise ValueError(f"{fn} takes a metric only")
        return Call(fn, metric, 0)
    if fn == "anomaly":
        weeks = args[0] if args else ANOMALY_WEEKS
        if not isinstance(weeks, int) or not 1 <= weeks <= 52:
            raise ValueError("anomaly: weeks must be a whole number from 1 to 52")
        return Call(fn, metric, weeks * WEEK_S + 3600, hourly=True)
    if widx is None or len(args) <= widx:
        raise ValueError(f"{fn} takes a metric and {', '.join(params)}")
    window = _duration(fn, args[widx])
    if fn == "predict_linear" and len(args) > 1:
        _duration(fn, args[1])
    if fn == "time_to" and not _number(args[0]):
        raise ValueError("time_to: the threshold must be a number")
    return Call(fn, metric, window)


def _duration(fn: str, arg: object) -> int:
    if not isinstance(arg, str):
        raise ValueError(f"{fn}: durations are quoted strings such as '6h', got {arg!r}")
    try:
        return parse_duration(arg)
    except DurationError as exc:
        raise ValueError(f"{fn}: {exc}") from None


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


#: Where a subject's points are kept: (scope, host, subject name).
Subject = tuple[str, str, str]
#: A rule's state for one subject: (rule, scope, host, subject).
StateKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where a rule stands for one subject after a run (only pending and firing are kept)."""

    state: str  # "pending" or "firing"
    severity: str  # the severity it alerts with
    since_t: int  # when it started breaking the rule
    runs: int  # runs in a row it broke the rule
    last_t: int  # the last run it broke the rule


@dataclass(frozen=True, slots=True)
class Past:
    """What the history holds for this run's rules (fetched by the command line)."""

    now_t: float
    #: subject -> (metric, "raw" or "hourly") -> points, oldest first, without this run.
    series: Mapping[Subject, Mapping[tuple[str, str], Sequence[Point]]] = field(
        default_factory=dict
    )
    #: Each rule's pending or firing subjects after the previous runs.
    states: Mapping[StateKey, RuleState] = field(default_factory=dict)
    #: Each subject's averages over the whole gap since the last run (analyse/gap.py).
    gaps: Mapping[Subject, Mapping[str, MetricValue]] = field(default_factory=dict)

    def points(self, subject: Subject, metric: str, hourly: bool) -> Sequence[Point]:
        """The stored points of one metric of a subject ((): none recorded)."""
        return self.series.get(subject, {}).get((metric, "hourly" if hourly else "raw"), ())


def subject_key(scope: str, host: str, subject: str, metric: str) -> Subject:
    """Whose points a metric is, seen from a subject: a host metric is its host's."""
    mscope = catalog.scope_of(metric) or scope
    return (mscope, host, host if mscope == "host" else subject)


@dataclass(slots=True)
class Fits:
    """The fit requirements of the rule being judged (`min_points`, `min_r2`)."""

    min_points: int = 2
    min_r2: float | None = None


class Bound:
    """The history functions of one subject, ready for an expression's context."""

    def __init__(
        self,
        past: Past,
        scope: str,
        host: str,
        subject: str,
        metrics: Mapping[str, MetricValue],
    ) -> None:
        self.past = past
        self.scope = scope
        self.host = host
        self.subject = subject
        self.metrics = metrics
        self.fits = Fits()
        #: The last fit a function made for the rule being judged, and its window.
        self.last: tuple[trends.Fit, str] | None = None

    def functions(self, names: frozenset[str]) -> dict[str, Callable[..., Any]]:
        """The callables an expression reads, under their names."""
        return {n: getattr(self, n) for n in names if n in FUNCTIONS}

    def _points(self, metric: str, window_s: float, hourly: bool = False) -> list[Point]:
        key = subject_key(self.scope, self.host, self.subject, metric)
        now = self.past.now_t
        stored = trends.window(self.past.points(key, metric, hourly), now, window_s)
        current = self.metrics.get(metric)
        if _number(current) and not hourly:
            stored.append((now, float(current)))  # type: ignore[arg-type]
        return stored

    def _values(self, metric: str, window: str) -> list[float]:
        values = [v for _, v in self._points(metric, parse_duration(window))]
        if not values:
            raise NoValue(f"no {metric} recorded in the last {window}")
        return values

    def avg_over(self, metric: str, window: str) -> float:
        """Mean of the values in the window (this run's included)."""
        return statistics.fmean(self._values(metric, window))

    def min_over(self, metric: str, window: str) -> float:
        """Smallest value in the window."""
        return min(self._values(metric, window))

    def max_over(self, metric: str, window: str) -> float:
        """Largest value in the window."""
        return max(self._values(metric, window))

    def p95_over(self, metric: str, window: str) -> float:
        """95th percentile of the window's values (inclusive method, as the fleet p95)."""
        values = self._values(metric, window)
        if len(values) < 2:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[94]

    def stddev_over(self, metric: str, window: str) -> float:
        """Population standard deviation of the window's values."""
        return statistics.pstdev(self._values(metric, window))

    def change(self, metric: str, window: str) -> float:
        """This run's value minus the oldest in the window."""
        values = self._values(metric, window)
        if len(values) < 2:
            raise NoValue(f"one {metric} value in the last {window}: no change yet")
        return values[-1] - values[0]

    def change_pct(self, metric: str, window: str) -> float:
        """The change in percent of the oldest value in the window."""
        values = self._values(metric, window)
        if len(values) < 2 or values[0] == 0:
            raise NoValue(f"{metric}: no change in percent over {window} (too few points or 0)")
        return 100.0 * (values[-1] - values[0]) / abs(values[0])

    def _fit(
        self, metric: str, window: str, min_points: int | None, min_r2: float | None
    ) -> tuple[list[Point], trends.Fit]:
        points = self._points(metric, parse_duration(window))
        need = max(2, min_points if min_points is not None else self.fits.min_points)
        if len(points) < need:
            raise NoValue(f"{len(points)} {metric} point(s) in {window}, {need} needed for a fit")
        fit = trends.linear_fit(points, self.past.now_t)
        assert fit is not None
        r2_need = min_r2 if min_r2 is not None else self.fits.min_r2
        if r2_need is not None and not fit.r2 >= r2_need:
            raise NoValue(
                f"{metric} over {window} is no line (R² {fit.r2:.2f} < {r2_need:g}, "
                f"{fit.points} points)"
            )
        self.last = (fit, window)
        return points, fit

    def deriv(
        self, metric: str, window: str, min_points: int | None = None, min_r2: float | None = None
    ) -> float:
        """Per-second slope of the least-squares line over the window (PromQL deriv)."""
        return self._fit(metric, window, min_points, min_r2)[1].slope

    def predict_linear(
        self,
        metric: str,
        window: str,
        horizon: str,
        min_points: int | None = None,
        min_r2: float | None = None,
    ) -> float:
        """The line's value `horizon` from now (PromQL predict_linear)."""
        fit = self._fit(metric, window, min_points, min_r2)[1]
        return fit.value_at(self.past.now_t + parse_duration(horizon))

    def time_to(
        self,
        metric: str,
        threshold: float,
        window: str,
        min_points: int | None = None,
        min_r2: float | None = None,
    ) -> float:
        """Seconds until the line reaches `threshold` (Zabbix timeleft; 0: already past)."""
        points, _ = self._fit(metric, window, min_points, min_r2)
        seconds = trends.time_to(points, self.past.now_t, float(threshold))
        if seconds is None:
            raise NoValue(f"{metric} is not heading for {threshold:g} (fit over {window})")
        return seconds

    def since_last_run(self, metric: str) -> float:
        """The metric's exact average over the whole gap since the last run (from the
        counters of both runs, as sar -f), not this run's spot sample; for a count since
        its subject started (ctr.oom_kills), its increase over the gap."""
        key = subject_key(self.scope, self.host, self.subject, metric)
        gap = self.past.gaps.get(key, {})
        value = gap.get(metric)
        if _number(value):
            return float(value)  # type: ignore[arg-type]
        if metric in gap and catalog.scope_of(metric) == "ctr":
            raise NoValue(f"no {metric} since the last run: the container restarted since")
        raise NoValue(f"no {metric} average since the last run (first run, or a reboot)")

    def has_since_last_run(self, metric: str) -> bool:
        """Whether since_last_run(metric) has a figure for the subject (false where it
        would have nothing to say: a first run, a reboot, a subject new or restarted)."""
        key = subject_key(self.scope, self.host, self.subject, metric)
        return _number(self.past.gaps.get(key, {}).get(metric))

    def anomaly(self, metric: str, weeks: int = ANOMALY_WEEKS) -> float:
        """Distance of this run's value from the median of the same hour of the week over
        the past weeks, in MADs (scaled to a standard deviation)."""
        current = self.metrics.get(metric)
        if not _number(current):
            raise NoValue(f"{metric} not reported this run")
        points = self._points(metric, weeks * WEEK_S + 3600, hourly=True)
        same = trends.same_hour_of_week(points, self.past.now_t, weeks)
        score = trends.mad_score(float(current), same)  # type: ignore[arg-type]
        if score is None:
            raise NoValue(f"{metric}: {len(same)} week(s) of this hour recorded, 3 needed")
        return score


def layer(
    past: Past | None,
    scope: str,
    host: str,
    subject: str,
    metrics: Mapping[str, MetricValue],
    reads: Collection[str],
) -> dict[str, Any]:
    """The history functions a subject's rules read, for their context (empty without
    history). `__bound` (a name no expression may write) lets the judge set a rule's fit
    requirements before it is evaluated."""
    names = frozenset(reads) & NAMES
    if past is None or not names:
        return {}
    bound = Bound(past, scope, host, subject, metrics)
    return {"__bound": bound, **bound.functions(names)}


def no_value(exc: BaseException) -> NoValue | None:
    """The NoValue behind an expression's error, if that is what it was."""
    cause = exc.__cause__
    return cause if isinstance(cause, NoValue) else None


def describe_fit(seconds: float | None) -> str:
    """A time_to result in words: `2.3 days`, `now` or `never`."""
    if seconds is None or math.isinf(seconds):
        return "never"
    return "now" if seconds <= 0 else format_duration(seconds)
