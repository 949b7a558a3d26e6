"""Retention in tiers (I/O): hourly and daily rollups, then old rows deleted; no daemon.

Run at the end of each recorded run, inside its transaction: closed hours and days not yet
summarised are rolled up (idempotent: a bucket is recomputed whole), then each tier keeps
its own span back from the newest run not ahead of this machine's clock (sysstat keeps 7
days of sa files, Zabbix hourly trends for years): a run stamped by a wrong clock cannot
age the others away. The spans live in the file once set, so every writer applies the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fleetmon.errors import OptionError, did_you_mean
from fleetmon.history import schema
from fleetmon.history.store import History
from fleetmon.model.durations import DurationError, parse_duration, short_duration

DEFAULTS_S = {"raw": 8 * 86_400, "hourly": 90 * 86_400, "daily": 2 * 365 * 86_400}
#: Shortest spans: raw rows must outlive the hour they are summarised in.
MINIMUM_S = {"raw": 3600, "hourly": 86_400, "daily": 86_400}
#: How far ahead of this machine's clock a run may start and still be recorded (the clocks
#: of two machines, `report DIR` of a run made elsewhere).
FUTURE_TOLERANCE_S = 600
_SHIFT = schema.ENTITY_BITS
BUCKET_WORD = {"hourly": "hour", "daily": "day"}


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each tier keeps its rows, in seconds."""

    raw_s: int = DEFAULTS_S["raw"]
    hourly_s: int = DEFAULTS_S["hourly"]
    daily_s: int = DEFAULTS_S["daily"]

    def span(self, tier: str) -> int:
        """Seconds kept by `tier`."""
        return {"raw": self.raw_s, "hourly": self.hourly_s, "daily": self.daily_s}[tier]

    def text(self) -> str:
        """As --history-keep takes it: `raw=8d,hourly=90d,daily=730d`."""
        return ",".join(f"{t}={short_duration(self.span(t))}" for t in schema.TIERS)


def parse_keep(text: str, base: Retention | None = None) -> Retention:
    """`raw=8d,hourly=90d,daily=2y` (any of the three, at least one, each once) over `base`:
    the tiers not named keep base's spans (a file's stored ones); OptionError if invalid (a
    tier named twice too: `raw=8d,raw=1h`, a cron line appended to, would delete all but an
    hour of runs on whichever the last one is)."""
    spans = {t: (base or Retention()).span(t) for t in schema.TIERS}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise OptionError(f"--history-keep: expected raw=, hourly= or daily=, got {text!r}")
    named: set[str] = set()
    for part in parts:
        raw_tier, sep, value = part.partition("=")
        tier = raw_tier.strip()
        if not sep or tier not in spans:
            hint = did_you_mean(tier, schema.TIERS) if sep else ""
            raise OptionError(
                f"--history-keep: expected raw=, hourly= or daily=, got {part!r}{hint}"
            )
        if tier in named:
            raise OptionError(f"--history-keep: {tier} given twice, in {text.strip()!r}")
        named.add(tier)
        try:
            seconds = parse_duration(value.strip())
        except DurationError as exc:
            raise OptionError(f"--history-keep {tier}: {exc}") from None
        if seconds < MINIMUM_S[tier]:
            least = short_duration(MINIMUM_S[tier])
            raise OptionError(f"--history-keep {tier}: at least {least}, got {value.strip()}")
        spans[tier] = seconds
    return Retention(spans["raw"], spans["hourly"], spans["daily"])


def stored(hist: History) -> Retention:
    """The file's retention (the defaults until --history-keep sets one)."""
    spans = {t: hist.meta(f"keep_{t}_s") for t in schema.TIERS}
    base = Retention()
    return Retention(*(int(v) if v and v.isdigit() else base.span(t) for t, v in spans.items()))


def save(hist: History, keep: Retention) -> None:
    """Record `keep` as the file's retention (inside the caller's transaction)."""
    hist.conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(f"keep_{t}_s", str(keep.span(t))) for t in schema.TIERS],
    )


def rollup(hist: History, tier: str, start_t: int, end_t: int) -> None:
    """Recompute every `tier` bucket in [start_t, end_t) (bucket-aligned) for every scope."""
    lo, hi = start_t << _SHIFT, end_t << _SHIFT
    for scope, columns in hist.columns.items():
        hist.conn.execute(schema.rollup_sql(scope, columns, tier), (lo, hi))


def floor(t: int, tier: str) -> int:
    """The start of the `tier` bucket holding `t`."""
    size = schema.BUCKET_S[tier]
    return t // size * size


