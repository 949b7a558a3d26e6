"""The history file's schema (pure SQL text): generated from the metric catalogue.

One wide table per scope and tier (`raw_vm`, `hourly_vm`, `daily_vm`), one INTEGER column
per catalogue metric. A row's key `k` is `t << 24 | entity`: the run's (or bucket's) Unix
time and the entity's id, so one run's rows are appended together, a time range is a range
of keys, and no index is needed. Values are stored as integers at the resolution the
reports show (`scale` per unit: 0.01 % is 12.34 % -> 1234), which SQLite packs into 1-4
bytes; a state (vm.state) is the id of its text in `texts`. Adding a metric to the catalogue
adds its columns the next time the file is opened (sync_catalogue): no SQL by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fleetmon.model import catalog
from fleetmon.model.catalog import MetricDef

#: `PRAGMA application_id` of a fleetmon history: "FLMH".
APPLICATION_ID = 0x464C4D48
#: The schema this version writes (`PRAGMA user_version`); see MIGRATIONS.
SCHEMA_VERSION = 5
#: Bits of a key holding the entity id (16.7 million entities over the file's life).
ENTITY_BITS = 24
ENTITY_MASK = (1 << ENTITY_BITS) - 1
TIERS = ("raw", "hourly", "daily")
#: Seconds per bucket of the rollup tiers.
BUCKET_S = {"hourly": 3600, "daily": 86_400}
#: Rollup statistics kept per metric and bucket (`n`: how many values it summarises).
STATS = ("min", "avg", "max", "n")

#: Integer steps per unit: a value is stored as round(value * scale). 0: a text id.
SCALE_BY_UNIT = {
    "%": 100,
    "/s": 100,
    "pages/s": 100,
    "B/s": 1,
    "ms": 1000,
    "req": 1000,
    "load": 100,
    "ratio": 1000,
    "count": 1,
    "B": 1,
    "s": 1,
    "bool": 1,
    "state": 0,
}
#: A unit added to the catalogue later and not listed above: thousandths.
DEFAULT_SCALE = 1000
_NAME_RE = re.compile(r"[a-z][a-z0-9_.]*")


def scale_of(metric: MetricDef) -> int:
    """How many integer steps one unit of `metric` is stored as (0: a state's text id)."""
    return SCALE_BY_UNIT.get(metric.unit, DEFAULT_SCALE)


def rolled_up(metric: MetricDef) -> bool:
    """Whether the hourly and daily tiers summarise `metric` (a state has no average)."""
    return scale_of(metric) != 0


def stored_scopes() -> tuple[tuple[str, tuple[MetricDef, ...]], ...]:
    """Every scope a run stores, with its catalogue metrics: the host, then each row scope
    (containers and guest pairs since schema 4)."""
    return (
        ("host", catalog.HOST),
        ("disk", catalog.DISK),
        ("nic", catalog.NIC),
        ("fs", catalog.FS),
        ("vm", catalog.VM),
        *SCOPES_4,
    )


#: The scopes schema 4 added: containers (an entity per container id) and guest pairs.
SCOPES_4: tuple[tuple[str, tuple[MetricDef, ...]], ...] = (
    ("ctr", catalog.CTR),
    ("guest", catalog.GUEST),
)


@dataclass(frozen=True, slots=True)
class Column:
    """One metric column as the file has it (its scale is the file's, not the code's)."""

    scope: str
    metric: str
    unit: str
    scale: int


def q(name: str) -> str:
    """A column name quoted for SQL (metric names are checked: letters, digits, _ and .)."""
    if not _NAME_RE.fullmatch(name.split(":")[0]):
        raise ValueError(f"not a metric name: {name!r}")
    return f'"{name}"'


def table(tier: str, scope: str) -> str:
    """The table of one tier and scope: `raw_vm`, `hourly_host`."""
    if tier not in TIERS or not scope.isidentifier():
        raise ValueError(f"no table for {tier!r}/{scope!r}")
    return f"{tier}_{scope}"


BASE_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE columns (
    scope TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT NOT NULL, scale INTEGER NOT NULL,
    added_at TEXT NOT NULL, PRIMARY KEY (scope, metric)) STRICT;
CREATE TABLE runs (
    t INTEGER PRIMARY KEY, started_at TEXT NOT NULL, inventory TEXT NOT NULL,
    fleetmon_version TEXT NOT NULL, interval_s REAL, hosts INTEGER NOT NULL,
    collected INTEGER NOT NULL, exit_code INTEGER NOT NULL) STRICT;
CREATE TABLE entities (
    id INTEGER PRIMARY KEY, scope TEXT NOT NULL, host TEXT NOT NULL, name TEXT NOT NULL,
    uuid TEXT, first_t INTEGER NOT NULL, last_t INTEGER NOT NULL) STRICT;
CREATE UNIQUE INDEX entities_by_name ON entities (scope, host, name) WHERE uuid IS NULL;
CREATE UNIQUE INDEX entities_by_uuid ON entities (scope, uuid) WHERE uuid IS NOT NULL;
CREATE INDEX entities_named ON entities (scope, name);
CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE) STRICT;
"""


#: Each rule's pending and firing subjects (schema 2): what `for:` counts across runs.
STATES_TABLE = """
CREATE TABLE rule_states (
    rule TEXT NOT NULL, scope TEXT NOT NULL, host TEXT NOT NULL, subject TEXT NOT NULL,
    state TEXT NOT NULL, severity TEXT NOT NULL, since_t INTEGER NOT NULL,
    runs INTEGER NOT NULL, last_t INTEGER NOT NULL,
    PRIMARY KEY (rule, scope, host, subject)) STRICT, WITHOUT ROWID
