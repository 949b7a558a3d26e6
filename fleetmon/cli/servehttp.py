"""`fleetmon serve`'s HTTP side (I/O edge): the address to listen on, the loopback rule,
the web config's TLS and basic auth, and the server answering the four paths from the latest
tick's report (servepages.Holder). The connections (how many, how long a request may take,
a GET's body) are servenet's.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import logging
import ssl
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from fleetmon.cli import servenet
from fleetmon.cli.servenet import ConnectionHandler
from fleetmon.cli.servepages import Holder, accepts_gzip, health, waiting
from fleetmon.cli.webconfig import BasicAuth, WebConfig, read_web_config, ssl_context
from fleetmon.errors import OptionError
from fleetmon.model import Report
from fleetmon.render.json import render_json

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or `:port` (every address, as node_exporter's `:9100`: host
    ""); OptionError naming --listen."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            sep = ""
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise OptionError(f"--listen: expected ADDRESS:PORT, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the loopback names."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, web: WebConfig, insecure: bool) -> None:
    """Off loopback, TLS and basic auth are required unless --insecure-listen says otherwise."""
    if is_loopback(host) or insecure:
        return
    missing = [what for what, ok in (("TLS", web.tls), ("basic auth", bool(web.users))) if not ok]
    if missing:
        raise OptionError(
            f"--listen {host or '(every address)'}: not a loopback address, and "
            f"{' and '.join(missing)} not "
            "configured: give --web-config-file with tls_server_config and "
            "basic_auth_users, or --insecure-listen"
        )


def _metrics_module() -> Any:
    """The exports issue's Prometheus exposition (render.prom), when it is installed."""
    try:
        return importlib.import_module("fleetmon.render.prom")
    except ImportError:
        return None


class Handler(ConnectionHandler):
    """GET of the four paths; everything else 404 (or 405 for other methods)."""

    server: Server
    server_version = "fleetmon"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _gzip(self) -> bool:
        """Whether the client takes a gzip body (Accept-Encoding; `gzip;q=0` refuses it)."""
        return accepts_gzip(self.headers.get("Accept-Encoding") or "")

    def _page(
        self, name: str, report: Report, make: Callable[[Report], tuple[str, str]]
    ) -> tuple[bytes, dict[str, str]]:
        """This tick's page, gzipped when the client takes it, and the headers saying so."""
        if self._gzip():
            body = self.server.holder.page(name, report, make, gzipped=True)
            return body, {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return self.server.holder.page(name, report, make), {"Vary": "Accept-Encoding"}

    def _send(
        self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def _not_allowed(self) -> None:
        # The connection closed after: the request's body is never read.
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"GET only\n", "text/plain",
                   {"Allow": "GET, HEAD", "Connection": "close"})  # fmt: skip

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def do_GET(self) -> None:
        if not self.server.auth.check(self.headers.get("Authorization")):
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"authentication required\n",
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": 'Basic realm="fleetmon"'},
            )
            return
        path = urlsplit(self.path).path
        route = {
            "/": self._html,
            "/metrics": self._metrics,
            "/api/report": self._json,
            "/healthz": self._health,
        }.get(path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return
        route()

    def _waiting(self) -> None:
        self._send(
            HTTPStatus.SERVICE_UNAVAILABLE,
            b"no tick yet: the first samples are on their way\n",
            "text/plain; charset=utf-8",
            {"Retry-After": str(max(1, round(self.server.holder.delay_s)))},
        )

    def _latest(self) -> Report | None:
        """The latest tick's report, or None after answering 503 (no tick yet)."""
        report = self.server.holder.report()
        if report is None:
            self._waiting()
        return report

    def _html(self) -> None:
        report = self._latest()
        if report is None:
            return
        from fleetmon.render.html import render_html

        body, headers = self._page("html", report, lambda r: (render_html(r), ""))
        # The page reloads itself each tick (the Refresh header: no change to the report's
        # template, whose CSP allows no inline script beyond its own).
        headers["Refresh"] = str(max(1, round(report.run.interval_s)))
        self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", headers)

    def _json(self) -> None:
        report = self._latest()
        if report is None:
            return
        body, headers = self._page("json", report, lambda r: (render_json(r), ""))
        self._send(HTTPStatus.OK, body, "application/json", headers)

    def _metrics(self) -> None:
        prom = _metrics_module()
        if prom is None:
            self._send(
                HTTPStatus.NOT_IMPLEMENTED,
                b"this build has no Prometheus exposition\n",
                "text/plain; charset=utf-8",
            )
            return
        report = self._latest()
        if report is None:
            return
        openmetrics = "application/openmetrics-text" in (self.headers.get("Accept") or "")
        name = "openmetrics" if openmetrics else "prometheus"
        groups = self.server.holder.groups
        body, headers = self._page(
            name,
            report,
            lambda r: (prom.render_prometheus(r, openmetrics=openmetrics, groups=groups), ""),
        )
        ctype = prom.CONTENT_TYPE_OPENMETRICS if openmetrics else prom.CONTENT_TYPE_TEXT
        self._send(HTTPStatus.OK, body, ctype, headers)

    def _health(self) -> None:
        holder = self.server.holder
        if holder.fleet is None or waiting(holder.fleet):
            self._waiting()
            return
        ok, text = health(holder.fleet, holder.delay_s)
        code = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        self._send(code, text.encode(), "text/plain; charset=utf-8")


class Server(servenet.Server):
    """The HTTP(S) server of the pages (servenet's connections), with the latest tick's
    reports (holder) and the users (auth)."""

    def __init__(
        self,
        address: tuple[str, int],
        holder: Holder,
        auth: BasicAuth,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.holder = holder
        self.auth = auth
        super().__init__(address, Handler, tls)


def web_settings(args: argparse.Namespace) -> tuple[BasicAuth, ssl.SSLContext | None]:
    """The --web-config-file's users and TLS context, the exposure checked (at start, and
    at SIGHUP: a renewed certificate or a changed user taken without a restart)."""
    host = parse_listen(args.listen)[0]
    path = args.web_config_file
    web = read_web_config(path) if path else WebConfig()
    check_exposure(host, web, args.insecure_listen)
    return BasicAuth(web.users), ssl_context(web, path) if web.tls else None


def make_server(args: argparse.Namespace, holder: Holder) -> Server:
    """The listening server, with the exposure checked (bound now: a busy port is an error
    before any host is contacted)."""
    host, port = parse_listen(args.listen)
    auth, tls = web_settings(args)
    try:
        return Server((host, port), holder, auth, tls)
    except OSError as exc:
        raise OptionError(f"--listen {args.listen}: cannot listen: {exc.strerror}") from None