def _rolled_to(hist: History, tier: str) -> int | None:
    value = hist.meta(f"rolled_{tier}_to")
    return int(value) if value else None


def refusal(t: int, now: int) -> str | None:
    """Why a run starting at `t` may not be recorded when this machine's clock says `now`
    (None: it may): ahead of it by more than FUTURE_TOLERANCE_S."""
    if t > now + FUTURE_TOLERANCE_S:
        return (
            f"its start is {short_duration((t - now) // 60 * 60)} ahead of this machine's "
            f"clock (at most {short_duration(FUTURE_TOLERANCE_S)}): is either clock wrong?"
        )
    return None


def too_late(hist: History, keep: Retention, t: int, now: int) -> str | None:
    """Why a run at `t` is too old to record (None: it is not): its hour (its day) begins
    before what the raw (hourly) tier keeps, so its summary would be recomputed from a part
    of the bucket's runs, and the rest lost."""
    newest = present(hist, now)
    if newest is None:
        return None
    for tier, source in (("hourly", "raw"), ("daily", "hourly")):
        if floor(t, tier) < newest - keep.span(source):
            when = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return (
                f"its {BUCKET_WORD[tier]} begins before what the {source} tier keeps "
                f"({short_duration(keep.span(source))} back from the newest run, {when})"
            )
    return None


def present(hist: History, now: int) -> int | None:
    """The newest run not ahead of `now` (this machine's clock), None when none is: what
    retention counts back from."""
    row = hist.conn.execute(
        "SELECT max(t) FROM runs WHERE t <= ?", (now + FUTURE_TOLERANCE_S,)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def apply(
    hist: History, keep: Retention, *, now: int, recorded_t: int | None = None
) -> dict[str, int]:
    """Roll up what closed since the last pass, then delete what each tier outlived, back
    from the newest run not ahead of `now` (a run recorded while the clock was wrong leaves
    the later ones alone once it is right).

    `recorded_t` is the run just written: its hour and day are summarised again when they
    were already (a run recorded late, by `fleetmon report DIR`). Returns rows deleted per
    table. Call inside a transaction.
    """
    conn = hist.conn
    newest = present(hist, now)
    if newest is None:
        return {}
    for tier, source in (("hourly", "raw"), ("daily", "hourly")):
        done = _rolled_to(hist, tier)
        closed = floor(newest, tier)
        start = done if done is not None else first_t(hist, source) or closed
        if start < closed:
            rollup(hist, tier, floor(start, tier), closed)
        if recorded_t is not None and done is not None and recorded_t < done:
            first = floor(recorded_t, tier)
            rollup(hist, tier, first, first + schema.BUCKET_S[tier])
        mark = max(closed, done or closed)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"rolled_{tier}_to", mark)
        )
    return _delete_old(hist, keep, newest)


def first_t(hist: History, tier: str) -> int | None:
    """The time of `tier`'s oldest row (its bucket's start), None when it has none."""
    firsts = [table_first_t(hist, schema.table(tier, s)) for s in hist.columns]
    times = [t for t in firsts if t is not None]
    return min(times) if times else None


def table_first_t(hist: History, table: str) -> int | None:
    """The time of one table's oldest row, None when it has none."""
    k = hist.conn.execute(f"SELECT min(k) FROM {table}").fetchone()[0]
    return None if k is None else int(k) >> _SHIFT


def _delete_old(hist: History, keep: Retention, newest: int) -> dict[str, int]:
    conn = hist.conn
    deleted: dict[str, int] = {}
    for tier in schema.TIERS:
        cutoff = newest - keep.span(tier)
        if tier != "raw":
            cutoff = floor(cutoff, tier)
        for scope in hist.columns:
            name = schema.table(tier, scope)
            cur = conn.execute(f"DELETE FROM {name} WHERE k < ?", (cutoff << _SHIFT,))
            deleted[name] = cur.rowcount
        if tier == "raw":
            deleted["runs"] = conn.execute("DELETE FROM runs WHERE t < ?", (cutoff,)).rowcount
    oldest_kept = newest - max(keep.span(t) for t in schema.TIERS)
    deleted["entities"] = conn.execute(
        "DELETE FROM entities WHERE last_t < ?", (floor(oldest_kept, "daily"),)
    ).rowcount
    if deleted["entities"]:
        # Their counters too: SQLite gives the newest one's id to the next new subject,
        # which took them for its own previous run's.
        deleted["last_counters"] = conn.execute(
            "DELETE FROM last_counters WHERE entity NOT IN (SELECT id FROM entities)"
        ).rowcount
    return deleted
