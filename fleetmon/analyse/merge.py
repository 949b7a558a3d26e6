"""`fleetmon merge`: JSON reports (schema fleetmon.report/1) back into hosts, and the hosts of
several reports made one fleet (pure).

Deduplication: a host (by name) found in several reports is taken from the report where it
was collected; if it was collected in several, or in none, from the report that started
last; on a tie, from the one named first. A host keeps the findings its own run gave it
(judged with its inventory's thresholds and its history); the fleet statistics and the
fleet-scope rules are computed again over the merged fleet.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleetmon.analyse.guests import is_pairing_note
from fleetmon.errors import InputError
from fleetmon.model import Finding, HostReport, Row, Severity, Status, catalog
from fleetmon.model.durations import format_duration
from fleetmon.model.sites import parse_site
from fleetmon.model.times import ns_of, run_start
from fleetmon.model.virt import ROLES, Virt

SCHEMA = "fleetmon.report/1"
_STATUSES = {s.value: s for s in Status}
_SEVERITIES = {s.value: s for s in Severity}
_SCALARS = (str, int, float, bool, type(None))
#: What each catalogued metric is, by its unit (METRICS.md): "state" a word (vm.state),
#: "bool" true or false (host.rebooted), any other a number. A name not catalogued (a later
#: fleetmon's) may be any scalar.
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "state": ((str,), "a word"),
    "bool": ((bool,), "true or false"),
}
_NUMBER: tuple[tuple[type, ...], str] = ((int, float), "a number")
#: A report that started this long before the latest one is named in a note: its site's
#: cron has likely stopped, and its hosts' figures and findings are that old.
STALE_S = 3600


@dataclass(frozen=True, slots=True)
class ReadReport:
    """One input report: where it came from, its run facts and its hosts."""

    source: str
    started_at: str
    interval_s: float
    inventory: str
    limit: str | None
    hosts: tuple[HostReport, ...]
    #: The rule files its run loaded: its hosts keep their findings.
    rule_files: tuple[str, ...] = ()
    #: The run's warnings that host key checking was off ("host key checking OFF for...").
    host_key_notes: tuple[str, ...] = ()
    #: The fleetmon that wrote it ("" when the report has no `fleetmon_version`).
    fleetmon_version: str = ""


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise InputError(f"{where}{key}: missing")
    value = doc[key]
    # JSON true is not a number: bool is an int to isinstance.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not str):
        raise InputError(f"{where}{key}: expected {_kind_name(kind)}, got {value!r}"[:300])
    return value


def _utc(text: str) -> str:
    """A report's start: UTC to the second, as fleetmon writes it (the merge compares them
    as strings: one format sorts as its times do)."""
    try:
        return run_start(text)
    except ValueError as exc:
        raise InputError(f"started_at: {exc}") from None


def _seconds(value: float, where: str) -> float:
    """A positive, finite number of seconds (a report of ours never has another)."""
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: expected a positive number of seconds, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(dict.fromkeys(names.get(k, "null") for k in kinds))


def _metrics(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected an object, got {value!r}"[:300])
    for k, v in value.items():
        if not isinstance(v, _SCALARS):
            raise InputError(f"{where}.{k}: expected a number, string or null, got {v!r}"[:300])
        _double(v, f"{where}.{k}")
        if v is None or k not in catalog.ALL:
            continue
        # "12.5" or true for a figure was shown as such while the fleet statistics left it
        # out, exit 2 as if sound: a report of ours never has one.
        kinds, said = _KINDS.get(catalog.ALL[k].unit, _NUMBER)
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            raise InputError(f"{where}.{k}: expected {said} or null, got {v!r}"[:300])
    return value


def _double(value: object, where: str) -> None:
    """InputError for an integer past a double (JSON has them; 1e400 is refused on reading,
    10**400 written out is not): no figure of ours, and every statistic over it fails."""
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            digits = len(str(abs(value)))
            raise InputError(
                f"{where}: an integer of {digits} digits is past the largest number"
            ) from None


def _rows(h: Mapping[str, Any], key: str, where: str) -> tuple[Row, ...]:
    rows = []
    for i, r in enumerate(h.get(key) or ()):
        at = f"{where}{key}[{i}]."
        if not isinstance(r, dict):
            raise InputError(f"{at[:-1]}: expected an object")
        labels = r.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise InputError(f"{at}labels: expected an object of strings")
        rows.append(
            Row(_need(r, "name", str, at), _metrics(r.get("metrics"), f"{at}metrics"), labels)
        )
    return tuple(rows)


def _since_last(
    h: Mapping[str, Any], where: str
) -> tuple[dict[tuple[str, str], Any], float | None]:
    s = h.get("since_last_run")
    if s is None:
        return {}, None
    at = f"{where}since_last_run."
    if not isinstance(s, dict):
        raise InputError(f"{at[:-1]}: expected an object or null")
    out = {("host", ""): _metrics(s.get("metrics", {}), f"{at}metrics")}
    rows = s.get("rows") or {}
    if not isinstance(rows, dict):
        raise InputError(f"{at}rows: expected an object")
    for scope, by_name in rows.items():
        if not isinstance(by_name, dict):
            raise InputError(f"{at}rows.{scope}: expected an object")
        for name, metrics in by_name.items():
            out[(scope, name)] = _metrics(metrics, f"{at}rows.{scope}.{name}")
    return out, _need(s, "interval_s", (int, float), at)


def _opt_str(f: Mapping[str, Any], key: str, where: str) -> str | None:
    value = f.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}{key}: expected a string or null, got {value!r}"[:300])
    return value


def _opt_bool(f: Mapping[str, Any], key: str, where: str) -> bool:
    """An optional boolean (reports before the key was added have none: False)."""
    value = f.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{where}{key}: expected true or false, got {value!r}"[:300])
    return value


def finding_from_json(f: Any, where: str) -> Finding:
    """One finding as render.json.finding_dict wrote it."""
    if not isinstance(f, dict):
        raise InputError(f"{where[:-1]}: expected an object")
    severity = _need(f, "severity", str, where)
    if severity not in _SEVERITIES:
        raise InputError(f"{where}severity: unknown severity {severity!r}"[:300])
    value = f.get("value")
    if not isinstance(value, _SCALARS):
        raise InputError(f"{where}value: expected a number, string or null")
    _double(value, f"{where}value")
    return Finding(
        rule=_need(f, "rule", str, where),
        severity=_SEVERITIES[severity],
        scope=_need(f, "scope", str, where),
        subject=_need(f, "subject", str, where),
        metric=_opt_str(f, "metric", where),
        apply=_opt_str(f, "apply", where),
        value=value,
        threshold=_opt_str(f, "threshold", where),
        message=_need(f, "message", str, where),
        state=_opt_str(f, "state", where),
        since=_opt_str(f, "since", where),
        new=_opt_bool(f, "new", where),
    )


def host_from_json(h: Any, where: str) -> HostReport:
    """One host of a JSON report; InputError naming the key path when it is malformed."""
    if not isinstance(h, dict):
        raise InputError(f"{where[:-1]}: expected an object")
    status = _need(h, "status", str, where)
    if status not in _STATUSES:
        raise InputError(f"{where}status: unknown status {status!r}"[:300])
    groups = _need(h, "groups", list, where)
    if not all(isinstance(g, str) for g in groups):
        raise InputError(f"{where}groups: expected a list of strings")
    notes = h.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise InputError(f"{where}notes: expected a list of strings")
    since, since_s = _since_last(h, where)
    findings = h.get("findings") or []
    if not isinstance(findings, list):
        raise InputError(f"{where}findings: expected a list")
    interval = h.get("interval_s")
    if interval is not None and (
        not isinstance(interval, int | float) or isinstance(interval, bool)
    ):
        raise InputError(f"{where}interval_s: expected a number or null")
    if interval is not None:
        _seconds(interval, f"{where}interval_s")
    listed = tuple(finding_from_json(f, f"{where}findings[{i}].") for i, f in enumerate(findings))
    collection = h.get("collection_s")
    _double(collection, f"{where}collection_s")
    if collection is not None and (
        not isinstance(collection, int | float) or isinstance(collection, bool) or collection < 0
    ):
        raise InputError(f"{where}collection_s: expected seconds or null, got {collection!r}")
    return HostReport(
        name=_need(h, "name", str, where),
        address=_need(h, "address", str, where),
        groups=tuple(groups),
        status=_STATUSES[status],
        error=_need(h, "error", (str, type(None)), where),
        interval_s=interval,
        metrics=_metrics(h.get("metrics", {}), f"{where}metrics"),
        rows={s.name: _rows(h, s.key, where) for s in catalog.ROW_SCOPES if h.get(s.key)},
        # The pairing's notes are made again over the merged fleet (link_guests).
        notes=tuple(n for n in notes if not is_pairing_note(n)),
        findings=listed,
        hypervisor=_need(h, "hypervisor", str, where),
        since_last=since,
        since_last_s=since_s,
        # A guest of another site's VM is paired again over the merged fleet (link_guests).
        product_uuid=_opt_str(h, "product_uuid", where),
        vm_of=_opt_str(h, "vm_of", where),
        virt=_virt(h, where),
        site=_site(h, where),
        passed_unheld=_passes(h, listed, where),
        collection_s=collection,
        collected_by=_opt_str(h, "collected_by", where),
        sampled_at_ns=_sampled_at(h, where),
    )


def _virt(h: Mapping[str, Any], where: str) -> Virt | None:
    """The host's virtualization_* keys (absent before they were added, null when not read)."""
    kind, role = (_opt_str(h, f"virtualization_{k}", where) for k in ("type", "role"))
    if kind is None:
        return None
    if role not in ROLES:
        raise InputError(f"{where}virtualization_role: expected one of {ROLES}, got {role!r}"[:300])
    return Virt(kind, role, _opt_str(h, "virtualization_product", where))