"""


#: Each subject's cumulative counters of its latest run (schema 3), as JSON: with the next
#: run's, the exact averages over the gap between them (analyse/gap.py).
COUNTERS_TABLE = """
CREATE TABLE last_counters (
    entity INTEGER PRIMARY KEY, t INTEGER NOT NULL, counters TEXT NOT NULL) STRICT
"""

#: ...and those of its run before that one (schema 5; null until a second run has some): a
#: replay of the latest run (`fleetmon report DIR`), whose own counters are the latest,
#: averages since the run before it, as the run did.
PREV_COUNTERS = (
    "ALTER TABLE last_counters ADD COLUMN prev_t INTEGER",
    "ALTER TABLE last_counters ADD COLUMN prev_counters TEXT",
)


def metric_columns(tier: str, metric: str) -> list[str]:
    """The column names one metric has in a tier: itself (raw) or one per statistic."""
    return [metric] if tier == "raw" else [f"{metric}:{s}" for s in STATS]


def create_scope(scope: str, metrics: Sequence[MetricDef]) -> list[str]:
    """CREATE TABLE statements of one scope's three tiers."""
    out = []
    for tier in TIERS:
        cols = ["k INTEGER PRIMARY KEY"]
        cols.append("status INTEGER" if tier == "raw" else "n INTEGER NOT NULL")
        for m in metrics:
            if tier == "raw" or rolled_up(m):
                cols += [f"{q(c)} INTEGER" for c in metric_columns(tier, m.name)]
        out.append(f"CREATE TABLE {table(tier, scope)} ({', '.join(cols)}) STRICT")
    return out


def add_metric(scope: str, metric: MetricDef) -> list[str]:
    """ALTER TABLE statements adding a new catalogue metric to its scope's tiers."""
    out = []
    for tier in TIERS:
        if tier == "raw" or rolled_up(metric):
            out += [
                f"ALTER TABLE {table(tier, scope)} ADD COLUMN {q(c)} INTEGER"
                for c in metric_columns(tier, metric.name)
            ]
    return out


def rollup_sql(scope: str, columns: Sequence[Column], tier: str) -> str:
    """INSERT OR REPLACE of the `tier` buckets between two keys, from the tier below.

    A bucket is recomputed whole from its source rows each time: rolling up twice gives the
    same rows (idempotent). Hourly buckets come from the raw rows, daily from the hourly.

    Values reach 2^63 (an 8 EiB NFS mount's fs.free_bytes), so no aggregate adds them up as
    integers: SQLite's sum() of integers fails the whole statement with "integer overflow"
    (and with it the run's transaction, each later run retrying the same rollup). avg(),
    min() and max() do not add as integers; the daily average weighs the hourly ones in
    floating point (total()); sum() adds only the counts `n`, at most one per run.
    """
    size = BUCKET_S[tier]
    src = table("raw" if tier == "hourly" else "hourly", scope)
    key = f"((k >> {ENTITY_BITS}) / {size} * {size}) << {ENTITY_BITS} | (k & {ENTITY_MASK})"
    sel = [key, "count(*)" if tier == "hourly" else "sum(n)"]
    names = ["k", "n"]
    for c in columns:
        if c.scale == 0:
            continue
        m = c.metric
        if tier == "hourly":
            sel += [f"min({q(m)})", f"CAST(round(avg({q(m)})) AS INTEGER)", f"max({q(m)})"]
            sel.append(f"count({q(m)})")
        else:
            weighed = f"total(CAST({q(m + ':avg')} AS REAL) * {q(m + ':n')})"
            avg = f"{weighed} / nullif(total({q(m + ':n')}), 0)"
            sel += [f"min({q(m + ':min')})", f"CAST(round({avg}) AS INTEGER)"]
            sel += [f"max({q(m + ':max')})", f"sum({q(m + ':n')})"]
        names += metric_columns(tier, m)
    cols = ", ".join(q(n) if ":" in n else n for n in names)
    return (
        f"INSERT OR REPLACE INTO {table(tier, scope)} ({cols}) "
        f"SELECT {', '.join(sel)} FROM {src} WHERE k >= ? AND k < ? GROUP BY 1"
    )
