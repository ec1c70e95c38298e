"""The widget's two documents: the loader script and the iframe page, rendered from files under `web/`.

Pure functions of the inbox settings (plus small file reads): the frame's configuration is embedded as
JSON that cannot break out of its script element, and its Content-Security-Policy lets only the inbox's
allowed origins embed it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from channels.base import InboxInfo
from channels.webchat.settings import WebchatSettings, WidgetSettings

LOCALES = ("en", "ru")


def frame_config(inbox: InboxInfo, settings: WebchatSettings, locale: str) -> dict[str, Any]:
    """What the iframe app needs to start: its key, the inbox's look and rules, and the limits."""
    widget = WidgetSettings.of(inbox.settings)
    return {
        "key": inbox.public_key,
        "inbox_name": inbox.name,
        "color": widget.color,
        "greeting": widget.greeting,
        "position": widget.position,
        "prechat": str(widget.prechat),
        "reply_time": str(widget.reply_time),
        "locale": locale if locale in LOCALES else widget.locale,
        "limits": {
            "max_message_chars": settings.max_message_chars,
            "max_attachment_bytes": settings.max_attachment_bytes,
            "attachment_types": list(settings.attachment_types),
        },
    }


def embed_json(data: Any) -> str:
    """JSON safe inside `<script type="application/json">`: no `<`, `>` or `&` can close the element."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_frame(assets: Path, config: dict[str, Any]) -> str:
    template = (assets / "widget" / "frame.html").read_text(encoding="utf-8")
    return template.replace("{{CONFIG}}", embed_json(config)).replace("{{LANG}}", config["locale"] or "en")


def frame_headers(widget: WidgetSettings, own_origin: str) -> dict[str, str]:
    """CSP for the iframe page: who may embed it, and that it talks only to this server."""
    ancestors = " ".join(("'self'", *widget.allowed_origins)) if widget.allowed_origins else "*"
    socket = own_origin.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    policy = (
        f"default-src 'self'; img-src 'self' blob: data:; connect-src 'self' {socket}; "
        f"style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )
    return {
        "content-security-policy": policy,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }


def loader_script(assets: Path) -> str:
    return (assets / "static" / "widget" / "loader.js").read_text(encoding="utf-8")
