"""An HTTP sink in the test's own process, for the exports' requests: it answers 204 to
any PUT or POST and notes each one's method and path as they reached it (conftest's
`capture` fixture)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

#: Each request got: (method, path with its query).
Seen = list[tuple[str, str]]


class _Capture(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def capturing() -> Iterator[tuple[str, Seen]]:
    """A sink on a free port of 127.0.0.1: its URL and the requests it got."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    seen: Seen = []
    server.seen = seen  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
