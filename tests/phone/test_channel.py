"""`PhoneChannel` over real HTTP: the PBX simulator posts signed call events to the channel's route, served by
uvicorn on loopback, with a tiny Host double. Calls answered, missed and left as voicemail; replays stored once
(also after a restart and concurrently); events out of order; refusals with nothing delivered; a busy or failing
core; recordings that cannot be had; the live frames with and without `ContactSignalling`; send; click-to-call."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from channels.base import DeliveryError, Identity, IdentityKind, InboxInfo, Outbound
from channels.phone import PhoneSettings
from channels.phone.channel import CANNOT_SEND
from tests.phone.conftest import CAROL, INBOX, HostDouble, Running, running_channel
from tests.servers.pbx import FakePbx

AUDIO = b"ID3\x03\x00 voicemail audio " * 64


async def test_an_answered_call_shows_live_then_becomes_one_message(phone: Running) -> None:
    outcomes = await phone.pbx.play(phone.pbx.answered_call("c-1", CAROL, "ann@example.com", 192))
    assert outcomes == ["signalled", "signalled", "stored"]
    (inbound,) = phone.host.stored.values()
    assert inbound.external_id == "call:c-1" and inbound.thread_key == CAROL
    assert inbound.sender == Identity(IdentityKind.PHONE, CAROL)
    # the hangup did not say who answered: the answered event did
    assert inbound.text == "Incoming call, 3 min 12 s, answered by ann@example.com"
    assert inbound.metadata["call"]["callback_needed"] is False
    assert phone.host.states() == [("c-1", "ringing"), ("c-1", "answered"), ("c-1", "ended")]
    ringing = phone.host.signals[0]
    assert ringing[:2] == (INBOX.id, CAROL) and ringing[2]["direction"] == "inbound"
    assert phone.host.signals[1][2]["agent"] == "ann@example.com"


async def test_a_missed_call_is_stored_for_a_callback(phone: Running) -> None:
    assert await phone.pbx.play(phone.pbx.missed_call("c-2", "0151 1234 5678")) == ["signalled", "stored"]
    (inbound,) = phone.host.stored.values()
    assert (inbound.text, inbound.thread_key, inbound.attachments) == ("Missed call", CAROL, ())
    assert inbound.metadata["call"]["callback_needed"] is True
    assert phone.host.states() == [("c-2", "ringing"), ("c-2", "ended")]


async def test_a_voicemail_carries_its_recording(phone: Running) -> None:
    outcomes = await phone.pbx.play(phone.pbx.voicemail("vm-1", CAROL, AUDIO, 42))
    assert outcomes == ["signalled", "stored"]
    (inbound,) = phone.host.stored.values()
    assert inbound.text == "Voicemail (0:42)"
    ((filename, content_type, data),) = [(a.filename, a.content_type, a.data) for a in inbound.attachments]
    assert (filename, content_type, data) == ("call-vm-1.mp3", "audio/mpeg", AUDIO)
    assert inbound.metadata["call"]["recording_url"].endswith("/recordings/vm-1.mp3")
    assert phone.pbx.recording_downloads == ["vm-1.mp3"]


async def test_replayed_events_are_stored_once(phone: Running) -> None:
    events = phone.pbx.voicemail("vm-2", CAROL, AUDIO, 42)
    assert await phone.pbx.play(events) == ["signalled", "stored"]
    assert await phone.pbx.play(events) == ["duplicate", "duplicate"]
    assert len(phone.host.stored) == 1
    assert phone.pbx.recording_downloads == ["vm-2.mp3"]  # a replay downloads nothing
    assert phone.host.states() == [("vm-2", "ringing"), ("vm-2", "ended")]


async def test_replays_after_a_restart_are_stored_once(pbx: FakePbx, host: HostDouble) -> None:
    events = pbx.voicemail("vm-3", CAROL, AUDIO, 42)
    async with running_channel(pbx, host) as first:
        assert await first.pbx.play(events) == ["signalled", "stored"]
    async with running_channel(pbx, host) as second:  # the new process remembers no call
        assert await second.pbx.play(events) == ["duplicate", "duplicate"]
    assert len(host.stored) == 1 and pbx.recording_downloads == ["vm-3.mp3"]


async def test_concurrent_replays_of_the_hangup_store_and_download_once(phone: Running) -> None:
    ended = phone.pbx.voicemail("vm-4", CAROL, AUDIO, 42)[-1]
    responses = await asyncio.gather(*(phone.pbx.post(ended) for _ in range(4)))
    assert sorted(r.json()["outcome"] for r in responses) == ["duplicate", "duplicate", "duplicate", "stored"]
    assert len(phone.host.stored) == 1 and phone.pbx.recording_downloads == ["vm-4.mp3"]


async def test_events_out_of_order(phone: Running) -> None:
    ringing, answered, ended = phone.pbx.answered_call("c-5", CAROL, "ann@example.com", 60)
    # the hangup overtook the others: stored at once; the late ones are not shown as a live call
    assert await phone.pbx.play([ended, answered, ringing]) == ["stored", "duplicate", "duplicate"]
    assert phone.host.states() == [("c-5", "ended")]
    (inbound,) = phone.host.stored.values()
    assert inbound.text == "Incoming call, 1 min"  # nobody said who answered before the hangup

    ringing, answered, ended = phone.pbx.answered_call("c-6", CAROL, "bob@example.com", 5)
    assert await phone.pbx.play([answered, ringing, ended]) == ["signalled", "duplicate", "stored"]
    assert phone.host.states()[1:] == [("c-6", "answered"), ("c-6", "ended")]
    assert phone.host.stored[(INBOX.id, "call:c-6")].text == "Incoming call, 5 s, answered by bob@example.com"


def refusal(case: str) -> dict[str, Any]:
    """How the PBX simulator spoils the request (timestamps taken when the test runs, not at import)."""
    now = int(time.time())
    spoilt: dict[str, dict[str, Any]] = {
        "wrong secret": {"secret": "someone-elses-secret-0123"},
        "no signature": {"headers": {"x-switchboard-signature": ""}},
        "no timestamp": {"headers": {"x-switchboard-timestamp": ""}},
        "stale timestamp": {"timestamp": now - 301},
        "timestamp from the future": {"timestamp": now + 360},  # a margin: the channel reads its clock later
        "garbage signature": {"signature": "sha256=" + "0" * 64},
        "timestamp swapped after signing": {"headers": {"x-switchboard-timestamp": str(now - 5)}},
    }
    return spoilt[case]


REFUSALS = [
    "wrong secret",
    "no signature",
    "no timestamp",
    "stale timestamp",
    "timestamp from the future",
    "garbage signature",
    "timestamp swapped after signing",
]


@pytest.mark.parametrize("case", REFUSALS)
async def test_unsigned_or_stale_events_are_refused_with_nothing_delivered(phone: Running, case: str) -> None:
    ringing, ended = phone.pbx.missed_call("c-7", CAROL)
    for event in (ringing, ended):
        response = await phone.pbx.post(event, **refusal(case))
        assert response.status_code == 401, case
        assert "outcome" not in response.json() and response.json()["error"]
    assert phone.host.stored == {} and phone.host.signals == []
    # the same events, signed properly, are then taken: nothing was remembered from the refusals
    assert await phone.pbx.play([ringing, ended]) == ["signalled", "stored"]


async def test_a_tampered_body_is_refused(phone: Running) -> None:
    ended = phone.pbx.missed_call("c-8", CAROL)[-1]
    stamp = int(time.time())
    signed = phone.pbx.sign(json.dumps(ended).encode(), stamp)
    tampered = json.dumps({**ended, "from": "+4915199999999"}).encode()
    response = await phone.pbx.post(ended, body=tampered, timestamp=stamp, signature=signed)
    assert response.status_code == 401 and response.json()["error"] == "X-Switchboard-Signature does not match the body"
    assert phone.host.stored == {}
    response = await phone.pbx.post(ended, body=json.dumps(ended).encode(), timestamp=stamp, signature=signed)
    assert response.status_code == 200 and list(phone.host.stored) == [(INBOX.id, "call:c-8")]


@pytest.mark.parametrize(("inbox_id", "status"), [(0, 404), (99, 404), (8, 404), (2**31, 404)])
async def test_unknown_inboxes_are_not_found(phone: Running, inbox_id: int, status: int) -> None:
    phone.pbx.target = phone.events_url(inbox_id)
    response = await phone.pbx.post(phone.pbx.missed_call("c-9", CAROL)[-1])
    assert response.status_code == status
    if inbox_id < 2**31:  # beyond the largest id the path does not match at all (the router's own 404)
        assert response.json() == {"error": f"inbox {inbox_id} not found"}
    assert phone.host.stored == {}


async def test_unreadable_events_are_refused_naming_the_field(phone: Running) -> None:
    ended = phone.pbx.missed_call("c-10", CAROL)[-1]
    response = await phone.pbx.post({**ended, "type": "call.transferred"})
    assert response.status_code == 422
    assert response.json()["field"] == "type" and response.json()["error"].startswith("type: expected one of")
    response = await phone.pbx.post({**ended, "from": "anonymous"})
    assert response.status_code == 422 and response.json()["field"] == "from"
    response = await phone.pbx.post({}, body=b"{not json")
    assert response.status_code == 400 and response.json()["error"].startswith("body: malformed JSON")
    response = await phone.pbx.post({}, body=b"{" + b" " * 70_000 + b"}")
    assert response.status_code == 413
    assert phone.host.stored == {} and phone.host.signals == []


async def test_a_busy_core_gets_the_event_again(phone: Running) -> None:
    ended = phone.pbx.missed_call("c-11", CAROL)[-1]
    phone.host.busy = 2.5
    response = await phone.pbx.post(ended)
    assert response.status_code == 503 and response.headers["retry-after"] == "3"
    phone.host.busy = None
    phone.host.broken = 1
    assert (await phone.pbx.post(ended)).status_code == 503
    assert phone.host.stored == {}
    assert await phone.pbx.play([ended]) == ["stored"]  # the PBX's retry: nothing was lost
    assert phone.channel.health()[0].last_error == "ConnectionError: database is down"


async def test_a_recording_that_cannot_be_had_does_not_hold_up_the_call(pbx: FakePbx, host: HostDouble) -> None:
    async with running_channel(pbx, host, PhoneSettings(max_recording_bytes=100)) as phone:
        too_large = phone.pbx.voicemail("vm-5", CAROL, AUDIO, 42)[-1]
        gone = {**phone.pbx.voicemail("vm-6", CAROL, AUDIO, 42)[-1], "recording_url": f"{pbx.url}/recordings/x.mp3"}
        assert await phone.pbx.play([too_large, gone]) == ["stored", "stored"]
    first, second = host.stored.values()
    assert (
        first.attachments == ()
        and first.text == "Voicemail (0:42)\n[The recording was not stored: larger than 100 bytes]"
    )
    assert (
        second.attachments == ()
        and second.text == "Voicemail (0:42)\n[The recording could not be downloaded: HTTP 404]"
    )
    assert second.metadata["call"]["recording_url"].endswith("/recordings/x.mp3")  # still there for the agent


async def test_without_contact_signalling_only_known_threads_ring(pbx: FakePbx) -> None:
    host = HostDouble({INBOX.id: INBOX})  # the plain Host.signal: a thread without a conversation shows nothing
    async with running_channel(pbx, host) as phone:
        assert await phone.pbx.play(phone.pbx.missed_call("c-12", CAROL)) == ["signalled", "stored"]
        assert phone.host.states() == [("c-12", "ended")]
        assert await phone.pbx.play(phone.pbx.missed_call("c-13", CAROL)) == ["signalled", "stored"]
        assert phone.host.states() == [("c-12", "ended"), ("c-13", "ringing"), ("c-13", "ended")]
        assert {thread for _, thread, _ in phone.host.signals} == {CAROL}


async def test_a_phone_inbox_cannot_send_text(phone: Running) -> None:
    outbound = Outbound(INBOX, 1, 1, "d-1", CAROL, Identity(IdentityKind.PHONE, CAROL), "Hello", "Ann")
    with pytest.raises(DeliveryError) as caught:
        await phone.channel.send(outbound)
    assert caught.value.retry_after is None and caught.value.reason == CANNOT_SEND


async def test_click_to_call_goes_through_the_pbx(phone: Running) -> None:
    inbox = InboxInfo(7, "Phone", "phone", {"signing_secret": "x" * 16, "dial_url": phone.pbx.dial_template}, "", "")
    assert await phone.channel.dial(inbox, "201", CAROL) is None
    assert phone.pbx.dials == [{"from": "201", "to": CAROL}]
    phone.pbx.dial_status = 503
    with pytest.raises(DeliveryError) as busy:
        await phone.channel.dial(inbox, "201", CAROL)
    assert busy.value.retry_after == 5.0 and busy.value.reason == "the PBX answered HTTP 503"
    phone.pbx.dial_status = 403
    with pytest.raises(DeliveryError) as refused:
        await phone.channel.dial(inbox, "201", CAROL)
    assert refused.value.retry_after is None and refused.value.reason == "the PBX refused the call: HTTP 403"
    with pytest.raises(ValueError, match="agent_extension"):
        await phone.channel.dial(inbox, None, CAROL)
    assert len(phone.pbx.dials) == 3


async def test_click_to_call_without_a_template_is_a_tel_link(phone: Running) -> None:
    assert await phone.channel.dial(INBOX, "201", CAROL) == f"tel:{CAROL}"
    assert phone.pbx.dials == []
