"""Customer satisfaction surveys: sent when a conversation is resolved, answered through a signed link.

`Surveys` holds the policy — when a survey is wanted, its signed link, its text, how long an answer may change —
and the service writes (`inbox.service.surveys`): the `CsatSurvey` row, the survey message (queued in the
outbox like any reply, so it goes out on the conversation's own channel) and the activity line that shows an
answer to agents. It never decides who may see a report; `inbox.reports.summary` reads what was stored.

A survey goes out when an agent (or a timer) resolves a conversation of an inbox whose settings have
`"csat_enabled": true`, an agent answered the customer, no incoming mail of it was machine-generated
(auto-reply, bounce, quarantined) and the customer wrote since the previous survey. The link is
`<base_url>/csat/<token>`, the token the survey id signed with the server secret. The first answer may be
changed for `csat.change_minutes`; no answer is taken after `csat.expire_days`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError

from inbox.clock import utcnow
from inbox.config import CsatConfig
from inbox.errors import Invalid, NotFound
from inbox.service import InboxService
from inbox.store.models import (
    CsatSurvey,
    Inbox,
    key,
)

log = logging.getLogger(__name__)

SETTING = "csat_enabled"
SCALE = (1, 2, 3, 4, 5)
SATISFIED = 4  # ratings at or above this count as satisfied
MAX_COMMENT = 1000
WORDS = {1: "Bad", 2: "Poor", 3: "OK", 4: "Good", 5: "Great"}


def check_inbox_settings(settings: Mapping[str, Any]) -> None:
    """Reject a malformed `csat_enabled` inbox setting (it must be a boolean when present)."""
    if SETTING in settings and not isinstance(settings[SETTING], bool):
        raise Invalid(f"settings.{SETTING}: must be true or false")


def enabled(settings: Mapping[str, Any]) -> bool:
    return settings.get(SETTING) is True


def machine_made(meta: Mapping[str, Any]) -> bool:
    """An incoming message that no person wrote: an auto-reply, a bounce, a quarantined mail."""
    email = meta.get("email")
    automatic = email.get("automatic") if isinstance(email, Mapping) else None
    return bool(meta.get("quarantined") or meta.get("automatic") or automatic)


def activity_line(rating: int, comment: str, *, changed: bool) -> str:
    """The line agents see in the conversation: `Customer rated 5 — “thanks!”`."""
    line = f"Customer changed their rating to {rating}" if changed else f"Customer rated {rating}"
    return f"{line} — “{comment}”" if comment else line


@dataclass(frozen=True, slots=True)
class SurveyState:
    """What the survey page and the widget card show."""

    id: int
    question: str
    inbox_name: str
    rating: int | None
    comment: str
    open: bool  # an answer (or a change) is still accepted
    closed_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "rating": self.rating,
            "comment": self.comment,
            "open": self.open,
            "closed_reason": self.closed_reason,
        }


class Surveys:
    """Creates surveys on resolution and records answers; publishes what changed for agents."""

    def __init__(
        self,
        service: InboxService,
        *,
        secret: str,
        base_url: str,
        settings: CsatConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.store = service.store
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self._signer = URLSafeSerializer(secret, salt="switchboard-csat-survey")

    # ── links ───────────────────────────────────────────────────────────────────────────────
    def token(self, survey_id: int) -> str:
        return str(self._signer.dumps(survey_id))

    def url(self, survey_id: int) -> str:
        return f"{self.base_url}/csat/{self.token(survey_id)}"

    def survey_id(self, token: str) -> int:
        try:
            value = self._signer.loads(token)
        except BadSignature as exc:
            raise NotFound("survey not found (the link is incomplete or was changed)") from exc
        if not isinstance(value, int) or isinstance(value, bool):
            raise NotFound("survey not found (the link is incomplete or was changed)")
        return value

    # ── sending ─────────────────────────────────────────────────────────────────────────────
    async def on_resolved(self, conversation_id: int) -> int | None:
        """Send a survey for this resolution when the inbox wants one; answers the survey id or None.

        Racing resolutions of one conversation (two agents, two processes) send one survey: the second
        insert of a survey following the same customer message violates a unique constraint and its whole
        transaction (survey, message, outbox row) rolls back."""
        try:
            return await self._send(conversation_id)
        except IntegrityError:
            log.info("conversation %s: a concurrent resolution sent its survey already", conversation_id)
            return None

    async def _send(self, conversation_id: int) -> int | None:
        def link(survey_id: int) -> dict[str, Any]:
            return {
                "id": survey_id,
                "token": self.token(survey_id),
                "url": self.url(survey_id),
                "question": self.settings.question,
            }

        return await self.service.send_survey(
            conversation_id,
            now=self.clock(),
            wanted=lambda inbox: enabled(inbox.settings),
            machine_made=machine_made,
            link=link,
            text=lambda url: f"{self.settings.question} Rate us from 1 to 5 here: {url}",
        )

    # ── answering ───────────────────────────────────────────────────────────────────────────
    async def state(self, token: str) -> SurveyState:
        survey_id = self.survey_id(token)
        async with self.store.session() as session:
            survey = await session.get(CsatSurvey, survey_id)
            if survey is None:
                raise NotFound("survey not found")
            inbox = await session.get(Inbox, survey.inbox_id)
        return self._state(survey, inbox.name if inbox else "")

    def _state(self, survey: CsatSurvey, inbox_name: str) -> SurveyState:
        reason = self._closed(survey, self.clock())
        return SurveyState(
            key(survey), self.settings.question, inbox_name, survey.rating, survey.comment, reason is None, reason
        )

    def _closed(self, survey: CsatSurvey, now: datetime) -> str | None:
        if now > survey.created_at + timedelta(days=self.settings.expire_days):
            return "this survey has expired"
        if survey.responded_at is not None and now > survey.responded_at + timedelta(
            minutes=self.settings.change_minutes
        ):
            return "this rating can no longer be changed"
        return None

    async def respond(self, token: str, rating: Any, comment: Any = "") -> SurveyState:
        """Record (or, for a short while, change) the answer; agents see an activity line."""
        survey_id = self.survey_id(token)
        if not isinstance(rating, int) or isinstance(rating, bool) or rating not in SCALE:
            raise Invalid("rating: must be a whole number from 1 to 5")
        if comment is None:
            comment = ""
        if not isinstance(comment, str):
            raise Invalid("comment: must be text")
        comment = " ".join(comment.split())
        if len(comment) > MAX_COMMENT:
            raise Invalid(f"comment: at most {MAX_COMMENT} characters")
        survey, inbox_name = await self.service.answer_survey(
            survey_id,
            rating,
            comment,
            now=self.clock(),
            closed=self._closed,
            text=lambda changed: activity_line(rating, comment, changed=changed),
        )
        return self._state(survey, inbox_name)
