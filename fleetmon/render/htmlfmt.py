"""Formatting for the HTML report (pure): figures with units, column units, anchors, scales."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence

from fleetmon.model import Finding, MetricValue, catalog
from fleetmon.rules.historical import APPLIED_UNITS
from fleetmon.rules.ranges import judged_places

DASH = "\u2014"


def number(v: MetricValue) -> float | None:
    """A finite float, or None for unknown, text, booleans, NaN and infinities."""
    if v.__class__ is float:  # the usual case, checked first: a page formats 100,000s
        return v if math.isfinite(v) else None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _scaled(x: float, step: float, units: Sequence[str], sep: str = " ") -> str:
    i = 0
    while abs(x) >= step and i < len(units) - 1:
        x /= step
        i += 1
    digits = 0 if abs(x) >= 100 or (i == 0 and x.is_integer()) else 1
    return f"{x:z.{digits}f}{sep}{units[i]}"  # z: not -0.0


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    parts = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    out = []
    left = int(s)
    for size, name in parts:
        if left >= size:
            out.append(f"{left // size} {name}")
            left %= size
        if len(out) == 2:
            break
    return " ".join(out)


def fmt(v: MetricValue, unit: str) -> str:
    """A metric value in words for a cell, with its unit; a dash when unknown."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    x = number(v)
    if x is None:
        return DASH
    if unit == "%":
        return f"{x:z.1f}%"  # "12.3%", as the text report writes it (z: -0.001 is 0.0%)
    if unit == "B":
        return _scaled(x, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))
    if unit == "B/s":
        return _scaled(x, 1024, ("B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"))
    if unit == "/s":
        return _scaled(x, 1000, ("/s", "k/s", "M/s", "G/s"), sep="")
    if unit == "pages/s":
        return _scaled(x, 1000, ("pages/s", "k pages/s", "M pages/s"))
    if unit == "ratio":
        return f"{x:.2f}\u00d7"
    if unit == "s":
        return _duration(x)
    if unit == "ms":
        return f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"
    if unit in ("load", "req"):
        return f"{x:.2f}"
    if unit == "count":
        return f"{x:.0f}"
    return f"{x:g}"


#: The decimals fmt() gives a figure of these units, when it gives a fixed number of them.
_PLACES = {"%": 1, "load": 2, "req": 2}


def fmt_finding(v: MetricValue, unit: str, threshold: str | None) -> str:
    """fmt(), with the decimals a finding's value needs to stay on its side of its threshold
    (rules.ranges.judged_places: 0.0122 over `> 0.01` is 0.012%, not 0.0%)."""
    x = number(v)
    if x is None or unit not in _PLACES:
        return fmt(v, unit)
    places = judged_places(x, threshold, _PLACES[unit])
    if places == _PLACES[unit]:
        return fmt(v, unit)
    return f"{x:.{places}f}%" if unit == "%" else f"{x:.{places}f}"


def sort_key(v: float | None) -> str:
    """The data-s attribute the sorting script reads; empty (unknown) sorts last either way."""
    return "" if v is None else f"{v:.6g}"


#: Units `fmt` writes as the bare figure first ("47.6%", "1.25x", "0.93", "3/4"): the
#: sorting script reads that figure, so such a cell needs no data-s.
_LEADS = frozenset(("%", "ratio", "load", "req", "count"))


def sort_attr(v: float | None, unit: str) -> str:
    """sort_key, or "" when the cell's text starts with the figure itself (same order but for
    ties within the shown precision, which keep the table's order)."""
    return "" if unit in _LEADS else sort_key(v)


_SLUG_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def anchors(names: Iterable[str]) -> dict[str, str]:
    """A unique id per host: `host-<name>` when the name is tame, else slug plus a digest."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        slug = _SLUG_BAD.sub("-", name).strip("-.")[:48]
        anchor = f"host-{slug}"
        if not slug or slug != name or anchor in taken:
            digest = hashlib.blake2s(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            anchor = f"host-{slug}-{digest}" if slug else f"host-{digest}"
        taken.add(anchor)
        out[name] = anchor
    return out


_IEC = ("", "Ki", "Mi", "Gi", "Ti", "Pi")
_SI = ("", "k", "M", "G")
#: Units whose figures a table column shows as they are, with these decimals, and the
#: heading's suffix.
_PLAIN = {"count": 0, "%": 1, "ms": 1, "load": 2, "req": 2, "ratio": 2}
_PLAIN_HEAD = {"%": " %", "ms": " ms"}


def column(xs: Sequence[float | None], unit: str) -> tuple[str, list[str]]:
    """One unit for a whole column (its header suffix) and bare figures in it, easier to
    compare: bytes scaled by 1024 (KiB/s), rates by 1000 (k/s), both chosen by the column's
    largest figure, so one table never mixes B/s and MiB/s in a column."""
    if unit in _PLAIN:
        digits = _whole(xs, 1.0, _PLAIN[unit])
        return _PLAIN_HEAD.get(unit, ""), [DASH if x is None else f"{x:.{digits}f}" for x in xs]
    byte = unit in ("B", "B/s")
    prefixes, step = (_IEC, 1024.0) if byte else (_SI, 1000.0)
    top = max((abs(x) for x in xs if x is not None), default=0.0)
    i = 0
    while top >= step and i < len(prefixes) - 1:
        top /= step
        i += 1
    div = step**i
    digits = _whole(xs, div, 1 if top < 100 else 0)
    cells = [DASH if x is None else f"{x / div:.{digits}f}" for x in xs]
    return f" {prefixes[i]}{unit}", cells  # " KiB/s", " k/s"


def _whole(xs: Sequence[float | None], div: float, digits: int) -> int:
    """`digits`, or none when every figure of the column is a whole number at its scale
    (4 GiB of memory, 0 errors/s): "4", not "4.0", and the column still lines up."""
    return 0 if all(x is None or (x / div).is_integer() for x in xs) else digits


def heading(label: str, suffix: str) -> str:
    """A column's heading: its label and the column's unit, once ("r/s", "rx pkt k/s")."""
    if label.endswith("/s") and suffix.endswith("/s"):
        prefix = suffix.strip()[: -len("/s")]
        return f"{label[:-2]} {prefix}/s" if prefix else label
    return label + suffix


def columnar(unit: str) -> bool:
    """Whether `column` can give a column of this unit one scale (not durations or text)."""
    return unit in _PLAIN or unit in ("B", "B/s", "/s", "pages/s")


def unit_of(metric: str | None) -> str:
    """The catalogue unit of a metric name, fleet statistics included; "" when unknown."""
    if metric is None:
        return ""
    if metric.startswith("fleet."):
        metric = metric[len("fleet.") :].rpartition(".")[0]
    d = catalog.ALL.get(metric)
    return d.unit if d else ""


def finding_unit(f: Finding) -> str:
    """The unit of a finding's value: its metric's, or that of the function its rule's
    `apply:` judges (time_to of a filesystem's used % is seconds, not %)."""
    if f.apply is None:
        return unit_of(f.metric)
    return APPLIED_UNITS.get(f.apply.partition("(")[0], unit_of(f.metric))


def ceiling(x: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above x, so strips get round scales."""
    if x <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= x)
