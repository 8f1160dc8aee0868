"""Serve the chat widget (widget/dist/widget.js) and a demo page that embeds it.

A separate small HTTP server, so the page has a short address of its own (`make run` prints it)
while the widget talks to Rasa's socket.io channel on Rasa's port.
"""

from __future__ import annotations

import html
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widget"
BUNDLE = WIDGET_DIR / "dist" / "widget.js"
DEMO_PAGE = WIDGET_DIR / "demo" / "index.html"


class WidgetBundleMissing(RuntimeError):
    """The bundle was never built (it is built by `make setup`, not committed)."""


def make_server(rasa_url: str, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server for `/` (the demo page, pointed at `rasa_url`) and `/widget.js`."""
    if not BUNDLE.is_file():
        raise WidgetBundleMissing(
            f"{BUNDLE} is missing: build it with `make setup` (or `npm ci && npm run build` in {WIDGET_DIR})"
        )
    bundle = BUNDLE.read_bytes()
    page = DEMO_PAGE.read_text(encoding="utf-8")
    rasa_url = rasa_url.rstrip("/")
    rasa_origin = urlsplit(rasa_url)
    socket_origin = f"{'wss' if rasa_origin.scheme == 'https' else 'ws'}://{rasa_origin.netloc}"
    # The page runs our bundle and nothing else: no inline or third-party scripts, ever.
    policy = (
        f"default-src 'self'; script-src 'self'; connect-src 'self' {rasa_url} {socket_origin}; "
        "img-src 'self' https: http: data:; style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                widget_url = f"http://{self.headers.get('Host', f'localhost:{port}')}/widget.js"
                body = (
                    page.replace("__RASA_URL__", html.escape(rasa_url)).replace(
                        "__WIDGET_URL__", html.escape(widget_url)
                    )
                ).encode()
                self._send(body, "text/html; charset=utf-8", {"Content-Security-Policy": policy})
            elif path == "/widget.js":
                self._send(bundle, "application/javascript; charset=utf-8")
            else:
                self._send(b"Not found\n", "text/plain; charset=utf-8", status=HTTPStatus.NOT_FOUND)

        def _send(
            self, body: bytes, content_type: str, headers: Optional[Dict[str, str]] = None, status: int = HTTPStatus.OK
        ) -> None:
            self.send_response(status)
            for name, value in {
                "Content-Type": content_type,
                "Content-Length": str(len(body)),
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                **(headers or {}),
            }.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet unless debugging
            logger.debug("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)
