"""The network sinks' HTTP (export.http, export.sinks) against in-process transports: the
retries, the errors a user reads, the URLs checked before a run, the requests sent."""

from __future__ import annotations

import base64
import socketserver
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from capturehttp import Seen

from fleetmon.errors import ExportError, OptionError
from fleetmon.export.http import HttpOptions, check_url, redacted, send, shown
from fleetmon.export.sinks import (
    batches,
    check_alertmanager_url,
    check_influx_url,
    check_push_url,
    grouping_path,
    influx_write,
    post_alerts,
    push,
)


def _options(
    handler: Callable[[httpx.Request], httpx.Response], retries: int = 2
) -> tuple[HttpOptions, list[float]]:
    slept: list[float] = []
    return (
        HttpOptions(timeout_s=1, retries=retries, transport=httpx.MockTransport(handler),
                    sleep=slept.append),
        slept,
    )  # fmt: skip


def test_a_busy_server_is_tried_again() -> None:
    answers = iter([503, 429, 200])
    opts, slept = _options(lambda r: httpx.Response(next(answers)))
    assert send("PUT", "http://pg:9091/x", b"", headers={}, what="Pushgateway",
                options=opts).status_code == 200  # fmt: skip
    assert slept == [0.5, 1.0]


def test_a_refusal_is_final_and_quoted() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, text="text format parsing error in line 3:\n bad")

    opts, _ = _options(handler)
    with pytest.raises(ExportError) as exc:
        send("PUT", "http://u:secret@pg:9091/m?p=pw", b"", headers={}, what="Pushgateway",
             options=opts)  # fmt: skip
    assert str(exc.value) == (
        "Pushgateway http://pg:9091/m: HTTP 400: text format parsing error in line 3: bad"
    )
    assert len(calls) == 1


def test_a_dead_server_is_an_error_after_every_attempt() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    opts, slept = _options(handler)
    with pytest.raises(ExportError) as exc:
        send("POST", "http://am:9093/api/v2/alerts", b"[]", headers={}, what="Alertmanager",
             options=opts)  # fmt: skip
    assert str(exc.value) == (
        "Alertmanager http://am:9093/api/v2/alerts: cannot connect: [Errno 111] Connection "
        "refused (after 3 attempts)"
    )
    assert len(slept) == 2


