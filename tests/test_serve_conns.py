"""`fleetmon serve`'s connections with real sockets: a burst of clients held by the listen
backlog, clients trickling their requests (or never sending them, or never ending a TLS
handshake) hung up on at the request's deadline and kept from taking every thread, and a
GET's body never read as the next request."""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetmon.cli.servehttp import Server
from fleetmon.cli.servepages import Holder
from fleetmon.cli.webconfig import BasicAuth
from tests.tlsfiles import self_signed

#: What a server without a tick answers on /healthz (these servers have no fleet).
NO_TICK = b"no tick yet: the first samples are on their way\n"


@contextlib.contextmanager
def _serving(server: Server) -> Iterator[tuple[str, int]]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _server(tls: ssl.SSLContext | None = None) -> Server:
    return Server(("127.0.0.1", 0), Holder(1.0), BasicAuth({}), tls)


def _healthz(address: tuple[str, int]) -> int:
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert response.read() == NO_TICK
        return response.status
    finally:
        conn.close()


def _closed_within(sock: socket.socket, limit_s: float) -> bool:
    """Whether the server closes `sock` within `limit_s` (EOF or a reset)."""
    sock.settimeout(limit_s)
    try:
        while sock.recv(4096):
            pass  # an answer (none expected), then the close
    except TimeoutError:
        return False
    except OSError:
        return True  # reset
    return True


def test_the_listen_backlog_holds_a_burst_of_clients() -> None:
    """socketserver's backlog of 5: clients connecting at once past the sixth had their
    handshakes dropped (a second's wait each, or no answer at all). 100 connect while the
    server is not yet accepting: every handshake completes in the kernel's queue, and each
    is answered once the server accepts."""
    server = _server()
    server.max_clients = server.max_per_client = 128  # the burst only
    socks = []
    try:
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(server.server_address[:2])
            socks.append(s)
        pending = set(socks)
        end = time.monotonic() + 30
        while pending and time.monotonic() < end:  # connected: writable, no error
            _, ready, _ = select.select([], list(pending), [], 1.0)
            pending -= {s for s in ready if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0}
        assert not pending, f"{len(pending)} of 100 never connected"
        with _serving(server):
            for s in socks:
                s.setblocking(True)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            for s in socks:
                s.settimeout(30)
                assert s.recv(100).startswith(b"HTTP/1.1 503 ")
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_trickling_clients_neither_hold_their_threads_nor_keep_scrapes_out() -> None:
    """64 connections from one address each sending a request's headers a byte at a time:
    every read waited up to the idle timeout afresh, so they held all 64 threads for as
    long as they trickled (a scrape was hung up on). Now one address holds 16 at most and
    each request's headers are due within head_timeout_s: a scrape from elsewhere is
    answered throughout, and every trickling connection is hung up on."""
    server = _server()
    server.head_timeout_s = 3.0
    stop = threading.Event()
    with _serving(server) as address:
        tricklers = []
        for _ in range(64):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))  # another client than the scraper's 127.0.0.1
            s.connect(address)
            s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            tricklers.append(s)

        def trickle() -> None:
            while not stop.wait(0.5):  # a byte every half second, for a minute
                for s in tricklers:
                    with contextlib.suppress(OSError):
                        s.send(b"x")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            started = time.monotonic()
            assert _healthz(address) == 503  # answered (no tick in this server)
            assert all(_closed_within(s, 30) for s in tricklers)
            assert time.monotonic() - started < 40  # long before the trickle would end
            assert _healthz(address) == 503
        finally:
            stop.set()
            thread.join(timeout=30)
            for s in tricklers:
                s.close()


def test_a_silent_tls_connection_is_hung_up_on_at_the_head_timeout(tmp_path: Path) -> None:
    """A client that connects and never sends its ClientHello held a thread for the whole
    idle timeout (120 s); the first request's deadline now counts from the accept."""
    crt, key = self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    server = _server(ctx)
    server.head_timeout_s = 2.0
    with _serving(server) as address:
        silent = socket.create_connection(address, timeout=30)
        try:
            started = time.monotonic()
            assert _closed_within(silent, 60)
            assert time.monotonic() - started < 30  # not the idle timeout's 120 s
        finally:
            silent.close()
        client = ssl.create_default_context(cafile=str(crt))
        conn = http.client.HTTPSConnection(*address, timeout=30, context=client)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 503  # a real client is served
        conn.close()


def test_a_kept_alive_connection_waits_the_idle_timeout_between_requests() -> None:
    """The head deadline counts from each request's first byte, not from the accept: a
    scraper's connection quiet between two scrapes longer than it is still served."""
    server = _server()
    server.head_timeout_s = 1.0
    with _serving(server) as address:
        conn = http.client.HTTPConnection(*address, timeout=30)
        try:
            for _ in range(2):
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                assert (response.status, response.read()) == (503, NO_TICK)
                time.sleep(2.0)  # quiet past the head timeout, within the idle one
            assert conn.sock is not None  # the same connection throughout
        finally:
            conn.close()


def _answers(address: tuple[str, int], raw: bytes) -> list[tuple[int, bytes, dict[str, str]]]:
    """Every answer to `raw` sent on one connection (status, body, headers), read until
    the server closes it or goes quiet for 3 s."""
    with socket.create_connection(address, timeout=30) as s:
        s.sendall(raw)
        reader = s.makefile("rb")
        out = []
        s.settimeout(3)
        with contextlib.suppress(TimeoutError):
            while status := reader.readline():
                headers = {}
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                out.append((int(status.split()[1]), body, headers))
        return out


SMUGGLED = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_gets_body_is_never_read_as_the_next_request() -> None:
    """GET's body was left on the connection and parsed as the next request (behind a
    proxy that forwards it, a request smuggled past it): `GET /nope` got its own 404."""
    with _serving(_server()) as address:
        raw = (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ) % (len(SMUGGLED), SMUGGLED)
        got = _answers(address, raw)
        assert [(code, body) for code, body, _ in got] == [(503, NO_TICK)] * 2

        chunked = (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
        )
        ((code, body, headers),) = _answers(address, chunked)  # one answer, then closed
        assert (code, headers["connection"]) == (400, "close")
        assert body == b"a GET takes no body (Transfer-Encoding)\n"

        for length, want in ((b"70000", 413), (b"12x", 400), (b"5, 5", 400)):
            raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n%s" % (
                length,
                SMUGGLED,
            )
            got = _answers(address, raw)
            assert [(c, h["connection"]) for c, _, h in got] == [(want, "close")], length

        head = b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
            len(SMUGGLED),
            SMUGGLED,
        )
        with socket.create_connection(address, timeout=30) as s:
            s.sendall(head + b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.settimeout(30)
            text = b""
            while chunk := s.recv(65536):
                text += chunk
        assert text.count(b"HTTP/1.1 503 ") == 2  # both HEADs, no body, no 404
        assert b"404" not in text
