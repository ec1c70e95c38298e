"""Browser fixtures for the widget tests: Playwright driving Debian's Chromium, and a host page served from
another origin than the Switchboard server (as a customer's website would be).

Chromium comes from `apt-get install chromium` (never `playwright install`). Without it the browser tests skip
with a printed reason, except in CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.chromium import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """A headless Chromium for one test."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def artifact(name: str) -> str:
    """Where a screenshot goes (test-artifacts/ is gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)


@contextlib.contextmanager
def host_site(html: str) -> Iterator[str]:
    """Serve `html` at `/` from its own port on 127.0.0.1 — another origin than the server; yields its URL."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path in ("/", "/index.html") else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def shop_page(server_url: str, key: str, *, extra: str = "", strict_csp: bool = False) -> str:
    """A customer's page whose own CSS tries hard to restyle everything (the widget must not care); with
    `strict_csp`, a Content-Security-Policy that allows only the Switchboard origin and no inline style."""
    csp = (
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; script-src {server_url}; '
        f"frame-src {server_url}; style-src 'none'\">"
        if strict_csp
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8">{csp}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme shop</title>
<style>* {{ font-family: serif !important; color: red !important; }} button {{ display: none !important; }}</style>
</head><body><h1>Acme shop</h1><p>Buy our widgets.</p>
<script src="{server_url}/widget.js" data-key="{key}" async></script>{extra}
</body></html>"""