@pytest.mark.parametrize(
    ("timeout", "words"),
    [(httpx.ConnectTimeout, "no answer"), (httpx.ReadTimeout, "no complete answer")],
)
def test_a_timeout_says_so(timeout: type[httpx.TimeoutException], words: str) -> None:
    """Not connected in time: no answer; connected (a read's or write's timeout, which
    races the attempt's deadline at the same limit): no complete answer, as the deadline
    says, whichever fires first."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise timeout("timed out", request=request)

    opts, _ = _options(handler, retries=0)
    with pytest.raises(ExportError) as exc:
        send("POST", "http://db:8086/write?db=x", b"", headers={}, what="InfluxDB", options=opts)
    assert str(exc.value) == f"InfluxDB http://db:8086/write: {words} within 1 s"


def test_urls_are_shown_without_credentials() -> None:
    assert shown("https://user:pw@example.net:8443/a/b?token=t") == "https://example.net:8443/a/b"


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("http://admin:S3cret@db:8086/write", "http://admin:***@db:8086/write"),
        (
            "http://db:8086/write?db=fm&u=admin&p=S3cret&precision=s",
            "http://db:8086/write?db=fm&u=admin&p=***&precision=s",
        ),
        (
            "http://db/x?token=S3cret&S3cret&&bucket=b#S3cret",
            "http://db/x?token=***&***&&bucket=b#...",
        ),
        ("htp://:S3cret@pg:9091", "htp://:***@pg:9091/"),
        ("http://admin@pg/", "http://admin@pg/"),
        ("pg:9091", "pg:9091"),
        ("", ""),
        ("http://admin:S3cret@[::1", ""),
    ],
)
def test_an_option_error_quotes_the_url_without_password_or_token(url: str, want: str) -> None:
    assert redacted(url) == want


@pytest.mark.parametrize(
    ("check", "url"),
    [
        (check_influx_url, "http://admin:S3cret@127.0.0.1:8086/write"),
        (check_influx_url, "http://127.0.0.1:8086/write?db=fm&u=admin&p=S3cret&precision=s"),
        (check_influx_url, "http://admin:S3cret@127.0.0.1:8086/query?db=fm"),
        (check_influx_url, "https://admin:S3cret@127.0.0.1:8086/api/v2/write?bucket=b"),
        (check_influx_url, "http://127.0.0.1:8086/write?db=x&token=S3cret#frag"),
        (check_push_url, "htp://admin:S3cret@127.0.0.1:9091"),
        (check_push_url, "http://admin:S3cret@pg:9091/?x"),
        (check_alertmanager_url, "http://admin:S3cret@[::1"),
        (check_alertmanager_url, "http://admin:S3cret#x@am:9093"),  # "#" not encoded
        (check_alertmanager_url, "http://admin:S3cret@am:9093/api/v2/alerts"),
    ],
)
def test_option_errors_never_show_a_password(check: Callable[[str], object], url: str) -> None:
    """They quoted the URL as given: `http://user:pw@HOST:8086/...` is how the README says
    to give InfluxDB 1.x's credentials, and the errors go to cron's mail and CI logs."""
    with pytest.raises(OptionError) as exc:
        check(url)
    assert "S3cret" not in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_url_that_does_not_parse_is_not_quoted() -> None:
    with pytest.raises(OptionError) as exc:
        check_url("http://admin:S3cret@[::1", "--alertmanager")
    assert str(exc.value) == "--alertmanager: not a URL (Invalid port)"


def test_a_redirect_says_where_it_pointed() -> None:
    """A 307 or 308 (not followed: the body and credentials go where the user said) was
    `HTTP 307: ` with nothing after it."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(308, headers={"Location": "/v2/write?db=x&p=S3cret"})

    opts, _ = _options(handler)
    with pytest.raises(ExportError) as exc:
        send("POST", "http://db:8086/write?db=x", b"", headers={}, what="InfluxDB", options=opts)
    assert str(exc.value) == (
        "InfluxDB http://db:8086/write: HTTP 308: redirected to "
        "http://db:8086/v2/write?db=x&p=*** (fleetmon follows no redirect)"
    )


@pytest.mark.parametrize("token", ["tök€n", "S3cret\n", "S3cret\udcff"])
def test_a_token_that_cannot_be_a_header_is_an_error_without_it(
    token: str, capture: tuple[str, Seen]
) -> None:
    """A token that is not ASCII was an internal error (UnicodeEncodeError, the other sinks
    never tried); one with a newline was quoted back in h11's words. (The CLI refuses such
    a $INFLUX_TOKEN before the run; this is the sink's own guard.)"""
    url, seen = capture
    opts = HttpOptions(timeout_s=5, retries=2, sleep=lambda s: None)
    with pytest.raises(ExportError) as exc:
        influx_write(f"{url}/write?db=x", ["m v=1i 1\n"], token=token, options=opts)
    assert str(exc.value) == (
        f"InfluxDB {url}/write: cannot send the request: a header or the URL is not valid "
        "HTTP (not printable ASCII)"
    )
    assert seen == []


def test_a_bare_question_mark_or_hash_is_refused() -> None:
    """`http://pg:9091/?` passed the checks (an empty query is no query), then the path was
    added after the `?`: PUT / (the Pushgateway's 405, or a proxy's 2xx and the data lost);
    `http://am:9093/#` was posted to `/`, not the API."""
    with pytest.raises(OptionError, match=r"^--push: the Pushgateway's address only, no query"):
        check_push_url("http://pg:9091/?")
    with pytest.raises(OptionError, match=r"^--alertmanager: the Alertmanager's address only, no"):
        check_alertmanager_url("http://am:9093?")
    for check, url in ((check_push_url, "http://pg:9091#"),
                       (check_alertmanager_url, "http://am:9093/#"),
                       (check_influx_url, "http://db:8086/write?db=x#")):  # fmt: skip
        with pytest.raises(OptionError, match=r"no #fragment in the URL"):
            check(url)


def test_the_request_goes_to_the_path_after_the_prefix(
    capture: tuple[str, Seen],
) -> None:
    """The request's URL is built from the URL as parsed, not by appending to its text."""
    url, seen = capture
    opts = HttpOptions(timeout_s=5, retries=0)
    push(f"{url}/pg%20x/?", ["a 1\n"], job="fleetmon", grouping={"inventory": "i"}, options=opts)
    post_alerts(f"{url}/am/#", "[]", options=opts)
    assert seen == [
        ("PUT", "/pg%20x/metrics/job/fleetmon/inventory/i"),
        ("POST", "/am/api/v2/alerts"),
    ]


