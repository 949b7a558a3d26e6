"""`fleetmon serve`'s connections (I/O edge): the listening socket and its backlog, how many
connections are served at once (in all, and from one client address), which one makes room
for a newcomer when all are taken, how long a request's line and headers may take, and a GET's
body read and dropped (or refused), so that a client trickling bytes, holding connections open
or smuggling a request in a body cannot keep the scrapes from being answered. The pages
themselves are servehttp's.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import socket
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

#: Connections served at once (a thread each). Past them a newcomer takes the place of the
#: connection waiting longest for its request among those of another client holding the
#: most (when that is at least as many as the newcomer's own), else it is closed at once: a
#: flood of idle or half-sent requests from many addresses keeps no scrape out.
MAX_CLIENTS = 128
#: Connections one client address holds at once (Prometheus keeps one a target, a browser
#: up to 6, a load test or a federating Prometheus 50 at once): one client opening many
#: cannot take every thread.
MAX_PER_CLIENT = 64
#: Seconds a connection may stay silent (Prometheus scrapes every 15 s to 1 min, keeping its
#: connection open in between; one closed here is opened again by the next scrape).
IDLE_TIMEOUT_S = 120.0
#: Seconds from a request's first byte to the end of its headers (a new connection's: from
#: its accept, the TLS handshake included), as Go's http.Server ReadHeaderTimeout: a client
#: sending its request a byte at a time is hung up on then, not after each byte's wait.
HEAD_TIMEOUT_S = 10.0
#: Seconds an answer may take before its connection, when every thread is taken, may be
#: closed for a newcomer as one waiting for its request is (a client not reading its
#: answers would hold its thread for IDLE_TIMEOUT_S; a scrape of a large fleet's gzipped
#: exposition takes milliseconds).
STALL_S = 5.0
#: A GET's body up to this size is read and dropped (no page takes one); a larger one is
#: refused (413) and the connection closed.
MAX_BODY_BYTES = 64 * 1024


def client_key(host: str) -> str:
    """What counts as one client for MAX_PER_CLIENT: its IPv4 address (an IPv4-mapped one
    too), or its IPv6 /64, which one machine may take whole."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class _Reads(io.RawIOBase):
    """The connection's reads, none waiting past the request's `deadline` (monotonic
    seconds; None between requests) nor longer than `idle_s` each."""

    def __init__(self, sock: socket.socket, idle_s: float) -> None:
        super().__init__()
        self.sock = sock
        self.idle_s = idle_s
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self.idle_s
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request's headers did not come in time")
        self.sock.settimeout(wait)
        return self.sock.recv_into(buffer)


class ConnectionHandler(BaseHTTPRequestHandler):
    """A connection's requests, each read under its deadline, its body dropped or refused;
    the subclass answers them (do_GET)."""

    server: Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: ours instead, with the deadlines
        self._reads = _Reads(self.connection, self.server.idle_timeout_s)
        self._buffered = io.BufferedReader(self._reads)
        self.rfile = self._buffered
        # The first request is due within the head timeout of the accept (as Go counts
        # it): a connection that never sends one, or never ends its TLS handshake, goes.
        self._reads.deadline = time.monotonic() + self.server.head_timeout_s

    def handle_one_request(self) -> None:
        if self._reads.deadline is None and not self._next_request():
            self.close_connection = True
            return
        try:
            super().handle_one_request()
        finally:
            self._reads.deadline = None
            self.server.waits(self.connection)  # the next request (kept alive), or its close

    def _next_request(self) -> bool:
        """Waits (up to the idle timeout) for the next request's first byte; its headers
        are due within the head timeout from then. False: the client left or went quiet."""
        try:
            if not self._buffered.peek(1):
                return False
        except OSError:  # silent past the idle timeout, reset, a TLS alert
            return False
        self._reads.deadline = time.monotonic() + self.server.head_timeout_s
        return True

    def parse_request(self) -> bool:
        if not super().parse_request() or not self._drop_body():
            return False
        if not self.server.answers(self.connection):
            # Made room for a newcomer meanwhile: its headers were cut short at the close.
            self.close_connection = True
            return False
        self._reads.deadline = None
        self.connection.settimeout(self.server.idle_timeout_s)  # the answer's writes
        return True

    def _drop_body(self) -> bool:
        """A GET's or HEAD's body, which no page takes, read and dropped, so that it is
        never taken for the next request on the connection (other methods get 405 and the
        connection closed). A chunked one, or a length not read, gets 400 (413 past
        MAX_BODY_BYTES) and the connection closed. False: answered (or gone) already."""
        if self.command not in ("GET", "HEAD"):
            return True
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            return self._refuse(HTTPStatus.BAD_REQUEST, "a GET takes no body (Transfer-Encoding)")
        if not lengths:
            return True
        if len(lengths) > 1 or not lengths[0].strip().isdigit():
            return self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length is not one number")
        size = int(lengths[0])
        if size > MAX_BODY_BYTES:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "a GET takes no body")
        if size and len(self.rfile.read(size)) < size:
            self.close_connection = True  # the client left mid-body: nothing to answer
            return False
        return True

    def _refuse(self, code: HTTPStatus, why: str) -> bool:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(why) + 1))
        self.send_header("Connection", "close")  # what follows is not read as a request
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(why.encode() + b"\n")
        return False


