"""Widget security (DESIGN §6) against the real server: tokens, identity verification, Origin, rate and size
limits, and frames the server refuses without losing the socket."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.webchat.protocol import identity_hash
from inbox.config import WebchatConfig
from tests.servers.app import LiveServer, live_server, make_config
from tests.webchat_client import webchat_inbox, widget


@pytest.fixture
async def limited(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app with small webchat limits."""
    config = make_config(
        db_url,
        tmp_path,
        webchat=WebchatConfig(
            visitor_messages_per_minute=3,
            ip_messages_per_minute=100,
            max_frame_bytes=4096,
            max_message_chars=100,
            hello_timeout_seconds=0.3,
        ),
    )
    async with live_server(config) as running:
        yield running


def tamper(token: str) -> str:
    body, mac = token.split(".")
    return f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"


async def test_forged_or_foreign_visitor_token_is_refused(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    other = await webchat_inbox(server)
    async with widget(server, inbox.public_key, hello={}) as socket:
        token = (await socket.expect_type("welcome"))["visitor_token"]
    for bad in (tamper(token), "not-a-token", token + "x"):
        async with widget(server, inbox.public_key, hello={"visitor_token": bad}) as socket:
            error = await socket.expect_type("error")
            assert error["code"] == "invalid_token"
            assert await socket.closed() == 4401
    # A genuine token of another inbox does not open this one.
    async with widget(server, other.public_key, hello={"visitor_token": token}) as socket:
        assert (await socket.expect_type("error"))["code"] == "invalid_token"
        assert await socket.closed() == 4401


async def test_unknown_key_is_refused(server: LiveServer) -> None:
    async with widget(server, "no-such-key", hello={}) as socket:
        assert (await socket.expect_type("error"))["code"] == "unknown_key"
        assert await socket.closed() == 4404


async def test_identity_hash_missing_or_forged_is_refused_when_enforced(server: LiveServer) -> None:
    inbox = await webchat_inbox(server, require_identity_verification=True)
    good = identity_hash(inbox.secret, "user-42")
    for identity in ({"id": "user-42"}, {"id": "user-42", "hash": "0" * 64}, {"id": "user-43", "hash": good}):
        async with widget(server, inbox.public_key, hello={"identity": identity}) as socket:
            error = await socket.expect_type("error")
            assert error["code"] == "identity_unverified", identity
            assert await socket.closed() == 4403
    async with widget(server, inbox.public_key, hello={"identity": {"id": "user-42", "hash": good}}) as socket:
        welcome = await socket.expect_type("welcome")
    assert welcome["verified"] is True


async def test_unverified_visitor_never_reads_a_verified_contacts_history(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)  # enforcement off: unverified claims are allowed, but isolated
    verified = {"id": "user-7", "name": "Vera", "hash": identity_hash(inbox.secret, "user-7")}
    async with widget(server, inbox.public_key, hello={"identity": verified}) as socket:
        welcome = await socket.expect_type("welcome")
        assert welcome["verified"] is True
        await socket.send({"type": "message", "client_id": "secret-1", "body": "my order 555 to 1 Main St"})
        await socket.expect_type("ack")
    # The same user on another browser, verified again: the history follows the person.
    async with widget(server, inbox.public_key, hello={"identity": verified}) as socket:
        again = await socket.expect_type("welcome")
    assert [m["body"] for m in again["messages"]] == ["my order 555 to 1 Main St"]
    for claim in ({"id": "user-7"}, {"id": "user-7", "hash": None}, {"id": "user-7", "hash": "f" * 64}):
        async with widget(server, inbox.public_key, hello={"identity": claim}) as socket:
            impostor = await socket.expect_type("welcome")
        assert impostor["verified"] is False and impostor["messages"] == []


async def test_foreign_origin_is_refused(server: LiveServer) -> None:
    inbox = await webchat_inbox(server, allowed_origins=["https://shop.example"])
    async with widget(server, inbox.public_key, origin="https://evil.example", hello={}) as socket:
        assert (await socket.expect_type("error"))["code"] == "origin_refused"
        assert await socket.closed() == 4403
    for origin in ("https://shop.example", server.url):  # the listed site, and the widget's own frame
        async with widget(server, inbox.public_key, origin=origin, hello={}) as socket:
            assert (await socket.expect_type("welcome"))["visitor_token"]
    open_inbox = await webchat_inbox(server)  # no list: any site
    async with widget(server, open_inbox.public_key, origin="https://anyone.example", hello={}) as socket:
        await socket.expect_type("welcome")


async def test_frame_before_hello_is_refused(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key) as socket:
        await socket.send({"type": "message", "client_id": "c-1", "body": "hi"})
        assert (await socket.expect_type("error"))["code"] == "hello_required"
        assert await socket.closed() == 4400


async def test_a_socket_that_never_says_hello_is_closed(limited: LiveServer) -> None:
    inbox = await webchat_inbox(limited)
    async with widget(limited, inbox.public_key) as socket:
        assert (await socket.expect_type("error"))["code"] == "hello_required"
        assert await socket.closed() == 4400


async def test_flood_is_throttled_with_an_error_frame_and_nothing_is_lost(limited: LiveServer) -> None:
    inbox = await webchat_inbox(limited)
    async with widget(limited, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        for index in range(3):
            await socket.send({"type": "message", "client_id": f"c-{index}", "body": f"message {index}"})
            await socket.expect_type("ack")
        await socket.send({"type": "message", "client_id": "c-3", "body": "one too many"})
        error = await socket.expect_type("error")
        assert error["code"] == "rate_limited" and error["client_id"] == "c-3" and error["retry_after"] > 0
        await socket.send({"type": "ping"})  # the socket stays open
        await socket.expect_type("pong")
        token = socket.frames[0]["visitor_token"]
    # The throttled message was not stored (the widget keeps it queued and resends it after retry_after).
    async with widget(limited, inbox.public_key, hello={"visitor_token": token}) as socket:
        history = await socket.expect_type("welcome")
    assert [m["client_id"] for m in history["messages"]] == ["c-0", "c-1", "c-2"]


async def test_per_ip_limit_applies_across_visitors(db_url: str, tmp_path: Path) -> None:
    config = make_config(db_url, tmp_path)
    config = dataclasses.replace(
        config, webchat=WebchatConfig(visitor_messages_per_minute=100, ip_messages_per_minute=2)
    )
    async with live_server(config) as server:
        inbox = await webchat_inbox(server)
        codes = []
        for visitor in range(3):
            async with widget(server, inbox.public_key, hello={}) as socket:
                await socket.expect_type("welcome")
                await socket.send({"type": "message", "client_id": f"c-{visitor}", "body": "hi"})
                codes.append((await socket.expect(lambda f: f["type"] in ("ack", "error")))["type"])
    assert codes == ["ack", "ack", "error"]


async def test_oversized_frame_closes_with_1009(limited: LiveServer) -> None:
    inbox = await webchat_inbox(limited)
    async with widget(limited, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "message", "client_id": "c-1", "body": "x" * 5000})
        assert (await socket.expect_type("error"))["code"] == "too_large"
        assert await socket.closed() == 1009


async def test_too_long_unknown_and_malformed_frames_get_errors_and_the_socket_stays(limited: LiveServer) -> None:
    inbox = await webchat_inbox(limited)
    async with widget(limited, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "message", "client_id": "c-1", "body": "x" * 101})
        too_long = await socket.expect_type("error")
        assert too_long["code"] == "too_long" and too_long["client_id"] == "c-1"
        await socket.send({"type": "launch_missiles"})
        assert (await socket.expect_type("error"))["code"] == "unknown_type"
        await socket.connection.send("{not json")
        assert (await socket.expect_type("error"))["code"] == "malformed"
        await socket.send({"type": "message", "client_id": "", "body": "hi"})
        assert (await socket.expect_type("error"))["code"] == "invalid"
        await socket.send({"type": "hello", "visitor_token": None, "after": None, "identity": None})
        assert (await socket.expect_type("error"))["code"] == "unexpected"
        await socket.send({"type": "message", "client_id": "c-2", "body": "still here"})
        assert (await socket.expect_type("ack"))["message"]["body"] == "still here"
