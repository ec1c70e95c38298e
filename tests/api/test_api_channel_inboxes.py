"""Inboxes of the newer channels (WhatsApp, VK, phone) are created through the API like the others, their
settings checked by the channel itself on save: a missing key is a 422 naming it, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_world import World

WHATSAPP = {
    "phone_number_id": "1234567890",
    "access_token": "env:WA_TOKEN",
    "app_secret": "env:WA_SECRET",
    "verify_token": "v-token",
}
VK = {"group_id": 42, "access_token": "env:VK_TOKEN", "confirmation_code": "abc123", "secret_key": "s3cret"}


@pytest.mark.parametrize(
    ("channel", "settings", "error"),
    [
        ("whatsapp", {}, "settings.phone_number_id"),
        ("whatsapp", {**WHATSAPP, "phone_number_id": "not-a-number"}, "settings.phone_number_id"),
        ("vk", {}, "settings.group_id"),
        ("vk", {**VK, "colour": "red"}, "settings.colour"),
        ("phone", {"dial_url": "ftp://pbx/{number}"}, "settings.dial_url"),
    ],
)
async def test_bad_settings_are_refused_naming_the_key(
    world: World, channel: str, settings: dict[str, Any], error: str
) -> None:
    async with world.client("admin") as http:
        before = (await http.get("/api/v1/inboxes")).json()
        answer = await http.post(
            "/api/v1/inboxes", json={"name": f"New {channel}", "channel": channel, "settings": settings}
        )
        assert answer.status_code == 422, answer.text
        assert error in answer.json()["error"]["detail"]
        assert (await http.get("/api/v1/inboxes")).json() == before


@pytest.mark.parametrize(("channel", "settings"), [("whatsapp", WHATSAPP), ("vk", VK), ("phone", {})])
async def test_good_settings_create_the_inbox(world: World, channel: str, settings: dict[str, Any]) -> None:
    async with world.client("admin") as http:
        answer = await http.post(
            "/api/v1/inboxes", json={"name": f"New {channel}", "channel": channel, "settings": settings}
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["channel"] == channel
