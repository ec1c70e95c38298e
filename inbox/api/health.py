"""HTTP API: channel health — per inbox, last successful fetch and send, last error, backlog.

Admins see every inbox; agents see the inboxes they belong to (the inbox page shows a banner from this).

Channels that keep health implement `channels.base.HealthReporting` (email and Telegram do); the same records
feed `/metrics`. An inbox counts as failing once its current run of failures is older than `FAILING_AFTER`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from channels.base import HealthReporting
from inbox.http.routing import Api, caller, json
from inbox.http.services import services
from inbox.read import access

api = Api()
FAILING_AFTER = 300.0  # seconds of continuous failure before an inbox is flagged (the banner's threshold)


@api.route("GET", "/api/v1/channels/health", summary="Health of the channels of the inboxes you see", tag="channels")
async def channel_health(request: Request) -> Response:
    me = (await caller(request)).agent
    visible = await access.inbox_ids(services(request).store, me)
    now = time.time()
    items: list[dict[str, Any]] = []
    for name, channel in services(request).channels.items():
        if not isinstance(channel, HealthReporting):
            continue
        for row in channel.health():
            if visible is not None and row.inbox_id not in visible:
                continue
            since = row.failing_since
            items.append(
                {
                    "channel": name,
                    **dataclasses.asdict(row),
                    "failing": since is not None and now - since >= FAILING_AFTER,
                }
            )
    return json({"items": items, "failing_after_seconds": FAILING_AFTER})