def _site(h: Mapping[str, Any], where: str) -> str | None:
    """The host's `site` (the inventory's fleetmon_site), checked as the inventory checks
    it: the exports label its series with it. None without (a report before the key)."""
    value = h.get("site")
    if value is None:
        return None
    try:
        return parse_site(value)
    except ValueError as exc:
        raise InputError(f"{where}site: {exc}"[:300]) from None


def _sampled_at(h: Mapping[str, Any], where: str) -> int | None:
    """The host's sample time (`sampled_at`, to the nanosecond); None when the report has
    none (a host not collected, a report of a fleetmon before the key)."""
    value = h.get("sampled_at")
    if value is None:
        return None
    try:
        return ns_of(value)
    except ValueError as exc:
        raise InputError(f"{where}sampled_at: {exc}") from None


def _passes(h: Mapping[str, Any], listed: Sequence[Finding], where: str) -> int:
    """The passes a host's report counted but did not list (`checks_passed` less the OK
    findings it lists, pending or resolved ones); 0 from a report before the count."""
    count = h.get("checks_passed")
    if count is None:
        return 0
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InputError(f"{where}checks_passed: expected a count, got {count!r}"[:300])
    return max(0, count - sum(1 for f in listed if f.severity is Severity.OK))


def report_from_json(doc: Any, source: str) -> ReadReport:
    """A parsed JSON report; InputError `SOURCE: key.path: ...` when it is not one."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InputError(f"{source}: not a fleetmon JSON report (schema {SCHEMA})")
    hosts = _need(doc, "hosts", list, "")
    started_at = _utc(_need(doc, "started_at", str, ""))
    notes = _strings(doc, "host_key_notes")
    return ReadReport(
        source=source,
        started_at=started_at,
        interval_s=_seconds(_need(doc, "interval_s", (int, float), ""), "interval_s"),
        inventory=_need(doc, "inventory", str, ""),
        limit=_need(doc, "limit", (str, type(None)), ""),
        hosts=_stamped(
            (host_from_json(h, f"hosts[{i}].") for i, h in enumerate(hosts)), started_at
        ),
        rule_files=_strings(doc, "rule_files"),
        host_key_notes=notes,
        fleetmon_version=_opt_str(doc, "fleetmon_version", "") or "",
    )


def _strings(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """An optional list of strings (a string there was taken letter by letter)."""
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{key}: expected a list of strings")
    return tuple(value)


def _stamped(hosts: Iterable[HostReport], started_at: str) -> tuple[HostReport, ...]:
    """The hosts, each without a sample time given its own run's start: the time its run's
    exports gave it (render/influx), not the merged report's, which is the earliest."""
    ns = _epoch(started_at) * 1_000_000_000
    return tuple(
        h if h.sampled_at_ns is not None else dataclasses.replace(h, sampled_at_ns=ns)
        for h in hosts
    )