class Server(ThreadingHTTPServer):
    """The HTTP(S) server: one thread per connection (at most max_clients, past them one
    waiting for its request closed for a newcomer; at most max_per_client from one
    address), TLS per connection in that thread."""

    daemon_threads = True
    block_on_close = False
    #: The listen backlog (the kernel caps it at net.core.somaxconn), as Go's net/http:
    #: socketserver's 5 dropped the handshakes of concurrent clients past the fifth, who
    #: waited a second or more to connect, or for an answer that never came.
    request_queue_size = socket.SOMAXCONN
    idle_timeout_s = IDLE_TIMEOUT_S
    head_timeout_s = HEAD_TIMEOUT_S
    stall_s = STALL_S
    max_clients = MAX_CLIENTS
    max_per_client = MAX_PER_CLIENT

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[ConnectionHandler],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.tls = tls
        self.dual_stack = not address[0] and socket.has_dualstack_ipv6()
        if self.dual_stack:  # ":9712": "::" taking IPv4 too, as node_exporter's ":9100"
            address = ("::", address[1])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}  # connections served, by client address
        self._client: dict[socket.socket, str] = {}  # each connection's (client_key)
        # The connections waiting for a request (from their accept, and between two: its
        # first byte, its headers, its body) since when (monotonic s): those a newcomer may
        # take the place of; and those closed for one.
        self._waiting: dict[socket.socket, float] = {}
        # The connections answering, since when: one answering for longer than stall_s (a
        # client not reading its answer) may be closed for a newcomer too.
        self._answering: dict[socket.socket, float] = {}
        self._evicted: set[socket.socket] = set()
        super().__init__(address, handler)

    def waits(self, conn: socket.socket) -> None:
        """`conn` waits for its next request from now (room may be made from it)."""
        with self._lock:
            if conn in self._client and conn not in self._evicted:
                self._answering.pop(conn, None)
                self._waiting[conn] = time.monotonic()

    def answers(self, conn: socket.socket) -> bool:
        """`conn` read a request and answers it (no room is made from it meanwhile); False:
        it was closed for a newcomer already."""
        with self._lock:
            self._waiting.pop(conn, None)
            if conn in self._evicted:
                return False
            self._answering[conn] = time.monotonic()
            return True

    def _victim(self, who: str, mine: int) -> socket.socket | None:
        """The connection a newcomer from `who`, holding `mine`, takes the place of: of
        another client holding the most (at least as many as `who`: a client's connection
        just closed may not have ended yet), the one waiting longest for a request. None
        when there is none: every thread answers, or `who` is the greediest. Under the
        lock."""
        best: tuple[int, float] | None = None
        victim = None
        stalled = time.monotonic() - self.stall_s
        answering = ((c, since) for c, since in self._answering.items() if since < stalled)
        for conn, since in (*self._waiting.items(), *answering):
            client = self._client[conn]
            rank = (self._served.get(client, 0), -since)
            if client != who and rank[0] >= mine and (best is None or rank > best):
                best, victim = rank, conn
        if victim is not None:
            self._waiting.pop(victim, None)
            self._answering.pop(victim, None)
            self._evicted.add(victim)
        return victim

    def _take(self, request: socket.socket, who: str) -> bool:
        with self._lock:
            mine = self._served.get(who, 0)
            if mine >= self.max_per_client:
                return False
            victim = None
            total = sum(self._served.values())
            # The connections closed for newcomers count until their threads end: twice
            # max_clients bounds the threads while they do.
            if total >= self.max_clients:
                victim = self._victim(who, mine) if total < 2 * self.max_clients else None
                if victim is None:
                    return False
            self._served[who] = mine + 1
            self._client[request] = who
            self._waiting[request] = time.monotonic()
        if victim is not None:
            log.debug("%s: all connections taken: closed the one waiting longest", who)
            with contextlib.suppress(OSError):  # the socket's, not TLS's (another thread's)
                socket.socket.shutdown(victim, socket.SHUT_RDWR)
        return True

    def _release(self, request: socket.socket, who: str) -> None:
        with self._lock:
            del self._client[request]
            self._waiting.pop(request, None)
            self._answering.pop(request, None)
            self._evicted.discard(request)
            left = self._served.pop(who) - 1
            if left:
                self._served[who] = left

    def process_request(self, request: Any, client_address: Any) -> None:
        who = client_key(str(client_address[0]))
        if not self._take(request, who):
            log.debug("%s: too many clients (or connections of its own): hung up", who)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # the connection's thread
        except BaseException:
            self._release(request, who)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request, client_key(str(client_address[0])))

    def server_bind(self) -> None:
        if self.dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            # The handshake happens on the request's thread, at its first read (under the
            # first request's deadline).
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("request from %s failed", client_address, exc_info=True)
