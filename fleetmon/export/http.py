"""One HTTP request with a timeout and retries (I/O edge), for every network sink.

A connection that fails or times out, and an answer of 429 or 5xx, are tried again after
a growing pause; any other answer outside 2xx is final (a redirect is not followed: the
error says where it pointed). The error names the request by its URL without credentials
(no user, password or query string), the attempts made and what the server said (one
line of at most QUOTE_CHARS, its control characters escaped); no error quotes a request
header (a token).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fleetmon.errors import ExportError, OptionError

#: Answers worth another try: the server is busy or broken for now.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: How much of an error answer the message quotes.
QUOTE_CHARS = 300


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Timeout of each attempt, attempts after the first, the first pause between them."""

    timeout_s: float = 10.0
    #: Seconds the time limit grows by per MB of the request's body (0: a fixed limit).
    #: The limit is the whole request's, the server's work on it included, and that work
    #: grows with the body: a Pushgateway takes 10-12 s over the 59 MB push of 1,000 hosts
    #: of 20 VMs (its parse; at load 3 on 2 cores), past a fixed 10 s.
    per_mb_s: float = 0.0
    retries: int = 2
    backoff_s: float = 0.5
    #: For tests: a transport that answers in process (httpx.MockTransport).
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep


#: The longest wait between two attempts (0.5 s doubling reached an hour at the 14th).
MAX_BACKOFF_S = 30.0
#: --export-timeout's default: 10 s a request, plus 1 s per MB of its body (about five
#: times the Pushgateway's measured pace: a 59 MB push gets 69 s; a 4 MB InfluxDB batch 14).
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_PER_MB_S = 1.0
#: The longest time limit (larger ones overflow the request's timer and socket).
MAX_TIMEOUT_S = 3600.0


def time_limit(options: HttpOptions, size: int) -> float:
    """The time limit of one attempt at a request whose body is `size` bytes."""
    return min(MAX_TIMEOUT_S, options.timeout_s + options.per_mb_s * size / 1e6)


def shown(url: str) -> str:
    """A URL as an error message may show it: no credentials, no query string."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(invalid URL)"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}{u.path}"


#: Query parameters an option's error shows with their values: the write endpoints'
#: settings and InfluxDB 1.x's user. Any other's value (`p=`, `token=`...) is hidden.
SHOWN_PARAMS = frozenset({"db", "rp", "precision", "consistency", "org", "orgID", "bucket", "u"})


def redacted(url: str) -> str:
    """A URL as an option's error quotes it, its structure kept: its user but `***` for its
    password, `***` for the values of query parameters but SHOWN_PARAMS' (and for an item
    that is no `name=value`), `#...` for its fragment. A text that is not a URL: `''`."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return ""
    if not url:
        return ""  # httpx reads it as `/`
    out = f"{u.scheme}:" if u.scheme else ""
    if u.host or u.userinfo:
        user, colon, _ = u.userinfo.decode("ascii").partition(":")
        info = f"{user}{':***' if colon else ''}@" if u.userinfo else ""
        out += f"//{info}{u.netloc.decode('ascii')}"
    path, question, query = u.raw_path.decode("ascii").partition("?")
    out += path + question + "&".join(_param_shown(item) for item in query.split("&"))
    return out + ("#..." if "#" in url else "")


def _param_shown(item: str) -> str:
    name, equals, _ = item.partition("=")
    if not item or (equals and name in SHOWN_PARAMS):
        return item
    return f"{name}=***" if equals else "***"


def check_url(url: str, option: str) -> httpx.URL:
    """An http(s) URL with a host and no fragment, or an OptionError naming the option (and
    quoting the URL redacted: never its password or token)."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        # Neither the text nor what httpx's reason quotes of it ("Invalid port: '...'"): a
        # password's `@`, `/` or `#` not percent-encoded puts part of it there.
        reason = re.sub(r": '.*", "", str(exc))
        raise OptionError(f"{option}: not a URL ({reason})") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise OptionError(f"{option}: expected an http:// or https:// URL, got {redacted(url)!r}")
    if u.port is not None and not 0 < u.port < 65536:
        raise OptionError(f"{option}: port {u.port} is not from 1 to 65535: {shown(url)}")
    # Never sent: a mistake (a '#' in a password not percent-encoded, ...); a bare '#' too.
    if "#" in url:
        raise OptionError(f"{option}: no #fragment in the URL, got {shown(url)}#...")
    return u


#: How much of an error answer is read: enough to quote. A server that sends without end
#: (or a byte at a time) is read no further than this, or than the attempt's timeout.
READ_BYTES = 64 * 1024


def _said(response: httpx.Response, timeout_s: float) -> str:
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    try:
        for chunk in response.iter_bytes():
            got += chunk
            if len(got) >= READ_BYTES or time.monotonic() > deadline:
                break
    except httpx.TransportError:
        pass  # cut off, or silent past the timeout: what came is quoted
    return quoted(bytes(got).decode(response.encoding or "utf-8", "replace"))


def quoted(text: str) -> str:
    """A server's words as one line of a terminal may show them: each run of white space one
    space, any other character that is not printable escaped as render.textfit.clean does
    a host's text (`\\x1b`; export may not import render; the CLI's stderr cleans it
    too, the ExportError is escaped for any other reader), cut at QUOTE_CHARS (h11's words
    on a malformed head ran to 48 KB, a Location to 15 KB)."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split()))
    return flat[:QUOTE_CHARS] + ("..." if len(flat) > QUOTE_CHARS else "")