def test_the_pushgateway_group_path() -> None:
    assert grouping_path("fleetmon", {"inventory": "inv.yaml"}) == (
        "/metrics/job/fleetmon/inventory/inv.yaml"
    )
    path = grouping_path("fleetmon", {"inventory": "/etc/ansible/hosts.yaml"})
    encoded = path.rsplit("/", 1)[1]
    assert path.startswith("/metrics/job/fleetmon/inventory@base64/")
    assert base64.urlsafe_b64decode(encoded) == b"/etc/ansible/hosts.yaml"
    assert (
        grouping_path("fleetmon", {"inventory": ""}) == "/metrics/job/fleetmon/inventory@base64/="
    )
    assert (
        grouping_path("fleetmon", {"inventory": "a b?"})
        == "/metrics/job/fleetmon/inventory/a%20b%3F"
    )
    # `.` and `..` as segments are normalised away by httpx (and any URL library).
    assert (
        grouping_path("fleetmon", {"inventory": "."})
        == "/metrics/job/fleetmon/inventory@base64/Lg=="
    )
    assert grouping_path("fleetmon", {"inventory": ".."}) == (
        "/metrics/job/fleetmon/inventory@base64/Li4="
    )


def test_push_puts_the_text() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    opts, _ = _options(handler)
    push("http://pg:9091/prefix/", ["# HELP a x\n", "a 1\n"], job="fleetmon",
         grouping={"inventory": "inv.yaml"}, options=opts)  # fmt: skip
    (req,) = seen
    assert (req.method, str(req.url)) == (
        "PUT", "http://pg:9091/prefix/metrics/job/fleetmon/inventory/inv.yaml"
    )  # fmt: skip
    assert req.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert req.read() == b"# HELP a x\na 1\n"


def test_influx_writes_in_batches_with_a_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    opts, _ = _options(handler)
    url = "http://db:8086/api/v2/write?org=o&bucket=b"
    chunks = ["m v=1 1\n" * 100_000, "m v=2 2\n" * 500_000, "m v=3 3\n"]
    assert influx_write(url, chunks, token="tok", options=opts) == 2
    assert [len(r.read()) for r in seen] == [800_000, 4_000_008]
    assert seen[0].headers["authorization"] == "Token tok"
    assert seen[0].url.params["precision"] == "ns"


def test_batches_keep_chunks_whole() -> None:
    assert list(batches(["aa", "bb", "cc"], limit=4)) == [b"aabb", b"cc"]
    assert list(batches(["aaaaa", "b"], limit=4)) == [b"aaaaa", b"b"]
    assert list(batches([])) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://db:8086", "--influx-url: expected the write endpoint"),
        ("http://db:8086/write", "--influx-url: InfluxDB 1.x writes need ?db=NAME"),
        ("http://db:8086/api/v2/write?bucket=b", "--influx-url: InfluxDB 2 writes need ?org="),
        ("http://db:8086/write?db=x&precision=s", "--influx-url: fleetmon writes nanoseconds"),
        ("ftp://db/write?db=x", "--influx-url: expected an http:// or https:// URL"),
    ],
)
def test_influx_urls_are_checked(url: str, message: str) -> None:
    with pytest.raises(OptionError) as exc:
        check_influx_url(url)
    assert str(exc.value).startswith(message)


