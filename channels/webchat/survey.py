"""The widget's rating card: which outgoing messages are satisfaction surveys, and the frame that shows one.

The core marks a survey message with `{"survey": {"token", "question", …}}` in its options (the channel sees
them as `Outbound.metadata`; other processes see them in the `message.updated` event's `meta.options`). The
widget answers by POSTing `{"rating", "comment"}` to `/csat/<token>` on the same origin. Pure functions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def survey_of(options: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The survey a message carries, reduced to what the widget needs; None for ordinary messages."""
    survey = (options or {}).get("survey")
    if not isinstance(survey, Mapping):
        return None
    token, question = survey.get("token"), survey.get("question")
    if not isinstance(token, str) or not token or not isinstance(question, str):
        return None
    return {"token": token, "question": question}


def survey_frame(message_id: int, options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`{"type":"survey","message_id","survey":{"token","question"}}`, or None when it is no survey."""
    survey = survey_of(options)
    return None if survey is None else {"type": "survey", "message_id": message_id, "survey": survey}


def survey_frame_of_event(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The same frame from a stored message as events carry it (`meta.options.survey`)."""
    meta = data.get("meta")
    options = meta.get("options") if isinstance(meta, Mapping) else None
    message_id = data.get("id")
    if not isinstance(message_id, int) or not isinstance(options, Mapping):
        return None
    return survey_frame(message_id, options)
