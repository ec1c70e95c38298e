"""The widget's documents over HTTP: the loader script, the iframe page and the files of a thread.

Files are reachable only through links the channel signed for a visitor who may see them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from channels.base import Host, InboxInfo
from channels.webchat import protocol
from channels.webchat.connection import http_error, own_origin
from channels.webchat.frame import frame_config, frame_headers, loader_script, render_frame
from channels.webchat.settings import WebchatSettings, WidgetSettings

CHANNEL = "webchat"


async def find_inbox(host: Host, public_key: str | None) -> InboxInfo | None:
    """The webchat inbox with this public key, or None."""
    if not public_key:
        return None
    for inbox in await host.inboxes(CHANNEL):
        if inbox.public_key == public_key:
            return inbox
    return None


class WidgetDocuments:
    """`GET /widget.js`, `GET /widget/frame?key=`, `GET /widget/files/<signed link>`."""

    def __init__(self, host: Host, settings: WebchatSettings) -> None:
        self.host = host
        self.settings = settings
        self.assets = Path(settings.assets)
        self.routes: list[BaseRoute] = [
            Route("/widget.js", self.loader, methods=["GET"]),
            Route("/widget/frame", self.frame, methods=["GET"]),
            Route("/widget/files/{token}", self.file, methods=["GET"]),
        ]

    async def loader(self, request: Request) -> Response:
        return Response(
            await asyncio.to_thread(loader_script, self.assets),
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=300", "x-content-type-options": "nosniff"},
        )

    async def frame(self, request: Request) -> Response:
        inbox = await find_inbox(self.host, request.query_params.get("key"))
        if inbox is None:
            return Response("No chat widget has this key.", status_code=404, media_type="text/plain")
        config = frame_config(inbox, self.settings, request.query_params.get("locale", ""))
        headers = frame_headers(WidgetSettings.of(inbox.settings), own_origin(request))
        return HTMLResponse(await asyncio.to_thread(render_frame, self.assets, config), headers=headers)

    async def file(self, request: Request) -> Response:
        found = protocol.unsign(self.settings.token_key, request.path_params["token"], "file")
        item = None
        if found is not None:
            item = await self.host.attachment(int(found["i"]), int(found["m"]), int(found["n"]))
        if item is None or not await asyncio.to_thread(os.path.exists, item.path):
            return http_error(404, "not_found", "file not found")
        return FileResponse(
            item.path,
            media_type=item.content_type,
            filename=item.filename,
            content_disposition_type="attachment",
            headers={
                "x-content-type-options": "nosniff",
                "content-security-policy": "default-src 'none'; sandbox",
                "cache-control": "private, max-age=86400",
            },
        )
