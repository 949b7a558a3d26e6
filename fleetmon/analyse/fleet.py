"""Fleet statistics (pure): min, median, p95, max, mean, stddev per host metric, and outliers.

An outlier is a host whose value is a robust outlier within one of its inventory groups:
modified z-score |x - median| / (1.4826 * MAD) > 3.5 (Iglewicz and Hoaglin). When the MAD is
0 (most of the group identical) the mean absolute deviation scaled by 1.2533 stands in, as
IBM's SPSS does; when that is 0 too, nobody is an outlier. A host must also be at least the
catalogue's minimum difference for the metric (catalog.outlier_min_diff: 5 points of a
percentage...) from the median, so a spread of noise (PSI cpu of 0 to 0.039 %) flags nobody.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence

from fleetmon.model import FleetStat, HostReport, catalog

OUTLIER_Z = 3.5
#: Groups smaller than this have no meaningful spread, so they flag nobody.
MIN_GROUP = 3


def percentile(values: Sequence[float], pct: int) -> float:
    """The pct-th percentile (0 to 100) of a non-empty sequence, by linear interpolation
    between the closest ranks: `statistics.quantiles`' inclusive method, numpy's default."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is not between 0 and 100")
    # The ends, which quantiles does not return (nor anything for one value before 3.13).
    if pct == 0 or len(values) == 1:
        return min(values)
    if pct == 100:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _numeric(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def robust_outliers(values: Mapping[str, float], min_diff: float = 0.0) -> set[str]:
    """Names whose value is a robust outlier among `values` (modified z-score > 3.5) and at
    least `min_diff` from their median."""
    if len(values) < MIN_GROUP:
        return set()
    xs = list(values.values())
    med = statistics.median(xs)
    deviations = [abs(x - med) for x in xs]
    mad = statistics.median(deviations)
    scale = 1.4826 * mad if mad > 0 else 1.2533 * statistics.fmean(deviations)
    if scale <= 0:
        return set()
    return {
        name
        for name, x in values.items()
        if abs(x - med) / scale > OUTLIER_Z and abs(x - med) >= min_diff
    }


#: Values past this in magnitude are scaled down (by a power of two, exactly) before their
#: statistics: a sum or a difference of ones near a double's largest (a merged report's
#: 1e308) would overflow to infinity, or OverflowError in fmean, and none of the results
#: (each within the values' range, the stddev within half of it) needs more than it.
_SAFE_EXP = 1000


def _scale_exp(xs: Sequence[float]) -> int:
    """The power of two to scale sorted `xs` down by so that nothing overflows (0: none)."""
    return max(0, math.frexp(max(-xs[0], xs[-1]))[1] - _SAFE_EXP)


def fleet_stats(hosts: Sequence[HostReport]) -> dict[str, FleetStat]:
    """Statistics for every numeric host metric over the hosts that reported it."""
    by_metric: dict[str, dict[str, float]] = defaultdict(dict)
    for host in hosts:
        if not host.collected:
            continue
        for name, value in host.metrics.items():
            num = _numeric(value)
            if num is not None:
                by_metric[name][host.name] = num
    groups_of = {h.name: h.groups or ("ungrouped",) for h in hosts}
    result: dict[str, FleetStat] = {}
    for name in sorted(by_metric):
        per_host = by_metric[name]
        xs = sorted(per_host.values())
        k = _scale_exp(xs)
        if k:
            per_host = {h: math.ldexp(x, -k) for h, x in per_host.items()}
        outliers: set[str] = set()
        members: dict[str, dict[str, float]] = defaultdict(dict)
        for host_name, x in per_host.items():
            for group in groups_of[host_name]:
                members[group][host_name] = x
        min_diff = math.ldexp(catalog.outlier_min_diff(name), -k)
        for group_values in members.values():
            outliers |= robust_outliers(group_values, min_diff)
        result[name] = _stat(xs, k, tuple(sorted(outliers)))
    return result


def _stat(xs: Sequence[float], k: int, outliers: tuple[str, ...]) -> FleetStat:
    """The statistics of sorted `xs`, computed over them scaled down by 2**k."""
    ys = [math.ldexp(x, -k) for x in xs] if k else xs

    def back(v: float, most: float) -> float:
        # Within the range it must be in: a rounding past a double's largest (1e308 and
        # 1.7e308 averaged, 1 ulp high) would overflow when scaled back.
        return math.ldexp(min(max(v, -most), most), k) if k else v

    top = max(-ys[0], ys[-1])
    return FleetStat(
        count=len(xs),
        min=xs[0],
        median=back(statistics.median(ys), top),
        p95=back(percentile(ys, 95), top),
        max=xs[-1],
        mean=back(statistics.fmean(ys), top),
        stddev=back(statistics.pstdev(ys), top) if len(ys) > 1 else 0.0,
        outliers=outliers,
    )
