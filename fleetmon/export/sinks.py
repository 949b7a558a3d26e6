"""The network sinks (I/O edge): a Pushgateway, InfluxDB's write endpoints, Alertmanager.

Each takes what the pure renderers made (render.prom, render.influx, render.alerts) and
sends it with export.http's timeout and retries; their URLs are checked before the run.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence

import httpx

from fleetmon.errors import ExportError, OptionError
from fleetmon.export.http import HttpOptions, check_url, redacted, send, shown

#: Content-Type of the Prometheus text exposition format 0.0.4.
PROM_TEXT = "text/plain; version=0.0.4; charset=utf-8"
#: Largest body of one InfluxDB write: 1.x refuses more than 25 MB by default
#: ([http] max-body-size); InfluxData advise batches of about 5,000 lines.
INFLUX_BATCH_BYTES = 4 * 1024 * 1024


def grouping_path(job: str, grouping: Mapping[str, str]) -> str:
    """The Pushgateway path of a group: `/metrics/job/fleetmon/inventory@base64/...`.

    A value with a `/` (a path), an empty one, `.` or `..` (path segments a client
    normalises away) is base64url-encoded as the Pushgateway's README says; others are
    percent-encoded.
    """
    parts = [("job", job), *grouping.items()]
    out = "/metrics"
    for key, value in parts:
        if "/" in value or value in ("", ".", ".."):
            encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
            out += f"/{key}@base64/{encoded}"
        else:
            out += f"/{key}/{urllib.parse.quote(value, safe='')}"
    return out


def _no_query(u: httpx.URL, url: str, option: str, server: str) -> None:
    """Refuse a sink's base URL with a query (fleetmon appends its path to it), a bare `?`
    too, the URL shown without its query or credentials."""
    if u.query or "?" in url:
        raise OptionError(f"{option}: the {server}'s address only, no query: {shown(url)}?...")


def check_push_url(url: str) -> None:
    """Refuse, before the run, a --push URL that is not http(s)://host[:port][/prefix]."""
    u = check_url(url, "--push")
    _no_query(u, url, "--push", "Pushgateway")
    if "/metrics/job/" in f"{u.path.rstrip('/')}/":
        # The push URL of Pushgateway's README: fleetmon makes that path itself.
        raise OptionError(
            f"--push: the Pushgateway's address only (http://HOST:9091), fleetmon adds "
            f"/metrics/job/fleetmon/inventory@base64/...: {shown(url)}"
        )


def under(url: str, path: str) -> httpx.URL:
    """A sink's request URL: `path` after the base URL's own path (its prefix), from the URL
    as parsed (a bare `?` or `#` of the text is not kept before `path`)."""
    u = httpx.URL(url)
    prefix = u.raw_path.decode("ascii").partition("?")[0].rstrip("/")
    return u.copy_with(path=prefix + path, query=None, fragment=None)


def push(
    url: str,
    chunks: Sequence[str],
    *,
    job: str,
    grouping: Mapping[str, str],
    options: HttpOptions,
) -> None:
    """Replace the group's metrics on a Pushgateway (PUT: a VM gone since the last push
    goes with it)."""
    target = under(url, grouping_path(job, grouping))
    send("PUT", target, lambda: _encoded(chunks), headers={"Content-Type": PROM_TEXT},
         what="Pushgateway", options=options, size=sum(map(len, chunks)))  # fmt: skip


def _encoded(chunks: Iterable[str]) -> Iterator[bytes]:
    for c in chunks:
        yield c.encode("utf-8")


def check_influx_url(url: str) -> httpx.URL:
    """The InfluxDB write URL: 1.x `.../write?db=NAME` or 2.x `.../api/v2/write?bucket=B`
    (with org or orgID); else an OptionError saying which."""
    u = check_url(url, "--influx-url")
    params = u.params
    if u.path.endswith("/api/v2/write"):
        if "bucket" not in params or not ({"org", "orgID"} & set(params)):
            raise OptionError(
                f"--influx-url: InfluxDB 2 writes need ?org=...&bucket=...: {redacted(url)!r}"
            )
    elif u.path.endswith("/write"):
        if "db" not in params:
            raise OptionError(f"--influx-url: InfluxDB 1.x writes need ?db=NAME: {redacted(url)!r}")
    else:
        raise OptionError(
            "--influx-url: expected the write endpoint, http://HOST:8086/write?db=NAME "
            f"(1.x) or http://HOST:8086/api/v2/write?org=O&bucket=B (2.x), got {redacted(url)!r}"
        )
    if params.get("precision", "ns") not in ("ns", "n"):
        raise OptionError(
            f"--influx-url: fleetmon writes nanoseconds; drop precision=: {redacted(url)!r}"
        )
    return u


def batches(chunks: Iterable[str], limit: int = INFLUX_BATCH_BYTES) -> Iterator[bytes]:
    """Whole chunks (a host's lines each) joined into bodies of at most `limit` bytes (a
    single larger chunk is a body of its own)."""
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        data = chunk.encode("utf-8")
        if batch and size + len(data) > limit:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(data)
        size += len(data)
    if batch:
        yield b"".join(batch)


def influx_write(
    url: str, chunks: Iterable[str], *, token: str | None, options: HttpOptions
) -> int:
    """Write line protocol to InfluxDB in batches; the number of requests it took.

    InfluxDB has no transaction: a batch refused after others were written leaves those in
    it, and the error says how many (a retry of the run writes the same points again, which
    InfluxDB takes as the same: same series, same timestamps)."""
    u = check_influx_url(url)
    if "precision" not in u.params:
        u = u.copy_merge_params({"precision": "ns"})
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Token {token}"
    n = 0
    for body in batches(chunks):
        try:
            send("POST", u, body, headers=headers, what="InfluxDB", options=options)
        except ExportError as exc:
            if not n:
                raise
            raise ExportError(f"{exc} (batch {n + 1}; the {n} before it were written)") from None
        n += 1
    return n


def check_alertmanager_url(url: str) -> None:
    """Refuse, before the run, an --alertmanager URL that is not http(s)://host[:port][/prefix]."""
    u = check_url(url, "--alertmanager")
    _no_query(u, url, "--alertmanager", "Alertmanager")
    if re.search(r"/api/v[12](/|$)", u.path):
        # .../api/v2/alerts, the API's path: fleetmon adds it itself.
        raise OptionError(
            "--alertmanager: the Alertmanager's address only (http://HOST:9093, with its "
            f"--web.route-prefix if any), fleetmon adds /api/v2/alerts: {shown(url)}"
        )


def post_alerts(url: str, body: str, *, options: HttpOptions) -> None:
    """POST the alerts to one Alertmanager's v2 API."""
    target = under(url, "/api/v2/alerts")
    send("POST", target, body.encode("utf-8"), headers={"Content-Type": "application/json"},
         what="Alertmanager", options=options)  # fmt: skip