def merge_hosts(reports: Sequence[ReadReport]) -> tuple[list[HostReport], list[str]]:
    """One host per name, by the module's rule, in the order first seen; notes saying which
    report each duplicated host was taken from."""
    chosen: dict[str, tuple[HostReport, int]] = {}
    dupes: dict[str, list[int]] = {}
    for n, rep in enumerate(reports):
        for h in rep.hosts:
            if h.name not in chosen:
                chosen[h.name] = (h, n)
                continue
            dupes.setdefault(h.name, [chosen[h.name][1]]).append(n)
            if _better(h, rep, *chosen[h.name], reports):
                chosen[h.name] = (h, n)
    notes = []
    for name, seen in dupes.items():
        kept = reports[chosen[name][1]].source
        where = ", ".join(reports[i].source for i in seen)
        notes.append(f"host {name} is in {where}: kept {kept}'s")
    if len(notes) > 20:
        notes = [*notes[:20], f"and {len(notes) - 20} more hosts found in several reports"]
    return [h for h, _ in chosen.values()], notes


def _better(
    new: HostReport, rep: ReadReport, old: HostReport, old_n: int, reports: Sequence[ReadReport]
) -> bool:
    if new.collected != old.collected:
        return new.collected
    # ISO 8601 UTC strings of one format sort as their times do.
    return rep.started_at > reports[old_n].started_at


def stale_notes(reports: Sequence[ReadReport], merged: Sequence[HostReport]) -> list[str]:
    """A note for each report that started more than STALE_S before the latest one and
    gave hosts to the `merged` fleet (a site whose run no longer comes: its hosts were
    shown as if current, in silence)."""
    starts = [_epoch(r.started_at) for r in reports]
    latest = max(range(len(reports)), key=lambda i: starts[i])
    kept = {id(h) for h in merged}
    notes = []
    for r, t in zip(reports, starts, strict=True):
        n = sum(1 for h in r.hosts if id(h) in kept)
        if starts[latest] - t > STALE_S and n:
            notes.append(
                f"{r.source} started {format_duration(starts[latest] - t)} before the latest"
                f" report ({reports[latest].source}, {reports[latest].started_at}): the"
                f" figures and findings of the {n} host(s) taken from it are that old"
            )
    return notes


def _epoch(started_at: str) -> int:
    """A report's start (as _utc checked it) in seconds since the epoch."""
    start = datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(start.timestamp())
