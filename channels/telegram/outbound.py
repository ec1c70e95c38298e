"""Building an agent's reply for Telegram: text parts (Markdown as entities, split at 4096) then files.

Each part is a `Step`, a call that sends one Telegram message, so the channel can resume a reply that
stopped halfway. Also the reading of `RetryAfter` across python-telegram-bot's int → timedelta change.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from telegram import Bot, Message
from telegram.error import RetryAfter
from telegram.warnings import PTBDeprecationWarning

from channels.base import DeliveryError, Outbound, OutboundAttachment
from channels.telegram.markdown import split, to_entities

PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
PHOTO_MAX_BYTES = 10_485_760  # larger images go as documents (sendPhoto's limit)

Step = Callable[[], Awaitable[Message]]


def retry_seconds(error: RetryAfter) -> float:
    """Telegram's `parameters.retry_after`, as seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = error.retry_after
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


def reply_steps(bot: Bot, chat_id: int, message: Outbound) -> list[Step]:
    """The messages one reply becomes, in order: its text parts, then one per attachment."""
    text, entities = to_entities(message.text)
    steps: list[Step] = []
    for part, part_entities in split(text, entities):

        def send_text(part: str = part, part_entities: list[Any] = part_entities) -> Awaitable[Message]:
            return bot.send_message(chat_id, part, entities=part_entities)

        steps.append(send_text)
    steps.extend(_file_step(bot, chat_id, item) for item in message.attachments)
    if not steps:
        raise DeliveryError("the message has neither text nor attachments")
    return steps


def _file_step(bot: Bot, chat_id: int, item: OutboundAttachment) -> Step:
    async def send_file() -> Message:
        data = await asyncio.to_thread(Path(item.path).read_bytes)
        if item.content_type in PHOTO_TYPES and item.size <= PHOTO_MAX_BYTES:
            return await bot.send_photo(chat_id, data, filename=item.filename)
        return await bot.send_document(chat_id, data, filename=item.filename)

    return send_file
