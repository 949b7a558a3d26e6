"""The sinks' time limit grows with the request's body by default (export.http.time_limit):
a Pushgateway reads a 59 MB push (1,000 hosts of 20 VMs) in 10-12 s, past a fixed 10 s, and
every attempt then timed out and sent it all again. A limit given with --export-timeout is
the limit of every request, whatever its size."""

from __future__ import annotations

import argparse
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from fleetmon.cli.exports import http_options
from fleetmon.errors import ExportError
from fleetmon.export.http import HttpOptions, send, time_limit
from fleetmon.export.sinks import push


class _ReadsSlowly(socketserver.BaseRequestHandler):
    """Reads the whole request, then takes the server's `delay` over it (as a Pushgateway
    parses a large push) before it answers 200."""

    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.request.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        sizes = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")]  # fmt: skip
        # Bytes: that many; a streamed body (a push's pieces): chunked, to its last chunk.
        while len(body) < sizes[0] if sizes else not body.endswith(b"\r\n0\r\n\r\n"):
            body += self.request.recv(1 << 20)
        time.sleep(self.server.delay)  # type: ignore[attr-defined]
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ReadsSlowly)
    server.daemon_threads = True
    server.delay = 2.0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_BODY = b"fleetmon_host_up 1\n" * 160_000  # 3.04 MB


def test_the_limit_grows_with_the_body_up_to_an_hour() -> None:
    fixed = HttpOptions(timeout_s=10)
    assert time_limit(fixed, 59_000_000) == 10
    grows = HttpOptions(timeout_s=10, per_mb_s=1)
    assert time_limit(grows, 0) == 10
    assert time_limit(grows, 59_000_000) == pytest.approx(69)
    assert time_limit(grows, 10**12) == 3600


@pytest.mark.parametrize("via", ["bytes", "push"])
def test_a_large_request_gets_the_time_its_size_takes(slow_server: str, via: str) -> None:
    """1 s plus 5 s per MB: the server's 2 s over 3 MB is within the limit (16 s), where a
    fixed 1 s cuts every attempt short."""
    grows = HttpOptions(timeout_s=1, per_mb_s=5, retries=0)
    if via == "push":
        chunks = [_BODY.decode()[:1_520_000], _BODY.decode()[1_520_000:]]
        push(slow_server, chunks, job="fleetmon", grouping={}, options=grows)
    else:
        send("POST", slow_server + "/write", _BODY, headers={}, what="InfluxDB", options=grows)
    with pytest.raises(ExportError, match=r"no complete answer within 1 s$"):
        send("POST", slow_server + "/write", _BODY, headers={}, what="InfluxDB",
             options=HttpOptions(timeout_s=1, retries=0))  # fmt: skip


def test_the_message_names_the_limit_the_request_had(slow_server: str) -> None:
    """The words give the grown limit, rounded to a tenth: the one that ran out."""
    opts = HttpOptions(timeout_s=0.5, per_mb_s=0.2, retries=0)
    with pytest.raises(ExportError, match=r"no complete answer within 1\.1 s$"):
        send("POST", slow_server + "/write", _BODY, headers={}, what="InfluxDB", options=opts)


@pytest.mark.parametrize(
    ("given", "timeout_s", "per_mb_s"), [(None, 10.0, 1.0), (30.0, 30.0, 0.0), (5.0, 5.0, 0.0)]
)
def test_export_timeout_given_is_fixed_else_it_grows(
    given: float | None, timeout_s: float, per_mb_s: float
) -> None:
    opts = http_options(argparse.Namespace(export_timeout=given, export_retries=2))
    assert (opts.timeout_s, opts.per_mb_s, opts.retries) == (timeout_s, per_mb_s, 2)
