"""`VkChannel` against the fake VK API on loopback, served by uvicorn, with a tiny Host double.

Receive: the confirmation handshake, every inbound kind with its files, edits, allow/deny, our own echo, the
refusals (secret, group, inbox), a retried event stored once (also across a restart), an overloaded or failing
core. Send: text, parts, uploads, the errors VK answers, and a retried reply delivered once by `random_id`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from channels.base import DeliveryError, Identity, IdentityKind, Outbound, OutboundAttachment
from channels.vk.events import action_of, event_key
from channels.vk.outbound import TEXT_LIMIT, random_id
from channels.vk.settings import inbox_settings
from tests.servers.vk import GROUP_ID, TOKEN, FakeVk, post_event, serve
from tests.vk.conftest import CODE, INBOX, HostDouble, Running, make_channel

CAROL = "555000111"
FILES = {
    "photo_w.jpg": b"\xff\xd8 large photo",
    "photo_s.jpg": b"\xff\xd8 small photo",
    "doc/invoice.pdf": b"%PDF-1.4 invoice",
    "voice.ogg": b"OggS voice",
    "sticker_512.png": b"\x89PNG sticker",
}


def add_files(fake: FakeVk) -> None:
    for path, data in FILES.items():
        fake.add_file(path, data)


async def test_confirmation_handshake_answers_the_code(vk: Running) -> None:
    response = await post_event(vk.callback_url(), vk.event("confirmation"))
    assert response.status_code == 200 and response.text == CODE
    assert response.headers["content-type"].startswith("text/plain")
    other_group = await post_event(vk.callback_url(), vk.event("confirmation", group_id=GROUP_ID + 1))
    assert other_group.status_code == 403 and CODE not in other_group.text


# fixture → (stored text, attachments as (filename, content type, bytes))
KINDS: list[tuple[str, str, list[tuple[str, str, bytes]]]] = [
    ("text", "Hi, my order #123 has not arrived", []),
    ("photo", "This is what arrived", [("photo_555000111_12_1.jpg", "image/jpeg", FILES["photo_w.jpg"])]),
    ("doc", "[Document: invoice.pdf]", [("invoice.pdf", "application/pdf", FILES["doc/invoice.pdf"])]),
    ("voice", "[Voice message, 0:07]", [("voice_555000111_15_1.ogg", "audio/ogg", FILES["voice.ogg"])]),
    ("sticker", "[Sticker]", [("sticker_555000111_16_1.png", "image/png", FILES["sticker_512.png"])]),
    ("video_link", "See these\n[Video: unboxing]\n[Link] https://shop.example/orders/123", []),
    ("reply_fwd", "Same as before:\n[Forwarded] Order #123 paid", []),
]


@pytest.mark.parametrize(("name", "text", "files"), KINDS, ids=[case[0] for case in KINDS])
async def test_every_inbound_kind_is_delivered_with_its_files(
    vk: Running, name: str, text: str, files: list[tuple[str, str, bytes]]
) -> None:
    add_files(vk.fake)
    response = await post_event(vk.callback_url(), vk.event(name))
    assert response.status_code == 200 and response.text == "ok"
    (inbound,) = vk.host.stored.values()
    assert inbound.inbox_id == INBOX.id and inbound.thread_key == CAROL
    assert inbound.sender == Identity(IdentityKind.VK, CAROL, name="Carol Customer")
    assert inbound.text == text
    assert [(a.filename, a.content_type, a.data) for a in inbound.attachments] == files
    assert len(vk.fake.downloads) == len(files)
    assert vk.host.attributes == {CAROL: {}}  # writing privately clears vk_unreachable


async def test_sender_name_is_looked_up_once(vk: Running) -> None:
    for name in ("text", "reply_fwd", "geo"):
        assert (await post_event(vk.callback_url(), vk.event(name))).text == "ok"
    assert len(vk.host.stored) == 3
    assert len(vk.fake.called("users.get")) == 1
    assert vk.fake.called("users.get")[0].params["access_token"] == TOKEN


async def test_a_file_vk_refuses_is_noted_in_the_text(vk: Running) -> None:
    # No files added: VK's file server answers 404 (an expired link). Stored anyway, without the file.
    assert (await post_event(vk.callback_url(), vk.event("doc"))).text == "ok"
    (inbound,) = vk.host.stored.values()
    assert inbound.attachments == []
    assert inbound.text == "[Document: invoice.pdf]\n[invoice.pdf could not be downloaded: HTTP 404]"


async def test_a_file_over_the_limit_is_not_downloaded(fake: FakeVk) -> None:
    add_files(fake)
    host = HostDouble({INBOX.id: INBOX})
    channel = make_channel(fake, host, max_file_bytes=10)
    try:
        async with serve(Starlette(routes=list(channel.routes))) as url:
            running = Running(fake, host, channel, url)
            assert (await post_event(running.callback_url(), running.event("doc"))).text == "ok"  # size 16 > 10
            assert (await post_event(running.callback_url(), running.event("sticker"))).text == "ok"  # by its length
    finally:
        await channel.close()
    doc, sticker = host.stored.values()
    assert doc.attachments == [] and "larger than 10 bytes" in doc.text
    assert sticker.attachments == [] and "larger than 10 bytes" in sticker.text
    assert fake.downloads == ["sticker_512.png"]  # the doc's declared size spared its download


async def test_edit_changes_the_stored_message(vk: Running) -> None:
    await post_event(vk.callback_url(), vk.event("text"))
    response = await post_event(vk.callback_url(), vk.event("edit"))
    assert response.text == "ok"
    assert vk.host.texts() == ["Hi, my order #124 has not arrived"]


async def test_edit_of_a_message_never_stored_is_delivered(vk: Running) -> None:
    assert (await post_event(vk.callback_url(), vk.event("edit"))).text == "ok"
    assert vk.host.texts() == ["Hi, my order #124 has not arrived"]


async def test_allow_and_deny_mark_the_contact(vk: Running) -> None:
    assert (await post_event(vk.callback_url(), vk.event("deny"))).text == "ok"
    assert vk.host.attributes[CAROL] == {"vk_unreachable": "the customer turned off messages from the community"}
    assert (await post_event(vk.callback_url(), vk.event("allow"))).text == "ok"
    assert vk.host.attributes[CAROL] == {}
    assert vk.host.stored == {}


@pytest.mark.parametrize("name", ["reply", "edit_own", "from_community", "group_join", "typing", "chat", "empty"])
async def test_events_the_inbox_does_not_take_are_answered_ok(vk: Running, name: str) -> None:
    response = await post_event(vk.callback_url(), vk.event(name))
    assert response.status_code == 200 and response.text == "ok"
    assert vk.host.stored == {} and vk.host.attributes == {}


async def test_wrong_secret_or_group_is_refused_and_nothing_delivered(vk: Running) -> None:
    add_files(vk.fake)
    for changes in ({"secret": "wrongKey42"}, {"secret": ""}, {"group_id": 1}):
        response = await post_event(vk.callback_url(), vk.event("photo", **changes))
        assert response.status_code == 403 and response.text != "ok"
    missing = vk.event("photo")
    del missing["secret"]
    assert (await post_event(vk.callback_url(), missing)).status_code == 403
    assert vk.host.stored == {} and vk.fake.downloads == [] and vk.fake.calls == []


@pytest.mark.parametrize("inbox_id", [999, 8, 0, 2**31, 10**30])
async def test_unknown_inbox_is_404(vk: Running, inbox_id: int) -> None:
    response = await post_event(vk.callback_url(inbox_id), vk.event("text"))
    assert response.status_code == 404
    assert vk.host.stored == {}


async def test_malformed_bodies_are_400(vk: Running) -> None:
    async with httpx.AsyncClient() as client:
        bad_json = await client.post(vk.callback_url(), content=b"{not json")
        no_type = await client.post(vk.callback_url(), json={"group_id": GROUP_ID})
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.text
    assert no_type.status_code == 400


async def test_an_unreadable_event_from_vk_is_skipped_with_ok(vk: Running) -> None:
    event = vk.event("text")
    del event["object"]["message"]["conversation_message_id"]
    response = await post_event(vk.callback_url(), event)
    assert response.status_code == 200 and response.text == "ok"
    assert vk.host.stored == {}


async def test_a_retried_event_is_stored_once(vk: Running) -> None:
    add_files(vk.fake)
    event = vk.event("photo")
    for _ in range(3):
        assert (await post_event(vk.callback_url(), event)).text == "ok"
    # The same message under a new event_id (VK's retry after our answer was lost) is stored once too.
    assert (await post_event(vk.callback_url(), {**event, "event_id": "another-event-id"})).text == "ok"
    assert len(vk.host.stored) == 1
    assert vk.fake.downloads == ["photo_w.jpg"]  # and its file fetched once


async def test_a_retried_event_after_a_restart_downloads_nothing(vk: Running) -> None:
    add_files(vk.fake)
    await post_event(vk.callback_url(), vk.event("doc"))
    restarted = make_channel(vk.fake, vk.host)  # forgets the event ids it saw; the core remembers the message
    try:
        action_event = vk.event("doc")
        settings = inbox_settings(INBOX)
        outcome = await restarted.process(
            INBOX, settings, event_key(action_event), action_of(7, settings, action_event)
        )
    finally:
        await restarted.close()
    assert outcome == "duplicate"
    assert len(vk.host.stored) == 1 and vk.fake.downloads == ["doc/invoice.pdf"]


async def test_overloaded_core_answers_503_with_retry_after_then_stores(vk: Running) -> None:
    vk.host.busy = 2.5
    busy = await post_event(vk.callback_url(), vk.event("text"))
    assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
    vk.host.busy = None
    assert (await post_event(vk.callback_url(), vk.event("text"))).text == "ok"
    assert len(vk.host.stored) == 1


async def test_a_failing_store_is_retried_then_skipped(vk: Running) -> None:
    vk.host.broken = 1
    assert (await post_event(vk.callback_url(), vk.event("text"))).status_code == 503
    assert (await post_event(vk.callback_url(), vk.event("text"))).text == "ok"
    assert len(vk.host.stored) == 1
    vk.host.broken = 10
    answers = [(await post_event(vk.callback_url(), vk.event("geo"))).status_code for _ in range(5)]
    assert answers == [503, 503, 503, 503, 200]  # VK stops calling a server that errs many times in a row
    assert len(vk.host.stored) == 1
    (health,) = vk.channel.health()
    assert health.last_error is not None and "database is down" in health.last_error


# ── sending ──
def reply(
    text: str = "Sorry! Checking now", *, message_id: int = 42, files: list[OutboundAttachment] | None = None
) -> Outbound:
    return Outbound(
        inbox=INBOX,
        message_id=message_id,
        conversation_id=3,
        delivery_id=f"delivery-{message_id}",
        thread_key=CAROL,
        recipient=Identity(IdentityKind.VK, CAROL, name="Carol Customer"),
        text=text,
        agent_name="Ann",
        attachments=files or [],
    )


async def test_reply_is_sent_with_a_stable_random_id(vk: Running) -> None:
    receipt = await vk.channel.send(reply())
    (sent,) = vk.fake.sent
    assert receipt.external_id == f"{CAROL}:out:{sent.id}"
    (call,) = vk.fake.called("messages.send")
    assert call.params == {
        "peer_id": CAROL,
        "random_id": str(random_id(INBOX.id, 42, 0)),
        "message": "Sorry! Checking now",
        "access_token": TOKEN,
        "v": "5.199",
    }


async def test_a_retried_send_is_delivered_once(vk: Running) -> None:
    first = await vk.channel.send(reply())
    again = await vk.channel.send(reply())  # the outbox lost our answer and sends the same message again
    assert first == again
    assert len(vk.fake.sent) == 1 and len(vk.fake.called("messages.send")) == 2
    await vk.channel.send(reply(message_id=43))  # another message with the same text is another message
    assert len(vk.fake.sent) == 2


@pytest.mark.parametrize(("code", "seconds"), [(6, 1.0), (9, 60.0), (10, 5.0), (29, 300.0)])
async def test_rate_limits_are_retried_later_and_then_delivered(vk: Running, code: int, seconds: float) -> None:
    vk.fake.fail("messages.send", code)
    with pytest.raises(DeliveryError) as caught:
        await vk.channel.send(reply())
    assert caught.value.retry_after == seconds and f"VK error {code}" in caught.value.reason
    await vk.channel.send(reply())
    assert len(vk.fake.sent) == 1


async def test_a_long_reply_interrupted_halfway_resumes_without_duplicates(vk: Running) -> None:
    text = "a" * TEXT_LIMIT + "\n" + "b" * 10
    vk.fake.fail("messages.send", 9, after=1)  # part one goes through, flood control on part two
    with pytest.raises(DeliveryError):
        await vk.channel.send(reply(text))
    assert [s.text for s in vk.fake.sent] == ["a" * TEXT_LIMIT]
    await vk.channel.send(reply(text))  # the outbox retries the whole reply
    assert [s.text for s in vk.fake.sent] == ["a" * TEXT_LIMIT, "b" * 10]
    assert len(vk.fake.called("messages.send")) == 4  # part one asked for twice, delivered once


@pytest.mark.parametrize(
    ("code", "word", "unreachable"),
    [(901, "not allowed messages", True), (902, "privacy", True), (7, "permission", False), (15, "access", False)],
)
async def test_permanent_failures_have_a_clear_reason(vk: Running, code: int, word: str, unreachable: bool) -> None:
    vk.fake.fail("messages.send", code)
    with pytest.raises(DeliveryError) as caught:
        await vk.channel.send(reply())
    assert caught.value.retry_after is None and word in caught.value.reason
    assert (CAROL in vk.host.attributes) is unreachable
    if unreachable:
        assert word in vk.host.attributes[CAROL]["vk_unreachable"]
    assert vk.fake.sent == []


async def test_a_customer_who_did_not_allow_messages_is_marked_unreachable(vk: Running) -> None:
    vk.fake.denied.add(int(CAROL))
    with pytest.raises(DeliveryError, match="not allowed messages") as caught:
        await vk.channel.send(reply())
    assert caught.value.retry_after is None
    assert "VK error 901: Can't send messages for users without permission" in caught.value.reason
    assert "vk_unreachable" in vk.host.attributes[CAROL]


async def test_attachments_are_uploaded_then_sent(vk: Running, tmp_path: Path) -> None:
    photo, pdf = tmp_path / "shot.png", tmp_path / "label.pdf"
    photo.write_bytes(b"\x89PNG screenshot")
    pdf.write_bytes(b"%PDF-1.4 label")
    files = [
        OutboundAttachment("shot.png", "image/png", photo.stat().st_size, str(photo)),
        OutboundAttachment("label.pdf", "application/pdf", pdf.stat().st_size, str(pdf)),
    ]
    await vk.channel.send(reply("Here you go", files=files))
    assert vk.fake.uploads == [("photo", "shot.png", b"\x89PNG screenshot"), ("doc", "label.pdf", b"%PDF-1.4 label")]
    (sent,) = vk.fake.sent
    photo_string, doc_string = sent.attachment.split(",")
    assert photo_string.startswith(f"photo-{GROUP_ID}_") and photo_string.endswith("_pk1")
    assert doc_string.startswith(f"doc-{GROUP_ID}_")
    assert sent.text == "Here you go"
    assert vk.fake.called("docs.getMessagesUploadServer")[0].params["type"] == "doc"


async def test_a_missing_attachment_file_fails_permanently(vk: Running, tmp_path: Path) -> None:
    gone = OutboundAttachment("gone.pdf", "application/pdf", 3, str(tmp_path / "gone.pdf"))
    with pytest.raises(DeliveryError, match="attachment could not be read") as caught:
        await vk.channel.send(reply(files=[gone]))
    assert caught.value.retry_after is None


async def test_vk_unreachable_is_transient(fake: FakeVk) -> None:
    host = HostDouble({INBOX.id: INBOX})
    channel = make_channel(fake, host)
    channel.api.settings = type(channel.settings)(api_base_url="http://127.0.0.1:9/method")
    try:
        with pytest.raises(DeliveryError, match="VK unreachable") as caught:
            await channel.send(reply())
    finally:
        await channel.close()
    assert caught.value.retry_after == 5.0


async def test_typing_is_shown_at_most_every_few_seconds(vk: Running) -> None:
    await vk.channel.show_typing(INBOX, CAROL)
    await vk.channel.show_typing(INBOX, CAROL)
    (call,) = vk.fake.called("messages.setActivity")
    assert call.params["peer_id"] == CAROL and call.params["type"] == "typing"
