"""`WhatsAppChannel` over real HTTP: signed webhooks into its routes under uvicorn, the fake Graph API on
loopback for sends, media and templates, and a Host double that stores once per (inbox, wamid)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from channels.base import DeliveryError, Identity, IdentityKind, Outbound, OutboundAttachment, ThreadMessage
from tests.servers.whatsapp import FakeGraph, post_signed
from tests.whatsapp.conftest import APP_SECRET, CAROL, INBOX, VERIFY_TOKEN, Host, World, notification

MEDIA = {
    "image": ("1003383421387256", b"\xff\xd8\xff jpeg bytes", "image/jpeg"),
    "voice": ("1003383421387257", b"OggS voice", "audio/ogg; codecs=opus"),
    "audio": ("1003383421387258", b"ID3 mp3", "audio/mpeg"),
    "video": ("1003383421387259", b"\x00\x00\x00 ftypmp4", "video/mp4"),
    "document": ("1003383421387260", b"%PDF-1.4 invoice", "application/pdf"),
    "sticker": ("1003383421387261", b"RIFF webp", "image/webp"),
}
TEXT_ONLY = ["text", "location", "contacts", "reaction", "reply", "button", "unsupported"]


async def eventually(check: object, wait: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + wait
    while not callable(check) or not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {wait}s")
        await asyncio.sleep(0.02)


def outbound(text: str = "On it", **metadata: object) -> Outbound:
    return Outbound(
        inbox=INBOX,
        message_id=1,
        conversation_id=2,
        delivery_id="delivery-1",
        thread_key=CAROL,
        recipient=Identity(IdentityKind.PHONE, CAROL),
        text=text,
        agent_name="Ann",
        metadata=metadata,
    )


# ── receiving ──
async def test_handshake_echoes_the_challenge_only_for_our_verify_token(world: World) -> None:
    async with httpx.AsyncClient() as http:
        params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
        ok = await http.get(world.url, params=params)
        assert ok.status_code == 200 and ok.text == "1158201444"
        wrong = await http.get(world.url, params={**params, "hub.verify_token": "guess"})
        assert wrong.status_code == 403
        unknown = await http.get(f"{world.base}/8", params=params)
        assert unknown.status_code == 404


async def test_every_kind_of_message_is_delivered_with_its_media(world: World) -> None:
    for media_id, data, mime_type in MEDIA.values():
        world.graph.add_media(media_id, data, mime_type)
    for name in [*MEDIA, *TEXT_ONLY]:
        response = await post_signed(world.url, notification(name), APP_SECRET)
        assert response.status_code == 200, (name, response.text)
        assert response.json() == {"ok": True, "delivered": 1, "duplicates": 0, "statuses": 0}
    stored = world.host.messages
    assert len(stored) == len(MEDIA) + len(TEXT_ONLY)
    by_kind = {m.metadata["whatsapp"].get("kind", m.metadata["whatsapp"]["type"]): m for m in stored}
    for kind, (_, data, mime_type) in MEDIA.items():
        (attachment,) = by_kind[kind].attachments
        assert attachment.data == data and attachment.content_type == mime_type
    assert by_kind["document"].attachments[0].filename == "invoice.pdf"
    assert sorted(world.graph.downloads) == sorted(m[0] for m in MEDIA.values())
    assert all(m.sender == Identity(IdentityKind.PHONE, CAROL, name="Carol Customer") for m in stored)
    assert {m.thread_key for m in stored} == {CAROL}
    reply = next(m for m in stored if m.text == "Yes, that one")
    assert reply.metadata["whatsapp"]["reply_to"] == "wamid.HBgNNDkxNTExMjM0NTY3OBUCABEYEkFHRU5UUkVQTFkwMDAx"
    assert world.host.attributes[CAROL] == {"whatsapp_unreachable": None}


async def test_media_that_cannot_be_fetched_is_noted_in_the_text(world: World) -> None:
    response = await post_signed(world.url, notification("image"), APP_SECRET)  # the fake knows no such media
    assert response.status_code == 200
    (stored,) = world.host.messages
    assert stored.attachments == []
    assert stored.text.startswith("This is what arrived\n[image_") and "could not be downloaded" in stored.text


async def test_bad_signature_is_refused_and_nothing_is_delivered(world: World) -> None:
    wrong = await post_signed(world.url, notification("text"), "not-the-app-secret")
    assert wrong.status_code == 401 and "X-Hub-Signature-256" in wrong.json()["error"]["detail"]
    async with httpx.AsyncClient() as http:
        missing = await http.post(world.url, json=notification("text"))
        assert missing.status_code == 401
        unknown = await http.post(f"{world.base}/8", json=notification("text"))
        assert unknown.status_code == 404
        huge = await http.post(f"{world.base}/{2**70}", json=notification("text"))
        assert huge.status_code == 404
    # Signed, but the body was changed on the way: the signature covers the raw bytes.
    tampered = copy.deepcopy(notification("text"))
    tampered["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "refund me twice"
    from tests.servers.whatsapp import sign

    forged = sign(b'{"object":"whatsapp_business_account"}', APP_SECRET)
    assert (await post_signed(world.url, tampered, APP_SECRET, signature=forged)).status_code == 401
    assert world.host.messages == []


async def test_replayed_webhook_is_stored_once_and_media_fetched_once(world: World) -> None:
    world.graph.add_media(*MEDIA["document"])
    first = await post_signed(world.url, notification("document"), APP_SECRET)
    replay = await post_signed(world.url, notification("document"), APP_SECRET)
    assert first.json()["delivered"] == 1
    assert replay.status_code == 200 and replay.json()["duplicates"] == 1 and replay.json()["delivered"] == 0
    assert len(world.host.messages) == 1
    assert world.graph.downloads == [MEDIA["document"][0]]


async def test_overloaded_core_answers_503_with_retry_after(world: World) -> None:
    world.host.busy = 2.5
    response = await post_signed(world.url, notification("text"), APP_SECRET)
    assert response.status_code == 503 and response.headers["retry-after"] == "3"
    world.host.busy = None
    assert (await post_signed(world.url, notification("text"), APP_SECRET)).status_code == 200
    assert len(world.host.messages) == 1


# ── receipts ──
async def test_out_of_order_receipts_end_at_the_furthest_status(world: World) -> None:
    world.host.outgoing.update({"wamid.OUT1": "queued", "wamid.OUT2": "sent"})
    response = await post_signed(world.url, notification("statuses"), APP_SECRET)
    assert response.status_code == 200 and response.json()["statuses"] == 2
    assert world.host.outgoing == {"wamid.OUT1": "read", "wamid.OUT2": "failed"}
    assert "24-hour" in world.host.reasons["wamid.OUT2"]
    # A late "delivered" for OUT1 in a later webhook does not move it back.
    late = notification("statuses")
    late["entry"][0]["changes"][0]["value"]["statuses"] = [
        {"id": "wamid.OUT1", "status": "delivered", "timestamp": "1763800200", "recipient_id": "4915112345678"}
    ]
    assert (await post_signed(world.url, late, APP_SECRET)).status_code == 200
    assert world.host.outgoing["wamid.OUT1"] == "read"


async def test_a_receipt_that_beats_the_outbox_is_applied_once_the_wamid_is_known(world: World) -> None:
    response = await post_signed(world.url, notification("statuses"), APP_SECRET)
    assert response.status_code == 200 and response.json()["statuses"] == 0
    world.host.outgoing["wamid.OUT1"] = "sent"  # the outbox stores the send's wamid a moment later
    await eventually(lambda: world.host.outgoing["wamid.OUT1"] == "read")


@pytest.mark.parametrize("host", [Host()])  # a host without `StatusRecording`
async def test_without_receipt_support_failures_still_reach_the_host(world: World) -> None:
    world.host.outgoing.update({"wamid.OUT1": "sent", "wamid.OUT2": "sent"})
    assert (await post_signed(world.url, notification("statuses"), APP_SECRET)).status_code == 200
    assert world.host.outgoing == {"wamid.OUT1": "sent", "wamid.OUT2": "failed"}
    assert "131047" in world.host.reasons["wamid.OUT2"]


# ── sending ──
async def test_send_text_returns_the_wamid(world: World) -> None:
    receipt = await world.channel.send(outbound("Sorry! Checking now"))
    (body,) = world.graph.sends
    assert body["to"] == "4915112345678" and body["text"]["body"] == "Sorry! Checking now"
    assert receipt.external_id is not None and receipt.external_id.startswith("wamid.")


async def test_rate_limit_is_retried_after_the_delay_graph_asks_for(world: World) -> None:
    world.graph.fail(400, 130429, "(#130429) Rate limit hit", retry_after="2")
    with pytest.raises(DeliveryError) as caught:
        await world.channel.send(outbound())
    assert caught.value.retry_after == 2.0 and "130429" in caught.value.reason
    world.graph.fail(429, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit")
    with pytest.raises(DeliveryError) as pair:
        await world.channel.send(outbound())
    assert pair.value.retry_after == 6.0
    receipt = await world.channel.send(outbound())  # what the outbox does next
    assert receipt.external_id and len(world.graph.sends) == 1 and world.graph.attempts == 3


async def test_permanent_failures_carry_a_clear_reason(world: World) -> None:
    world.graph.fail(400, 131047, "(#131047) Re-engagement message")
    with pytest.raises(DeliveryError) as window:
        await world.channel.send(outbound())
    assert window.value.retry_after is None and "24-hour" in window.value.reason
    world.graph.fail(400, 131026, "(#131026) Message Undeliverable")
    with pytest.raises(DeliveryError) as undeliverable:
        await world.channel.send(outbound())
    assert undeliverable.value.retry_after is None
    assert world.host.attributes[CAROL]["whatsapp_unreachable"] == undeliverable.value.reason
    assert world.graph.sends == []


async def test_closed_window_is_refused_before_calling_graph_but_templates_go(world: World) -> None:
    old = datetime.now(UTC) - timedelta(hours=30)
    world.host.history = [ThreadMessage(1, 2, "incoming", "hello", "Carol", "wamid.IN", old)]
    with pytest.raises(DeliveryError) as caught:
        await world.channel.send(outbound())
    assert caught.value.retry_after is None and "template" in caught.value.reason
    assert world.graph.attempts == 0
    template = {"name": "order_update", "language": "en_US", "parameters": ["Carol", "#123"]}
    receipt = await world.channel.send(outbound("", whatsapp_template=template))
    assert receipt.external_id and world.graph.sends[0]["template"]["name"] == "order_update"
    world.host.history.append(ThreadMessage(3, 2, "incoming", "back", "Carol", "wamid.IN2", datetime.now(UTC)))
    assert (await world.channel.send(outbound())).external_id


async def test_attachments_are_uploaded_then_sent_and_a_retry_resumes(world: World, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG photo")
    attachments = [OutboundAttachment("photo.png", "image/png", photo.stat().st_size, str(photo))]
    message = dataclasses.replace(outbound("Here is the label"), attachments=attachments)
    # The first attempt: the text is accepted, then the image is refused (transient); the retry resumes.
    world.graph.fail(500, 131000, "(#131000) Something went wrong", after=1)
    with pytest.raises(DeliveryError) as caught:
        await world.channel.send(message)
    assert caught.value.retry_after == 5.0 and [b["type"] for b in world.graph.sends] == ["text"]
    receipt = await world.channel.send(message)
    assert [b["type"] for b in world.graph.sends] == ["text", "image"]
    assert world.graph.uploads == [("photo.png", "image/png", b"\x89PNG photo")]
    assert world.graph.sends[1]["image"] == {"id": next(iter(world.graph.media))}
    assert receipt.external_id == world.host.cursors["whatsapp:delivery:delivery-1:first"]
    # Another attempt of the same delivery sends nothing again and answers the first wamid.
    again = await world.channel.send(message)
    assert again.external_id == receipt.external_id and len(world.graph.sends) == 2


async def test_approved_templates_are_listed_across_pages(world: World, graph: FakeGraph) -> None:
    graph.templates = [
        {
            "name": "welcome",
            "language": "en_US",
            "status": "APPROVED",
            "category": "UTILITY",
            "id": "1",
            "components": [{"type": "BODY", "text": "Welcome {{1}}"}],
        },
        {
            "name": "promo",
            "language": "en_US",
            "status": "PAUSED",
            "category": "MARKETING",
            "id": "2",
            "components": [],
        },
        {
            "name": "order_update",
            "language": "de",
            "status": "APPROVED",
            "category": "UTILITY",
            "id": "3",
            "components": [{"type": "BODY", "text": "Hallo {{1}}, {{2}}"}],
        },
    ]
    templates = await world.channel.templates(INBOX)
    assert [(t.name, t.language, t.parameter_count) for t in templates] == [
        ("order_update", "de", 2),
        ("welcome", "en_US", 1),
    ]
