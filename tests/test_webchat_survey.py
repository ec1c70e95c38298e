"""The widget's satisfaction survey: which messages are surveys (pure), and over a real widget socket the
`survey` frame after a resolution, answered with the widget's JSON POST to `/csat/<token>`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from channels.webchat.survey import survey_frame, survey_frame_of_event, survey_of
from inbox.service import ConversationChanges
from inbox.store.models import Conversation, CsatSurvey
from tests.servers.app import LiveServer
from tests.webchat_client import admin_with_token, webchat_inbox, widget

LINK = {"id": 3, "token": "abc.def", "url": "https://x/csat/abc.def", "question": "How did we do?"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"survey": LINK}, {"token": "abc.def", "question": "How did we do?"}),
        ({}, None),
        (None, None),
        ({"survey": "abc"}, None),
        ({"survey": {"token": "", "question": "q"}}, None),
        ({"survey": {"token": "t", "question": None}}, None),
        ({"reply_all": False}, None),
    ],
)
def test_survey_of(options: Any, expected: Any) -> None:
    assert survey_of(options) == expected


def test_survey_frames() -> None:
    frame = {"type": "survey", "message_id": 7, "survey": {"token": "abc.def", "question": "How did we do?"}}
    assert survey_frame(7, {"survey": LINK}) == frame
    assert survey_frame(7, {}) is None
    assert survey_frame_of_event({"id": 7, "meta": {"options": {"survey": LINK}}}) == frame
    assert survey_frame_of_event({"id": 7, "meta": {}}) is None
    assert survey_frame_of_event({"id": "7", "meta": {"options": {"survey": LINK}}}) is None


async def test_visitor_gets_a_survey_frame_and_answers_it(server: LiveServer) -> None:
    inbox = await webchat_inbox(server, csat_enabled=True)
    agent, _ = await admin_with_token(server.state.store)
    service = server.state.service
    async with widget(server, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "message", "client_id": "c-1", "body": "Where is my order?"})
        await socket.expect_type("ack")
        async with server.state.store.session() as session:
            conversation_id = (await session.execute(select(Conversation.id))).scalar_one()
        await service.reply(conversation_id, by=agent, body="On its way!", client_id=None)
        await socket.expect(lambda f: f.get("type") == "message" and f["message"]["body"] == "On its way!")
        await service.update_conversation(conversation_id, ConversationChanges(status="resolved"), by=agent)
        text = await socket.expect(lambda f: f.get("type") == "message" and "/csat/" in f["message"]["body"])
        frame = await socket.expect_type("survey")
    assert frame["message_id"] == text["message"]["id"]
    assert frame["survey"]["question"] == "How would you rate the help you got?"
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post(f"/csat/{frame['survey']['token']}", json={"rating": 5, "comment": "quick!"})
    assert answer.status_code == 200 and answer.json()["survey"]["rating"] == 5
    async with server.state.store.session() as session:
        survey = (
            await session.execute(select(CsatSurvey).where(col(CsatSurvey.conversation_id) == conversation_id))
        ).scalar_one()
    assert (survey.rating, survey.comment, survey.message_id) == (5, "quick!", frame["message_id"])