def test_push_urls_are_checked() -> None:
    check_push_url("http://pg:9091")
    with pytest.raises(OptionError, match=r"^--push: the Pushgateway's address only, no query"):
        check_push_url("http://pg:9091/?job=x")
    with pytest.raises(OptionError, match=r"^--push: expected an http:// or https:// URL"):
        check_push_url("pg:9091")
    check_push_url("http://proxy/pushgateway/")  # behind a reverse proxy's prefix
    # The push URL of Pushgateway's own README: fleetmon would add its path after it.
    for url in ("http://pg:9091/metrics/job/x", "http://pg:9091/metrics/job/"):
        with pytest.raises(OptionError, match=r"^--push: the Pushgateway's address only \("):
            check_push_url(url)
    with pytest.raises(OptionError) as err:
        check_push_url("http://u:pw@pg:99999")
    assert str(err.value) == "--push: port 99999 is not from 1 to 65535: http://pg:99999/"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://am:9093/api/v2/alerts", "the Alertmanager's address only (http://HOST:9093"),
        ("http://am:9093/am/api/v2/alerts/", "the Alertmanager's address only (http://HOST:9093"),
        ("http://am:9093/api/v1", "the Alertmanager's address only (http://HOST:9093"),
        ("http://am:9093/?silence=1", "the Alertmanager's address only, no query"),
        ("http://am:9093/#alerts", "no #fragment in the URL, got http://am:9093/#..."),
    ],
)
def test_alertmanager_urls_are_checked(url: str, message: str) -> None:
    """fleetmon adds /api/v2/alerts itself: the API's path given was posted to
    .../api/v2/alerts/api/v2/alerts (404 after the run); a query or fragment was lost."""
    with pytest.raises(OptionError) as exc:
        check_alertmanager_url(url)
    assert str(exc.value).startswith(f"--alertmanager: {message}")
    assert "\n" not in str(exc.value)


def test_alertmanager_prefixes_are_taken() -> None:
    for url in ("http://am:9093", "https://am/", "http://proxy/alertmanager/", "http://h/apiv2"):
        check_alertmanager_url(url)


def test_a_fragment_is_refused_by_every_sink() -> None:
    with pytest.raises(OptionError, match=r"^--push: no #fragment in the URL"):
        check_push_url("http://pg:9091/#x")
    with pytest.raises(OptionError, match=r"^--influx-url: no #fragment in the URL"):
        check_influx_url("http://db:8086/write?db=x#y")


def test_the_waits_between_attempts_double_up_to_30_s() -> None:
    opts, slept = _options(lambda r: httpx.Response(503), retries=10)
    with pytest.raises(ExportError):
        send("PUT", "http://pg:9091/x", b"", headers={}, what="Pushgateway", options=opts)
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_alerts_are_posted_as_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    opts, _ = _options(handler)
    post_alerts("http://am:9093/", '[{"labels":{"alertname":"x"}}]', options=opts)
    assert str(seen[0].url) == "http://am:9093/api/v2/alerts"
    assert seen[0].headers["content-type"] == "application/json"


class _Endless(socketserver.BaseRequestHandler):
    """An HTTP answer whose body never ends: as fast as the client reads, or a byte at a
    time (the server's `trickle`)."""

    def handle(self) -> None:
        self.request.recv(65536)
        status = self.server.status  # type: ignore[attr-defined]
        trickle = self.server.trickle  # type: ignore[attr-defined]
        head = f"HTTP/1.1 {status} Oops\r\nContent-Type: text/plain\r\n"
        self.request.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" if trickle else b"error! " * 1000
        try:
            while True:
                self.request.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if trickle:
                    time.sleep(0.05)
        except OSError:
            pass  # the client hung up: what the test wants


@pytest.mark.parametrize(("status", "trickle"), [(500, False), (400, True), (200, True)])
def test_an_answer_without_end_is_read_no_further_than_needed(status: int, trickle: bool) -> None:
    """Before, an error's whole body was read (a server sending without end held the run and
    its memory for ever) and a trickling one was never done."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Endless)
    server.daemon_threads = True
    server.status, server.trickle = status, trickle  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/write?db=x"
    opts = HttpOptions(timeout_s=1, retries=0)
    try:
        if status == 200:
            assert send("POST", url, b"", headers={}, what="InfluxDB", options=opts).is_success
            return
        with pytest.raises(ExportError) as exc:
            send("POST", url, b"", headers={}, what="InfluxDB", options=opts)
        said = f"InfluxDB http://127.0.0.1:{server.server_address[1]}/write: HTTP {status}: "
        assert str(exc.value).startswith(said)
        # Quoted, cut: at 300 characters, or where the attempt's timeout cut the trickle.
        assert str(exc.value).endswith("x" if trickle else "...")
        assert len(str(exc.value)) < len(said) + 310
    finally:
        server.shutdown()
        server.server_close()


class _Dribble(socketserver.BaseRequestHandler):
    """An answer's head a byte at a time, each well within the read timeout, for ever (the
    server's `head` True); or a server that reads the request a byte at a time."""

    def handle(self) -> None:
        try:
            if self.server.head:  # type: ignore[attr-defined]
                self.request.recv(65536)
                self.request.sendall(b"HTTP/1.1 200 OK\r\n")
                while True:
                    self.request.sendall(b"X")
                    time.sleep(0.1)
            while self.request.recv(1):
                time.sleep(0.1)
        except OSError:
            pass  # the client hung up: what the test wants


