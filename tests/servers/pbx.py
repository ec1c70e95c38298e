"""A small PBX simulator on loopback for the phone tests: it places calls by POSTing signed call events to the
app under test, serves its call recordings over HTTP, and records the click-to-call dial requests it receives.

The signature is written out here independently of the adapter's code: `sha256=` + hex HMAC-SHA256 of
`<unix seconds>.<raw body>` with the inbox's signing secret, in `X-Switchboard-Signature`, and the same unix
seconds in `X-Switchboard-Timestamp`. Scenarios: `answered_call` (ring → answer → hangup), `missed_call`
(ring → hangup, no answer), `voicemail` (ring → machine → hangup with a recording served from here).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.servers.asgi import serve

LINE = "+4930555000"  # the company's number the customers call
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


@dataclass
class Posted:
    event: dict[str, Any]
    status: int
    body: dict[str, Any]


@dataclass
class FakePbx:
    secret: str
    target: str = ""  # the app's events URL, e.g. http://127.0.0.1:PORT/channels/phone/7
    url: str = ""  # where this PBX serves recordings and takes dial requests
    recordings: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    recording_downloads: list[str] = field(default_factory=list)
    dials: list[dict[str, str]] = field(default_factory=list)  # the query of each dial request
    dial_status: int = 200
    posted: list[Posted] = field(default_factory=list)

    # ── what tests do ──
    def add_recording(self, name: str, data: bytes, content_type: str = "audio/mpeg") -> str:
        self.recordings[name] = (data, content_type)
        return f"{self.url}/recordings/{name}"

    @property
    def dial_template(self) -> str:
        return f"{self.url}/dial?from={{agent_extension}}&to={{number}}"

    async def post(
        self,
        event: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        """POST one event, signed now with the inbox's secret unless told otherwise (to test refusals);
        `body` sends those bytes instead of the event's JSON, `headers` override ("" drops one)."""
        body = json.dumps(event, separators=(",", ":")).encode() if body is None else body
        stamp = int(time.time()) if timestamp is None else timestamp
        sent = {
            "content-type": "application/json",
            "x-switchboard-timestamp": str(stamp),
            "x-switchboard-signature": signature if signature is not None else self.sign(body, stamp, secret),
        }
        if headers is not None:
            sent = {**sent, **headers}
            sent = {key: value for key, value in sent.items() if value}  # "" drops a header
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(self.target, content=body, headers=sent)
        try:
            answer = response.json()
        except ValueError:  # not ours: e.g. the router's plain 404 for a path that does not match
            answer = {"error": response.text}
        self.posted.append(Posted(event, response.status_code, answer))
        return response

    def sign(self, body: bytes, timestamp: int, secret: str | None = None) -> str:
        """`X-Switchboard-Signature` for `body` signed at `timestamp` (unix seconds)."""
        signed = str(timestamp).encode() + b"." + body
        return "sha256=" + hmac.new((secret or self.secret).encode(), signed, hashlib.sha256).hexdigest()

    async def play(self, events: list[dict[str, Any]]) -> list[str]:
        """POST events in order; answers each one's outcome (or the HTTP status when it was refused)."""
        outcomes = []
        for event in events:
            response = await self.post(event)
            outcomes.append(response.json()["outcome"] if response.status_code == 200 else str(response.status_code))
        return outcomes

    # ── scenarios: the events a PBX sends for one call ──
    @staticmethod
    def answered_call(call_id: str, customer: str, agent: str, seconds: int) -> list[dict[str, Any]]:
        base = {"call_id": call_id, "direction": "inbound", "from": customer, "to": LINE}
        answered = T0 + timedelta(seconds=8)
        return [
            {**base, "type": "call.ringing", "at": _iso(T0)},
            {**base, "type": "call.answered", "at": _iso(answered), "agent": agent},
            {  # like many PBXs, the hangup does not repeat who answered
                **base,
                "type": "call.ended",
                "at": _iso(answered + timedelta(seconds=seconds)),
                "cause": "answered",
                "started_at": _iso(T0),
                "answered_at": _iso(answered),
            },
        ]

    @staticmethod
    def missed_call(call_id: str, customer: str) -> list[dict[str, Any]]:
        base = {"call_id": call_id, "direction": "inbound", "from": customer, "to": LINE}
        return [
            {**base, "type": "call.ringing", "at": _iso(T0)},
            {**base, "type": "call.ended", "at": _iso(T0 + timedelta(seconds=30)), "cause": "no_answer"},
        ]

    def voicemail(self, call_id: str, customer: str, audio: bytes, seconds: int) -> list[dict[str, Any]]:
        base = {"call_id": call_id, "direction": "inbound", "from": customer, "to": LINE}
        recording = self.add_recording(f"{call_id}.mp3", audio)
        return [
            {**base, "type": "call.ringing", "at": _iso(T0)},
            {
                **base,
                "type": "call.ended",
                "at": _iso(T0 + timedelta(seconds=25 + seconds)),
                "cause": "voicemail",
                "duration": seconds,
                "recording_url": recording,
            },
        ]

    # ── the PBX's own HTTP side ──
    async def recording(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.recordings:
            return PlainTextResponse("not found", status_code=404)
        self.recording_downloads.append(name)
        data, content_type = self.recordings[name]
        return Response(data, media_type=content_type)

    async def dial(self, request: Request) -> Response:
        self.dials.append(dict(request.query_params))
        return PlainTextResponse("dialling" if self.dial_status < 400 else "refused", status_code=self.dial_status)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def pbx_server(secret: str, target: str = "") -> AsyncIterator[FakePbx]:
    """The PBX simulator on a free loopback port; set `target` to the app's events URL before posting."""
    pbx = FakePbx(secret, target)
    app = Starlette(
        routes=[
            Route("/recordings/{name}", pbx.recording, methods=["GET"]),
            Route("/dial", pbx.dial, methods=["GET"]),
        ]
    )
    async with serve(app) as url:
        pbx.url = url
        yield pbx
