"""The widget's HTTP side against the real server: loader, frame page, uploads, signed file links, /demo."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import httpx

from inbox.store.models import Inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.webchat_client import webchat_inbox, widget

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def welcome_of(server: LiveServer, inbox: Inbox) -> dict[str, object]:
    async with widget(server, inbox.public_key, hello={}) as socket:
        return await socket.expect_type("welcome")


async def test_loader_is_javascript_for_any_site(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "Switchboard" in response.text and "data-key" in response.text


async def test_frame_embeds_inbox_settings_safely_and_limits_who_may_frame_it(server: LiveServer) -> None:
    inbox = await webchat_inbox(
        server, color="#ff0066", prechat="required", allowed_origins=["https://shop.example"], greeting="</script><b>"
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/widget/frame", params={"key": inbox.public_key, "locale": "ru"})
        missing = await http.get("/widget/frame", params={"key": "nope"})
        open_inbox = await webchat_inbox(server, color="not-a-colour")
        permissive = await http.get("/widget/frame", params={"key": open_inbox.public_key})
    assert response.status_code == 200 and missing.status_code == 404
    assert "</script><b>" not in response.text  # the greeting cannot close the config element
    raw = re.search(r'<script type="application/json" id="sb-config">(.*?)</script>', response.text, re.S)
    assert raw is not None
    config = json.loads(raw.group(1))
    assert config["key"] == inbox.public_key and config["color"] == "#ff0066" and config["prechat"] == "required"
    assert config["greeting"] == "</script><b>" and config["locale"] == "ru"
    assert "frame-ancestors 'self' https://shop.example" in response.headers["content-security-policy"]
    assert "frame-ancestors *" in permissive.headers["content-security-policy"]
    assert (
        json.loads(
            re.search(r'id="sb-config">(.*?)</script>', permissive.text, re.S).group(1)  # type: ignore[union-attr]
        )["color"]
        == "#2563eb"
    )


async def test_upload_stores_a_message_with_the_file_behind_a_signed_link(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key, hello={}) as socket:
        welcome = await socket.expect_type("welcome")
        headers = {"Authorization": f"Bearer {welcome['upload_token']}"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            files = {"file": ("../../etc/<img src=x onerror=alert(1)>.png", PNG, "image/png")}
            response = await http.post(
                "/widget/upload",
                params={"key": inbox.public_key},
                headers=headers,
                files=files,
                data={"client_id": "u-1", "body": "see attached"},
            )
            assert response.status_code == 201, response.text
            message = response.json()["message"]
            pushed = await socket.expect_type("message")  # the visitor's other tabs see it too
            assert pushed["message"]["id"] == message["id"]
            again = await http.post(
                "/widget/upload",
                params={"key": inbox.public_key},
                headers=headers,
                files=files,
                data={"client_id": "u-1"},
            )
            assert again.json()["message"]["id"] == message["id"]  # idempotent on client_id
            attachment = message["attachments"][0]
            assert attachment["filename"] == "<img src=x onerror=alert(1)>.png" and attachment["size"] == len(PNG)
            download = await http.get(attachment["url"])
            forged = await http.get(attachment["url"][:-3] + "AAA")
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert forged.status_code == 404


async def test_upload_refuses_bad_tokens_sizes_and_types(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    welcome = await welcome_of(server, inbox)
    headers = {"Authorization": f"Bearer {welcome['upload_token']}"}
    limit = server.state.channels["webchat"].settings.max_attachment_bytes
    cases = [
        ({}, ("a.png", PNG, "image/png"), 401),
        ({"Authorization": "Bearer " + str(welcome["visitor_token"])}, ("a.png", PNG, "image/png"), 401),
        (headers, ("big.png", PNG + b"\x00" * limit, "image/png"), 413),
        (headers, ("page.html", b"<script>alert(1)</script>", "text/html"), 415),
        (headers, ("fake.png", b"<svg onload=alert(1)>", "image/png"), 415),
        (headers, ("empty.txt", b"", "text/plain"), 422),
    ]
    async with httpx.AsyncClient(base_url=server.url) as http:
        for request_headers, file, status in cases:
            response = await http.post(
                "/widget/upload",
                params={"key": inbox.public_key},
                headers=request_headers,
                files={"file": file},
                data={"client_id": "u-x"},
            )
            assert response.status_code == status, (file[0], response.text)
            assert response.json()["error"]["code"]
    again = await welcome_of(server, inbox)
    assert again["messages"] == []


async def test_demo_page_embeds_the_first_webchat_inbox_creating_one(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        first = await http.get("/demo")
        second = await http.get("/demo")
    assert first.status_code == 200
    keys = re.findall(r'<script src="/widget.js" data-key="([^"]+)"', first.text)
    assert len(keys) == 1 and keys == re.findall(r'<script src="/widget.js" data-key="([^"]+)"', second.text)
    async with widget(server, keys[0], hello={}) as socket:
        await socket.expect_type("welcome")


async def test_demo_page_exists_only_in_development_mode(db_url: str, tmp_path: Path) -> None:
    config = make_config(db_url, tmp_path)
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, development=False))
    async with live_server(config) as production, httpx.AsyncClient(base_url=production.url) as http:
        assert (await http.get("/demo")).status_code == 404
        assert (await http.get("/widget.js")).status_code == 200  # the widget itself is always served
