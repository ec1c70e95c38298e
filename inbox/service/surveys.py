"""The service's part for CSAT surveys: the survey row with its message queued in the outbox, and the answer
with the activity line agents see. The policy (when a survey is wanted, the link, the texts, how long an answer
may change) is `inbox.csat`'s, passed in; the writes and their events are here, the only writer's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from inbox.errors import Conflict, NotFound
from inbox.read import views
from inbox.realtime.events import EventType
from inbox.service.base import ServiceBase
from inbox.store.models import (
    Contact,
    Conversation,
    CsatSurvey,
    Inbox,
    Message,
    MessageKind,
    Status,
    key,
)


class SurveyWrites(ServiceBase):
    """Sending a survey and recording its answer."""

    async def send_survey(
        self,
        conversation_id: int,
        *,
        now: datetime,
        wanted: Callable[[Inbox], bool],
        machine_made: Callable[[Mapping[str, Any]], bool],
        link: Callable[[int], dict[str, Any]],
        text: Callable[[str], str],
    ) -> int | None:
        """Queue a survey for a resolved conversation when `wanted` and the customer wrote since the last one;
        the survey id, or None. A concurrent second survey violates a unique constraint (IntegrityError)."""
        async with self.store.transaction() as tx:
            conversation = await tx.get(Conversation, conversation_id)
            if conversation is None or conversation.status != Status.RESOLVED:
                return None
            inbox = await tx.get(Inbox, conversation.inbox_id)
            if inbox is None or not wanted(inbox) or conversation.first_reply_at is None:
                return None
            metas = list(
                (
                    await tx.execute(
                        select(Message.meta).where(
                            col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.INCOMING
                        )
                    )
                ).scalars()
            )
            if not metas or any(machine_made(meta) for meta in metas):
                return None
            previous = (
                await tx.execute(
                    select(CsatSurvey.created_at)
                    .where(col(CsatSurvey.conversation_id) == conversation_id)
                    .order_by(col(CsatSurvey.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if previous is not None and conversation.last_incoming_at and previous >= conversation.last_incoming_at:
                return None  # the customer has not written since the last survey (resolved, reopened, resolved)
            survey = CsatSurvey(
                conversation_id=conversation_id,
                inbox_id=conversation.inbox_id,
                agent_id=conversation.assignee_id,
                created_at=now,
                updated_at=now,
                incoming_at=conversation.last_incoming_at or conversation.created_at,
            )
            tx.add(survey)
            await tx.flush()
            survey_id = key(survey)
            details = link(survey_id)
            # `options` reach the channel as Outbound.metadata: the widget shows a rating card; email sends it
            # to the customer only, marked as machine-sent (Auto-Submitted), so auto-responders stay quiet.
            message = await self.queue_system_message(
                tx,
                conversation,
                text(details["url"]),
                sender_name=inbox.name,
                meta={"options": {"survey": details, "reply_all": False, "automatic": True}},
                now=now,
            )
            survey.message_id = key(message)
            records = await self._append(
                tx,
                [(EventType.MESSAGE_CREATED, views.message(message))],
                inbox_id=conversation.inbox_id,
                conversation_id=conversation_id,
            )
        await self._publish(records)
        self.wake_outbox()
        return survey_id

    async def answer_survey(
        self,
        survey_id: int,
        rating: int,
        comment: str,
        *,
        now: datetime,
        closed: Callable[[CsatSurvey, datetime], str | None],
        text: Callable[[bool], str],
    ) -> tuple[CsatSurvey, str]:
        """Record (or change) an answer and show it to agents as an activity line; the survey and inbox name."""
        records = []
        async with self.store.transaction() as tx:
            survey = await tx.get(CsatSurvey, survey_id)
            if survey is None:
                raise NotFound("survey not found")
            inbox = await tx.get(Inbox, survey.inbox_id)
            inbox_name = inbox.name if inbox else ""
            reason = closed(survey, now)
            if reason is not None:
                raise Conflict(reason)
            if survey.rating == rating and survey.comment == comment:
                return survey, inbox_name
            changed = survey.rating is not None
            survey.rating = rating
            survey.comment = comment
            survey.responded_at = survey.responded_at or now
            survey.updated_at = now
            conversation = await tx.get(Conversation, survey.conversation_id)
            contact = await tx.get(Contact, conversation.contact_id) if conversation else None
            line = self.activity_message(
                survey.conversation_id,
                survey.inbox_id,
                text(changed),
                sender_type="contact",
                sender_id=contact.id if contact else None,
                sender_name=contact.name if contact else "",
                meta={"csat": {"survey_id": survey_id, "rating": rating, "comment": comment}},
                now=now,
            )
            tx.add(line)
            await tx.flush()
            records = await self._append(
                tx,
                [(EventType.MESSAGE_CREATED, views.message(line))],
                inbox_id=survey.inbox_id,
                conversation_id=survey.conversation_id,
            )
        await self._publish(records)
        return survey, inbox_name
