"""CSAT surveys in the core: when one is sent, answering and changing it, the activity line agents see,
and every refusal (bad token, bad rating, changed too late, expired) — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from channels.base import Identity, IdentityKind, Inbound
from inbox.clock import utcnow
from inbox.config import CsatConfig
from inbox.csat.survey import Surveys, activity_line, check_inbox_settings, machine_made
from inbox.errors import Conflict, Invalid, NotFound
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import CsatSurvey, Message, MessageKind, MessageStatus, Outbox
from tests.conftest import Recorder
from tests.factories import inbound, make_agent, make_inbox

RESOLVE = ConversationChanges(status="resolved")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def surveys_for(service: InboxService, clock: Clock | None = None) -> Surveys:
    surveys = Surveys(
        service,
        secret="test-secret",
        base_url="https://support.example.test/",
        settings=CsatConfig(change_minutes=30, expire_days=14),
        clock=clock or utcnow,
    )
    service.on_resolved.append(surveys.on_resolved)
    return surveys


async def answered_conversation(service: InboxService, inbox: Any, external_id: str = "m1") -> tuple[int, Any]:
    agent = await make_agent(service.store, email=f"{external_id}@example.test", name="Bob", role="admin")
    delivered = await service.deliver(inbound(inbox, external_id, sender=external_id))
    await service.update_conversation(delivered.conversation_id, ConversationChanges(assignee_id=agent.id), by=agent)
    await service.reply(delivered.conversation_id, by=agent, body="Here is your answer.", client_id=None)
    return delivered.conversation_id, agent


async def survey_rows(service: InboxService, conversation_id: int) -> list[CsatSurvey]:
    async with service.store.session() as session:
        query = (
            select(CsatSurvey).where(col(CsatSurvey.conversation_id) == conversation_id).order_by(col(CsatSurvey.id))
        )
        return list((await session.execute(query)).scalars())


async def test_resolving_sends_one_survey_message_through_the_outbox(service: InboxService, recorder: Recorder) -> None:
    surveys = surveys_for(service)
    inbox = await make_inbox(service.store, csat_enabled=True)
    conversation_id, agent = await answered_conversation(service, inbox)
    await service.update_conversation(conversation_id, RESOLVE, by=agent)

    [survey] = await survey_rows(service, conversation_id)
    assert survey.agent_id == agent.id and survey.rating is None and survey.message_id is not None
    async with service.store.session() as session:
        message = await session.get(Message, survey.message_id)
        outbox = (await session.execute(select(Outbox).where(col(Outbox.message_id) == survey.message_id))).scalar()
    assert message is not None and outbox is not None and not outbox.done
    assert message.kind == MessageKind.OUTGOING and message.status == MessageStatus.QUEUED
    assert message.sender_type == "system"
    assert message.meta["options"]["reply_all"] is False and message.meta["options"]["automatic"] is True
    link = message.meta["options"]["survey"]
    assert link["url"] == f"https://support.example.test/csat/{link['token']}" and link["url"] in message.body
    assert surveys.survey_id(link["token"]) == survey.id
    created = [e for e in recorder.events if e.type == "message.created" and e.data["id"] == message.id]
    assert len(created) == 1
    # Resolving it again without a word from the customer sends nothing more.
    await service.update_conversation(conversation_id, ConversationChanges(status="open"), by=agent)
    await service.update_conversation(conversation_id, RESOLVE, by=agent)
    assert len(await survey_rows(service, conversation_id)) == 1
    # The customer writes again (reopening it) and it is resolved again: a new survey.
    await service.deliver(inbound(inbox, "m1-again", sender="m1"))
    await service.update_conversation(conversation_id, RESOLVE, by=agent)
    assert len(await survey_rows(service, conversation_id)) == 2


@pytest.mark.parametrize(
    "case",
    ["disabled", "no_setting", "not_answered", "auto_reply", "quarantined", "not_resolved"],
)
async def test_no_survey_when_it_does_not_apply(service: InboxService, case: str) -> None:
    surveys = surveys_for(service)
    settings: dict[str, Any] = {"csat_enabled": case != "disabled"} if case != "no_setting" else {}
    inbox = await make_inbox(service.store, channel="email", **settings)
    agent = await make_agent(service.store)
    meta: dict[str, Any] = {}
    if case == "auto_reply":
        meta = {"email": {"automatic": "Auto-Submitted: auto-replied"}}
    elif case == "quarantined":
        meta = {"quarantined": True, "email": {"automatic": "quarantined"}}
    assert inbox.id is not None
    delivered = await service.deliver(
        Inbound(
            inbox_id=inbox.id,
            external_id="<1@x>",
            thread_key="email:<1@x>",
            sender=Identity(IdentityKind.EMAIL, "c@example.test", email="c@example.test"),
            text="Out of office",
            metadata=meta,
        )
    )
    if case != "not_answered":
        await service.reply(delivered.conversation_id, by=agent, body="Hi", client_id=None)
    if case == "not_resolved":
        await service.update_conversation(delivered.conversation_id, ConversationChanges(status="pending"), by=agent)
        assert await surveys.on_resolved(delivered.conversation_id) is None
    else:
        await service.update_conversation(delivered.conversation_id, RESOLVE, by=agent)
    assert await survey_rows(service, delivered.conversation_id) == []


async def test_answer_adds_an_activity_line_and_may_change_for_a_while(
    service: InboxService, recorder: Recorder
) -> None:
    clock = Clock()
    surveys = surveys_for(service, clock)
    inbox = await make_inbox(service.store, csat_enabled=True)
    conversation_id, agent = await answered_conversation(service, inbox)
    await service.update_conversation(conversation_id, RESOLVE, by=agent)
    [survey] = await survey_rows(service, conversation_id)
    assert survey.id is not None
    token = surveys.token(survey.id)

    state = await surveys.respond(token, 5, "  thanks!  ")
    assert (state.rating, state.comment, state.open) == (5, "thanks!", True)
    lines = [e.data for e in recorder.events if e.type == "message.created" and e.data["kind"] == "activity"]
    assert lines[-1]["body"] == "Customer rated 5 — “thanks!”"
    assert lines[-1]["meta"]["csat"] == {"survey_id": survey.id, "rating": 5, "comment": "thanks!"}
    assert lines[-1]["conversation_id"] == conversation_id

    before = len(recorder.events)
    await surveys.respond(token, 5, "thanks!")  # the same answer again: nothing new
    assert len(recorder.events) == before

    clock.now += timedelta(minutes=20)
    await surveys.respond(token, 3, "")
    lines = [e.data for e in recorder.events if e.type == "message.created" and e.data["kind"] == "activity"]
    assert lines[-1]["body"] == "Customer changed their rating to 3"
    [stored] = await survey_rows(service, conversation_id)
    assert stored.rating == 3 and stored.comment == ""

    clock.now += timedelta(minutes=11)  # 31 minutes after the first answer
    with pytest.raises(Conflict, match="can no longer be changed"):
        await surveys.respond(token, 1, "")
    assert (await surveys.state(token)).closed_reason == "this rating can no longer be changed"
    [stored] = await survey_rows(service, conversation_id)
    assert stored.rating == 3


async def test_refusals_store_nothing(service: InboxService) -> None:
    clock = Clock()
    surveys = surveys_for(service, clock)
    inbox = await make_inbox(service.store, csat_enabled=True)
    conversation_id, agent = await answered_conversation(service, inbox)
    await service.update_conversation(conversation_id, RESOLVE, by=agent)
    [survey] = await survey_rows(service, conversation_id)
    assert survey.id is not None
    token = surveys.token(survey.id)
    for rating in (0, 6, "5", 4.5, True, None):
        with pytest.raises(Invalid, match="rating: must be a whole number from 1 to 5"):
            await surveys.respond(token, rating, "")
    with pytest.raises(Invalid, match="comment: at most 1000"):
        await surveys.respond(token, 4, "x" * 1001)
    with pytest.raises(Invalid, match="comment: must be text"):
        await surveys.respond(token, 4, ["x"])
    with pytest.raises(NotFound, match="survey not found"):
        await surveys.respond(token[:-2] + "xx", 4, "")
    with pytest.raises(NotFound, match="survey not found"):
        await surveys.respond(surveys.token(survey.id + 1000), 4, "")
    other = Surveys(service, secret="another-secret", base_url="", settings=CsatConfig())
    with pytest.raises(NotFound):
        await surveys.respond(other.token(survey.id), 4, "")
    clock.now += timedelta(days=15)
    with pytest.raises(Conflict, match="expired"):
        await surveys.respond(token, 4, "")
    [stored] = await survey_rows(service, conversation_id)
    assert stored.rating is None and stored.responded_at is None


async def test_a_failing_survey_hook_does_not_undo_the_resolution(service: InboxService) -> None:
    inbox = await make_inbox(service.store, csat_enabled=True)
    conversation_id, agent = await answered_conversation(service, inbox)

    async def broken(conversation_id: int) -> None:
        raise RuntimeError("boom")

    service.on_resolved.append(broken)
    view = await service.update_conversation(conversation_id, RESOLVE, by=agent)
    assert view["status"] == "resolved"


def test_pure_helpers() -> None:
    assert activity_line(5, "thanks!", changed=False) == "Customer rated 5 — “thanks!”"
    assert activity_line(2, "", changed=True) == "Customer changed their rating to 2"
    assert machine_made({"email": {"automatic": "Precedence: bulk"}})
    assert machine_made({"quarantined": True})
    assert not machine_made({"email": {"automatic": None}}) and not machine_made({})
    check_inbox_settings({"csat_enabled": True})
    check_inbox_settings({})
    with pytest.raises(Invalid, match="settings.csat_enabled: must be true or false"):
        check_inbox_settings({"csat_enabled": "yes"})
    assert dataclasses.asdict(CsatConfig())["change_minutes"] == 30.0


async def test_racing_resolutions_send_one_survey(service: InboxService) -> None:
    """Two resolutions of the same conversation at once (two agents, two processes) send ONE survey: on
    PostgreSQL both may commit "resolved" and both survey hooks run concurrently."""
    surveys = surveys_for(service)
    service.on_resolved.remove(surveys.on_resolved)  # called by hand below, all at once
    inbox = await make_inbox(service.store, csat_enabled=True)
    for round_ in range(3):
        conversation_id, agent = await answered_conversation(service, inbox, external_id=f"race{round_}")
        await service.update_conversation(conversation_id, RESOLVE, by=agent)
        sent = await asyncio.gather(*(surveys.on_resolved(conversation_id) for _ in range(4)))
        assert len([survey_id for survey_id in sent if survey_id is not None]) == 1
        [survey] = await survey_rows(service, conversation_id)
        async with service.store.session() as session:
            messages = (
                await session.execute(
                    select(Message).where(
                        col(Message.conversation_id) == conversation_id, col(Message.sender_type) == "system"
                    )
                )
            ).scalars()
            outbox = (
                await session.execute(
                    select(Outbox).join(Message).where(col(Message.conversation_id) == conversation_id)
                )
            ).scalars()
            assert [m.id for m in messages] == [survey.message_id]
            assert len(list(outbox)) == 2  # the agent's reply and the one survey
        # The customer writes again and it is resolved again: exactly one more survey, racing or not.
        await service.deliver(inbound(inbox, f"race{round_}-again", sender=f"race{round_}"))
        await service.update_conversation(conversation_id, RESOLVE, by=agent)
        sent = await asyncio.gather(*(surveys.on_resolved(conversation_id) for _ in range(4)))
        assert len([survey_id for survey_id in sent if survey_id is not None]) == 1
        assert len(await survey_rows(service, conversation_id)) == 2


async def test_racing_resolve_requests_send_one_survey(service: InboxService) -> None:
    surveys_for(service)
    inbox = await make_inbox(service.store, csat_enabled=True)
    conversation_id, agent = await answered_conversation(service, inbox)
    await asyncio.gather(*(service.update_conversation(conversation_id, RESOLVE, by=agent) for _ in range(4)))
    assert len(await survey_rows(service, conversation_id)) == 1