@pytest.mark.parametrize("head", [True, False])
def test_a_request_never_outlasts_its_time_limit(head: bool) -> None:
    """--export-timeout is each request's time limit: before, httpx's timeouts were each a
    read's or write's, and a server dribbling its answer's head (or reading a request a byte
    at a time) held `fleetmon run` for ever (cron's next run piling on it)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Dribble)
    server.daemon_threads = True
    server.head = head  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/write?db=x"
    opts = HttpOptions(timeout_s=1, retries=1, sleep=lambda s: None)
    body = b"m v=1\n" * 200_000  # more than the sockets' buffers hold
    try:
        t0 = time.monotonic()
        with pytest.raises(ExportError) as exc:
            send("POST", url, body, headers={}, what="InfluxDB", options=opts)
        took = time.monotonic() - t0
        assert str(exc.value) == (
            f"InfluxDB http://127.0.0.1:{server.server_address[1]}/write: "
            "no complete answer within 1 s (after 2 attempts)"
        )
        assert 2 <= took < 30  # two attempts of 1 s each; the bound only guards a hang
    finally:
        server.shutdown()
        server.server_close()


class _Says(socketserver.BaseRequestHandler):
    """Answers every request with the server's `answer`, bytes as they are."""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(self.server.answer)  # type: ignore[attr-defined]


_HOSTILE = b"\x1b[2J\x1b]0;pwned\x07 bad \x9b31m \xff\xfe line\x08"


@pytest.mark.parametrize(
    "answer",
    [
        # An error's body with a terminal's control sequences, C1 controls and bytes that
        # are not UTF-8 (InfluxDB's or a proxy's answer, as it came).
        b"HTTP/1.1 400 Bad\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(_HOSTILE), _HOSTILE),
        b"HTTP/1.1 502 Bad\r\nContent-Type: text/plain; charset=latin-1\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(_HOSTILE), _HOSTILE),
        # Not HTTP at all: 48 KB of a head that never ends a line.
        b"\x1b[2J garbage " * 3000 + b"\r\n\r\n",
    ],
)
def test_a_servers_words_are_one_short_printable_line(answer: bytes) -> None:
    """Before, an error body's ESC, BEL and C1 controls reached the terminal reading the
    error as they came (clearing it, retitling it), and a malformed answer's error quoted
    all of its head (48 KB on one line)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Says)
    server.daemon_threads = True
    server.answer = answer  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    opts = HttpOptions(timeout_s=5, retries=0)
    try:
        with pytest.raises(ExportError) as exc:
            send("POST", f"http://u:pw@127.0.0.1:{port}/write?db=x", b"m v=1", headers={},
                 what="InfluxDB", options=opts)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    said = str(exc.value)
    assert said.startswith(f"InfluxDB http://127.0.0.1:{port}/write: ")
    assert said.isprintable(), said
    assert len(said) < len(f"InfluxDB http://127.0.0.1:{port}/write: HTTP 400: ") + 310
    if answer.startswith(b"HTTP"):
        assert "\\x1b[2J\\x1b]0;pwned\\x07 bad " in said


def test_a_long_redirect_is_quoted_short() -> None:
    """A Location of 15 KB was shown whole, one line of the terminal's screens."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Says)
    server.daemon_threads = True
    server.answer = (  # type: ignore[attr-defined]
        b"HTTP/1.1 307 Go\r\nLocation: http://x/" + b"a" * 15_000 + b"\r\nContent-Length: 0\r\n\r\n"
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        with pytest.raises(ExportError) as exc:
            send("PUT", f"http://127.0.0.1:{port}/metrics", b"a 1\n", headers={},
                 what="Pushgateway", options=HttpOptions(timeout_s=5, retries=0))  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert str(exc.value) == (
        f"Pushgateway http://127.0.0.1:{port}/metrics: HTTP 307: redirected to "
        f"http://x/{'a' * 291}... (fleetmon follows no redirect)"
    )
