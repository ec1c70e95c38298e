"""A widget frame that is not valid UTF-8 closes the socket with 1007 (RFC 6455 §7.4.1: invalid payload data).

Against the real server: a text frame (validated by the websocket layer) and a binary frame (decoded by the
webchat channel) both carry bytes that are not UTF-8; neither is answered with U+FFFD-mangled content.
"""

from __future__ import annotations

import pytest

from tests.servers.app import LiveServer
from tests.webchat_client import webchat_inbox, widget

INVALID = [
    b'{"type":"message","client_id":"c1","body":"\xff\xfe"}',  # bytes that never occur in UTF-8
    b'{"type":"message","client_id":"c2","body":"\xed\xa0\x80"}',  # an encoded surrogate
    b'{"type":"message","client_id":"c3","body":"\xc3"}',  # a truncated sequence
]


# Text frames are decoded by wsproto under uvicorn: its ParseFailed(1007) reaches `inbox.realtime.wsserver`'s
# LeanWSProtocol as a CloseConnection the peer never sent, which answers it with a close frame and closes.


@pytest.mark.parametrize("payload", INVALID)
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
async def test_a_frame_that_is_not_utf8_closes_with_1007(server: LiveServer, payload: bytes, text: bool) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.connection.send(payload, text=text)
        assert await socket.closed() == 1007


async def test_a_hello_that_is_not_utf8_closes_with_1007(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key) as socket:
        await socket.connection.send(b'{"type":"hello","visitor_token":"\xff"}', text=False)
        assert await socket.closed() == 1007
