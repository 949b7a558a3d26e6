"""Statistics over a subject's history (pure): windows, fits, forecasts, anomaly scores.

A series is a sequence of (Unix time, value) points, oldest first. A window ending at `t`
of `range_s` seconds holds the points with t - range_s < time <= t (left-open, as
Prometheus 3 selects a range). No clock is read here: the caller passes the times.

`linear_fit` is Prometheus's linearRegression (promql/functions.go): ordinary least squares,
x measured from the intercept time, a constant series has slope 0, fewer than two points
have no fit. `deriv` and `predict_linear` are Prometheus's, `time_to`
has Zabbix's `timeleft` semantics on the same fit; each fit also carries its R² and its
number of points, which rules may require (`min_points`, `min_r2`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]

#: MAD scale that makes it estimate the standard deviation of a normal distribution.
MAD_SCALE = 1.4826


@dataclass(frozen=True, slots=True)
class Fit:
    """A least-squares line: value = intercept + slope * (t - at_t)."""

    slope: float  # per second
    intercept: float  # the line's value at `at_t`
    at_t: float
    points: int
    r2: float  # 1.0 for a constant series (fitted exactly)

    def value_at(self, t: float) -> float:
        """The line's value at time `t`."""
        return self.intercept + self.slope * (t - self.at_t)


def window(points: Sequence[Point], end_t: float, range_s: float) -> list[Point]:
    """The points in (end_t - range_s, end_t] whose value is a finite number."""
    start = end_t - range_s
    return [
        (t, v)
        for t, v in points
        if start < t <= end_t and isinstance(v, int | float) and not isinstance(v, bool)
    ]


def linear_fit(points: Sequence[Point], at_t: float) -> Fit | None:
    """The least-squares line through `points`, its intercept at `at_t`; None for fewer
    than two points. A series with ±Inf has a NaN fit, as in Prometheus.

    Prometheus sums with Kahan-Neumaier compensation; math.fsum sums exactly, at C speed
    (1,000 hosts x 288 points in 0.1 s, not 0.5): the same results, at least as precise."""
    if len(points) < 2:
        return None
    ys = [v for _, v in points]
    first = ys[0]
    if not all(math.isfinite(y) for y in ys):
        return Fit(math.nan, math.nan, at_t, len(points), math.nan)
    if all(y == first for y in ys):
        return Fit(0.0, float(first), at_t, len(points), 1.0)
    n = float(len(points))
    xs = [t - at_t for t, _ in points]
    fsum = math.fsum
    sx, sy = fsum(xs), fsum(ys)
    sxy = fsum([x * y for x, y in zip(xs, ys, strict=True)])
    sx2 = fsum([x * x for x in xs])
    cov_xy = sxy - sx * sy / n
    var_x = sx2 - sx * sx / n
    slope = cov_xy / var_x if var_x else math.nan
    intercept = sy / n - slope * sx / n
    return Fit(slope, intercept, at_t, len(points), _r2(xs, ys, sx / n, sy / n))


def _r2(xs: list[float], ys: list[float], mean_x: float, mean_y: float) -> float:
    """R² of the fit, from the values less their means (two passes): the one pass's sums of
    squares of values around 1e12 (a filesystem's bytes) keep nothing of their spread."""
    fsum = math.fsum
    dx = [x - mean_x for x in xs]
    dy = [y - mean_y for y in ys]
    var_x, var_y = fsum([d * d for d in dx]), fsum([d * d for d in dy])
    cov = fsum([a * b for a, b in zip(dx, dy, strict=True)])
    return min(1.0, cov * cov / (var_x * var_y)) if var_x and var_y > 0 else math.nan


def deriv(points: Sequence[Point]) -> float | None:
    """Per-second slope of the least-squares line (PromQL `deriv`); None below 2 points."""
    if len(points) < 2:
        return None
    fit = linear_fit(points, points[0][0])  # x from the first point: smaller numbers
    return None if fit is None else fit.slope


def predict_linear(points: Sequence[Point], at_t: float, horizon_s: float) -> float | None:
    """The line's value `horizon_s` after `at_t` (PromQL `predict_linear`)."""
    fit = linear_fit(points, at_t)
    return None if fit is None else fit.value_at(at_t + horizon_s)


def time_to(points: Sequence[Point], now_t: float, threshold: float) -> float | None:
    """Seconds from `now_t` until the least-squares line through `points` reaches
    `threshold` (Zabbix `timeleft`, linear fit): the nearest crossing in the future. 0 when
    it is already past: the points crossed the threshold within the window and the line
    keeps going that way. None when there is no fit, or the line never gets there (flat,
    or moving away from a threshold the points have not crossed)."""
    fit = linear_fit(points, now_t)
    if fit is None or math.isnan(fit.slope) or math.isnan(fit.intercept):
        return None
    gap = threshold - fit.intercept
    if gap == 0:
        return 0.0
    if fit.slope == 0:
        return None
    seconds = gap / fit.slope
    if seconds > 0:
        return seconds
    first, last = points[0][1], points[-1][1]
    crossed = first < threshold <= last if fit.slope > 0 else first > threshold >= last
    return 0.0 if crossed else None


def mad_score(value: float, history: Sequence[float]) -> float | None:
    """How many (scaled) MADs `value` lies from the median of `history`: the robust
    z-score of METRICS.md's outliers. None with fewer than 3 values; a zero MAD gives 0
    for the median itself and ±inf otherwise."""
    if len(history) < 3:
        return None
    med = statistics.median(history)
    mad = statistics.median(abs(x - med) for x in history) * MAD_SCALE
    if mad == 0:
        return 0.0 if value == med else math.copysign(math.inf, value - med)
    return (value - med) / mad


def same_hour_of_week(points: Sequence[Point], at_t: float, weeks: int) -> list[float]:
    """The values of `points` in the same hour of the week as `at_t`, in each of the
    `weeks` weeks before it (the hourly tier gives one point per hour)."""
    hour = 3600
    week = 7 * 86_400
    start = at_t // hour * hour
    slots = {start - k * week for k in range(1, weeks + 1)}
    return [v for t, v in points if t // hour * hour in slots]