class _Deadline:
    """The whole attempt's time limit. httpx's timeouts are each a read's or a write's: a
    server that sends its answer's head a byte at a time, each within the timeout, (or
    reads the request so) held the run for ever. At the deadline the attempt's socket,
    learnt from httpx's trace of the connection, is shut down: the blocked read or write
    returns and httpx raises a TransportError."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpx's `trace` extension: keeps the socket as soon as it is connected."""
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            with self._lock:
                self._sock = sock
                if self.expired:
                    self._shut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


class _Unsendable(Exception):
    """A request that cannot be sent as it is (a header that is not ASCII...): no attempt
    after it would fare better."""


def send(
    method: str,
    url: str | httpx.URL,
    body: Callable[[], Iterable[bytes]] | bytes,
    *,
    headers: Mapping[str, str],
    what: str,
    options: HttpOptions,
    size: int | None = None,
) -> httpx.Response:
    """Send a request until it succeeds (2xx) or its attempts run out (ExportError).

    `body` is bytes or a function giving the body's pieces afresh for each attempt, then
    of about `size` bytes (the time limit's share of the body: time_limit).
    """
    limit = time_limit(options, len(body) if isinstance(body, bytes) else size or 0)
    target = shown(str(url))
    attempts = options.retries + 1
    last = ""
    for attempt in range(attempts):
        if attempt:
            options.sleep(min(MAX_BACKOFF_S, options.backoff_s * 2 ** (attempt - 1)))
        try:
            response, last = _attempt(method, url, body, headers, options, limit)
        except _Unsendable as exc:
            raise ExportError(f"{what} {target}: {exc}") from None
        if response is not None and response.is_success:
            return response
        if response is not None and response.status_code not in RETRY_STATUS:
            raise ExportError(f"{what} {target}: {last}")
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    raise ExportError(f"{what} {target}: {last}{tries}")


def _attempt(
    method: str,
    url: str | httpx.URL,
    body: Callable[[], Iterable[bytes]] | bytes,
    headers: Mapping[str, str],
    options: HttpOptions,
    limit: float,
) -> tuple[httpx.Response | None, str]:
    """One attempt, on a connection of its own, within its deadline (`limit` seconds): the
    answer (closed) and what went wrong in words, or None and why there was no answer."""
    content = body if isinstance(body, bytes) else body()
    with (
        httpx.Client(timeout=limit, transport=options.transport) as client,
        _Deadline(limit) as deadline,
    ):
        try:
            request = client.build_request(method, url, content=content, headers=dict(headers))
            request.extensions["trace"] = deadline.trace
            # Streamed: a success's body is never read, an error's only as far as _said
            # quotes it.
            response = client.send(request, stream=True)
            try:
                said = "" if response.is_success else _refusal(response, limit)
            finally:
                response.close()
        except (UnicodeError, httpx.LocalProtocolError):
            # httpx's (h11's) words quote the header's value: a token, never shown.
            raise _Unsendable("cannot send the request: a header or the URL is not valid "
                              "HTTP (not printable ASCII)") from None  # fmt: skip
        except httpx.TimeoutException as exc:
            # Connected (a read's or write's timeout), the deadline's own words: which of
            # the two fires first at the same limit is a race (a loaded machine's timer).
            whole = deadline.expired or not isinstance(
                exc, httpx.ConnectTimeout | httpx.PoolTimeout
            )
            return None, f"no {'complete ' if whole else ''}answer within {round(limit, 1):g} s"
        except httpx.TransportError as exc:
            if deadline.expired:
                return None, f"no complete answer within {round(limit, 1):g} s"
            # Quoted: h11's words on a malformed answer repeat all of its head (64 KB).
            why = f"cannot connect: {exc}" if isinstance(exc, httpx.ConnectError) else str(exc)
            return None, quoted(why)
        if response.is_success:
            return response, ""
        return response, f"HTTP {response.status_code}: {said}"


def _refusal(response: httpx.Response, timeout_s: float) -> str:
    """What an answer outside 2xx says: where a redirect points (not followed: a request's
    body and credentials go to the address given, nowhere else), else its body quoted."""
    if not response.has_redirect_location:
        return _said(response, timeout_s)
    try:
        where = redacted(str(response.request.url.join(response.headers["location"])))
    except (httpx.InvalidURL, UnicodeError):
        where = ""
    if not where:
        return "redirected to a Location that is not a URL (not followed)"
    # Quoted: a Location is as long as the server's head may be (15 KB shown whole before).
    return f"redirected to {quoted(where)} (fleetmon follows no redirect)"
