"""`TelegramChannel`: the I/O over python-telegram-bot's `telegram.Bot` (no `telegram.ext`).

Receive: per inbox either a webhook (`POST /channels/telegram/{inbox_id}`, checked against the
`X-Telegram-Bot-Api-Secret-Token` header, answered 200 only once the update is stored) or long polling
(`getUpdates` from a persisted offset). Both paths go through `process`. Updates can arrive out of order
(webhook retries, several connections, a proxy or a local Bot API server in front), so the dedupe key is
the message's own `(chat id, message id)` — its `external_id` — never the `update_id`: a message already
stored is answered "duplicate" before anything is downloaded, and an older update arriving after a newer
one is stored like any other. The durable cursor per inbox and bot, the highest `update_id` handled, is only
a resume point: the offset polling confirms to Telegram. A membership change (blocked/restarted) keeps its
own per-chat position, so an older one arriving late cannot undo a newer one.
Send: Markdown as entities, split over 4096 characters, attachments as photos or documents; Telegram's
errors become `DeliveryError`s (429 → retry after its `retry_after`, 403 → permanent and the contact
marked unreachable, 400 → permanent with Telegram's own text). When the core is overloaded the webhook answers
503 (Telegram retries) and polling waits `retry_after` without advancing the offset.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Bot, Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from channels.base import (
    ChannelHealth,
    DeliveryError,
    Edit,
    Host,
    Inbound,
    InboundAttachment,
    InboxInfo,
    Outbound,
    Overloaded,
    Receipt,
)
from channels.telegram.bots import Bots
from channels.telegram.outbound import Step, reply_steps, retry_seconds
from channels.telegram.settings import (
    WEBHOOK_PATH,
    InboxSettings,
    Mode,
    SettingsError,
    TelegramSettings,
    inbox_settings,
    webhook_url,
)
from channels.telegram.updates import FileRef, files_in, inbound_from_update, reachability, start_payload

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "my_chat_member"]
BLOCKED = "the customer blocked the bot"
MAX_WEBHOOK_BODY = 1_048_576
MAX_STORE_ATTEMPTS = 5
TYPING_EVERY_SECONDS = 4.0  # Telegram shows a chat action for about 5 s


class Transient(Exception):
    """Processing an update failed for a reason that may pass (network, database): try it again later."""


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "detail": detail}}, status_code=status)


class TelegramChannel:
    """One `Bot` per inbox; receives by webhook or long polling and sends replies."""

    name: ClassVar[str] = "telegram"

    def __init__(self, host: Host, settings: TelegramSettings | None = None) -> None:
        self.host = host
        self.settings = settings or TelegramSettings()
        self.routes: Sequence[BaseRoute] = [
            Route(WEBHOOK_PATH.replace("{inbox_id}", "{inbox_id:int}"), self.webhook, methods=["POST"])
        ]
        self.bots = Bots(self.settings.api_base_url, self.settings.file_base_url)
        self._locks: dict[int, asyncio.Lock] = {}
        self._health: dict[int, ChannelHealth] = {}
        self._typing: dict[tuple[int, str], float] = {}
        self._attempts: dict[tuple[int, int], int] = {}

    # ── receiving ───────────────────────────────────────────────────────────────────────────
    async def run(self, inbox: InboxInfo) -> None:
        """Webhook mode: register the webhook and return. Polling mode: long-poll until cancelled."""
        settings = inbox_settings(inbox)
        try:
            bot = await self._bot(inbox, settings)
            if settings.mode == Mode.WEBHOOK:
                # One connection: Telegram then sends updates one at a time, in order, each after our 200.
                await bot.set_webhook(
                    webhook_url(self.settings, inbox.id),
                    secret_token=settings.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    max_connections=1,
                )
                self._ok(inbox.id, "last_fetch_at")
                return
            await bot.delete_webhook(drop_pending_updates=False)
            while True:
                last = await self.host.load_cursor(self._cursor_key(inbox, settings))
                offset = int(last) + 1 if last else None
                try:
                    updates = await bot.get_updates(
                        offset=offset, timeout=self.settings.poll_timeout_seconds, allowed_updates=ALLOWED_UPDATES
                    )
                except TelegramError:
                    raise
                except Exception as exc:  # PTB could not read one update of the batch
                    await self._step_past_unreadable(inbox, settings, bot, offset, exc)
                    continue
                self._ok(inbox.id, "last_fetch_at")
                try:
                    for update in updates:
                        await self.process(inbox, settings, update)
                except Overloaded as busy:  # the offset stays: the next getUpdates brings the update again
                    await asyncio.sleep(busy.retry_after)
        except Exception as error:
            self._failed(inbox.id, error)
            raise

    async def _step_past_unreadable(
        self, inbox: InboxInfo, settings: InboxSettings, bot: Bot, offset: int | None, error: Exception
    ) -> None:
        """Fetch one update at a time from `offset`: an unreadable one is logged and confirmed away.

        Update ids increase one by one, so the unreadable update is the one at `offset` (or, after a gap,
        the next call finds it again one step further).
        """
        if offset is None:
            raise error  # nothing confirmed yet: no position to step past; the runner retries with backoff
        try:
            updates = await bot.get_updates(offset=offset, limit=1, timeout=0, allowed_updates=ALLOWED_UPDATES)
        except TelegramError:
            raise
        except Exception as exc:
            log.error("telegram: inbox %s: update %s is unreadable (%r); skipped", inbox.id, offset, exc)
            await self.host.save_cursor(self._cursor_key(inbox, settings), str(offset))
            return
        for update in updates:
            await self.process(inbox, settings, update)

    async def webhook(self, request: Request) -> Response:
        inbox_id: int = request.path_params["inbox_id"]
        inbox = await self.host.inbox(inbox_id)
        if inbox is None or inbox.channel != self.name:
            return _error(404, "not_found", f"inbox {inbox_id} not found")
        try:
            settings = inbox_settings(inbox)
        except SettingsError as exc:
            log.error("telegram: %s", exc)
            return _error(503, "misconfigured", f"inbox {inbox_id} is not configured for Telegram")
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(given.encode(), settings.webhook_secret.encode()):
            return _error(401, "unauthorized", "X-Telegram-Bot-Api-Secret-Token: missing or wrong")
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BODY:
            return _error(413, "too_large", f"request body is larger than {MAX_WEBHOOK_BODY} bytes")
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _error(400, "malformed_json", f"body: malformed JSON ({exc})")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return _error(400, "invalid", "body: expected a Telegram Update with an integer update_id")
        try:
            bot = await self._bot(inbox, settings)
        except TelegramError as exc:
            self._failed(inbox_id, exc)
            return _error(503, "unavailable", f"Telegram is not reachable: {exc}")
        try:
            update = Update.de_json(data, bot)
        except Exception as exc:
            # It came with the secret, so from Telegram: answer 200, or Telegram would hold back every later
            # update while it retries this one.
            log.error("telegram: inbox %s: update %s is unreadable (%r); skipped", inbox_id, data["update_id"], exc)
            await self._save_cursor_quietly(self._cursor_key(inbox, settings), data["update_id"])
            return JSONResponse({"ok": True, "outcome": "skipped"})
        try:
            outcome = await self.process(inbox, settings, update)
        except Transient as exc:
            # Not stored: a non-2xx answer makes Telegram deliver this update again later.
            return _error(503, "unavailable", f"update {update.update_id} not stored yet: {exc}")
        except Overloaded as busy:
            response = _error(503, "slow_down", f"update {update.update_id} not stored yet: {busy.reason}")
            response.headers["retry-after"] = str(max(1, math.ceil(busy.retry_after)))
            return response
        self._ok(inbox_id, "last_fetch_at")
        return JSONResponse({"ok": True, "outcome": outcome})

    async def process(self, inbox: InboxInfo, settings: InboxSettings, update: Update) -> str:
        """Handle one update; answers "delivered", "edited", "duplicate", "reachability", "stale", "ignored" or
        "skipped". Whether it is new is decided by what it carries (the message's chat and message id), not by
        its `update_id`, so an update older than the cursor is stored when its message is not.

        An update that cannot be read is logged, skipped and its id recorded. When storing fails (network,
        database) `Transient` is raised and the cursor stays, so the update comes again; after
        `MAX_STORE_ATTEMPTS` failures of the same update it is logged and skipped, so one poisoned update
        cannot stall the inbox.
        """
        key = self._cursor_key(inbox, settings)
        async with self._locks.setdefault(inbox.id, asyncio.Lock()):
            try:
                result = inbound_from_update(inbox.id, update, groups=settings.groups)
            except Exception:
                log.exception("telegram: inbox %s: update %s is unreadable; skipped", inbox.id, update.update_id)
                await self._save_cursor_quietly(key, update.update_id)
                return "skipped"
            attempt = (inbox.id, update.update_id)
            try:
                outcome = await self._store(inbox, settings, update, result)
                await self._advance(key, update.update_id)
            except Overloaded:
                raise  # not a failure of this update: it does not count towards skipping it
            except Exception as exc:
                self._attempts[attempt] = self._attempts.get(attempt, 0) + 1
                if self._attempts[attempt] < MAX_STORE_ATTEMPTS:
                    log.warning(
                        "telegram: inbox %s: update %s not stored, will retry: %r", inbox.id, update.update_id, exc
                    )
                    raise Transient(str(exc) or type(exc).__name__) from exc
                log.exception(
                    "telegram: inbox %s: update %s failed %s times; skipped",
                    inbox.id,
                    update.update_id,
                    MAX_STORE_ATTEMPTS,
                )
                await self._save_cursor_quietly(key, update.update_id)
                outcome = "skipped"
            self._attempts.pop(attempt, None)
            return outcome

    async def _store(
        self, inbox: InboxInfo, settings: InboxSettings, update: Update, result: Inbound | Edit | None
    ) -> str:
        if result is None:
            change = reachability(update)
            if change is None:
                return "ignored"
            identity, reachable = change
            position = f"telegram:{inbox.id}:{settings.bot_id}:member:{identity.value}"
            last = await self.host.load_cursor(position)
            if last is not None and update.update_id <= int(last):
                return "stale"  # a newer membership change of this chat was applied already
            await self.host.set_contact_attributes(identity, {"telegram_unreachable": None if reachable else BLOCKED})
            await self.host.save_cursor(position, str(update.update_id))
            return "reachability"
        if isinstance(result, Edit):
            if await self.host.edit(result) is None:
                # The original never reached us (sent before the bot was connected): keep the new text.
                await self.host.deliver(result.inbound)
            return "edited"
        message = update.message
        assert message is not None
        if await self.host.known_external_ids(inbox.id, [result.external_id]):
            return "duplicate"  # a replay (any order, any mode): nothing to download, nothing to store
        inbound = await self._with_files(inbox, result, message)
        delivered = await self.host.deliver(inbound)
        user = message.from_user
        assert user is not None
        attributes: dict[str, Any] = {"telegram_username": user.username, "telegram_unreachable": None}
        payload = start_payload(message)
        if payload is not None:
            attributes["telegram_start_payload"] = payload
        await self.host.set_contact_attributes(inbound.sender, attributes)
        return "delivered" if delivered.created else "duplicate"

    async def _with_files(self, inbox: InboxInfo, inbound: Inbound, message: Message) -> Inbound:
        refs = files_in(message)
        if not refs:
            return inbound
        attachments: list[InboundAttachment] = []
        notes: list[str] = []
        for ref in refs:
            data, problem = await self._download(message.get_bot(), ref)
            if data is not None:
                attachments.append(InboundAttachment(ref.filename, ref.content_type, data))
            else:
                notes.append(f"[{ref.filename} could not be downloaded: {problem}]")
        text = "\n".join([inbound.text, *notes]) if notes else inbound.text
        return dataclasses.replace(inbound, text=text, attachments=attachments)

    async def _download(self, bot: Bot, ref: FileRef) -> tuple[bytes | None, str]:
        """The file's bytes, or None and why (too big, or refused by Telegram: not worth retrying)."""
        if ref.size is not None and ref.size > self.settings.max_file_bytes:
            return None, f"larger than {self.settings.max_file_bytes} bytes"
        try:
            file = await bot.get_file(ref.file_id)
            if file.file_size is not None and file.file_size > self.settings.max_file_bytes:
                return None, f"larger than {self.settings.max_file_bytes} bytes"
            return bytes(await file.download_as_bytearray()), ""
        except BadRequest as exc:
            return None, exc.message

    # ── sending ─────────────────────────────────────────────────────────────────────────────
    async def send(self, message: Outbound) -> Receipt:
        try:
            settings = inbox_settings(message.inbox)
        except SettingsError as exc:
            raise DeliveryError(str(exc)) from exc
        try:
            chat_id = int(message.thread_key)
        except ValueError as exc:
            raise DeliveryError(f"conversation {message.conversation_id} has no Telegram chat id") from exc
        try:
            bot = await self._bot(message.inbox, settings)
            steps = reply_steps(bot, chat_id, message)
            first = await self._run_steps(message, steps)
        except RetryAfter as exc:
            seconds = retry_seconds(exc)
            raise self._failure(message, f"Telegram rate limit: retry in {seconds:g} s", seconds) from exc
        except Forbidden as exc:
            reason = f"Telegram refused delivery: {exc.message} (the customer blocked the bot or left the chat)"
            if message.recipient is not None and message.recipient.value == message.thread_key:
                await self.host.set_contact_attributes(message.recipient, {"telegram_unreachable": reason})
            raise self._failure(message, reason, None) from exc
        except ChatMigrated as exc:
            raise self._failure(message, f"the group moved to chat {exc.new_chat_id}", None) from exc
        except BadRequest as exc:
            raise self._failure(message, f"Telegram rejected the message: {exc.message}", None) from exc
        except InvalidToken as exc:
            raise self._failure(message, f"Telegram rejected the bot token: {exc.message}", None) from exc
        except NetworkError as exc:
            raise self._failure(message, f"Telegram unreachable: {exc.message}", 0.0) from exc
        except TelegramError as exc:
            raise self._failure(message, f"Telegram error: {exc.message}", 0.0) from exc
        except OSError as exc:  # an attachment's stored file is gone: retrying will not bring it back
            raise self._failure(message, f"attachment could not be read: {exc.strerror or exc}", None) from exc
        self._ok(message.inbox.id, "last_send_at")
        return Receipt(external_id=f"{chat_id}:{first}" if first is not None else None)

    async def _run_steps(self, message: Outbound, steps: list[Step]) -> int | None:
        """Send each part once: with several parts, progress is kept per delivery so a retry resumes."""
        progress = f"telegram:delivery:{message.delivery_id}" if len(steps) > 1 else None
        done = int(await self.host.load_cursor(progress) or 0) if progress else 0
        first: int | None = None
        for index, step in enumerate(steps):
            if index < done:
                continue
            sent = await step()
            first = first if first is not None else sent.message_id
            if progress:
                await self.host.save_cursor(progress, str(index + 1))
        return first

    def _failure(self, message: Outbound, reason: str, retry_after: float | None) -> DeliveryError:
        self._health_set(message.inbox.id, last_error_at=time.time(), last_error=reason)
        return DeliveryError(reason, retry_after=retry_after)

    async def show_typing(self, inbox: InboxInfo, thread_key: str) -> None:
        """Send the "typing" chat action, at most every few seconds per chat; failures only logged."""
        now = time.monotonic()
        if now - self._typing.get((inbox.id, thread_key), -TYPING_EVERY_SECONDS) < TYPING_EVERY_SECONDS:
            return
        if len(self._typing) > 10_000:  # forget chats nobody typed in lately
            self._typing = {k: at for k, at in self._typing.items() if now - at < TYPING_EVERY_SECONDS}
        self._typing[(inbox.id, thread_key)] = now
        try:
            bot = await self._bot(inbox, inbox_settings(inbox))
            await bot.send_chat_action(int(thread_key), ChatAction.TYPING)
        except (TelegramError, SettingsError, ValueError) as exc:
            log.info("telegram: inbox %s: typing action not sent: %s", inbox.id, exc)

    # ── plumbing ────────────────────────────────────────────────────────────────────────────
    async def _bot(self, inbox: InboxInfo, settings: InboxSettings) -> Bot:
        return await self.bots.get(inbox.id, settings.token)

    def _cursor_key(self, inbox: InboxInfo, settings: InboxSettings) -> str:
        return f"telegram:{inbox.id}:{settings.bot_id}:last_update_id"

    async def _advance(self, key: str, update_id: int) -> None:
        """Move the resume point forward to `update_id`; an older update handled late leaves it where it is."""
        last = await self.host.load_cursor(key)
        if last is None or update_id > int(last):
            await self.host.save_cursor(key, str(update_id))

    async def _save_cursor_quietly(self, key: str, update_id: int) -> None:
        """Record a skipped update; the cursor only moves forward (an old id replayed must not pull it back)."""
        try:
            last = await self.host.load_cursor(key)
            if last is None or update_id > int(last):
                await self.host.save_cursor(key, str(update_id))
        except Exception:
            log.exception("telegram: could not record skipped update %s", update_id)

    def _ok(self, inbox_id: int, field: str) -> None:
        self._health_set(inbox_id, **{field: time.time()})

    def _failed(self, inbox_id: int, error: BaseException) -> None:
        if not isinstance(error, asyncio.CancelledError):
            self._health_set(inbox_id, last_error_at=time.time(), last_error=f"{type(error).__name__}: {error}")

    def _health_set(self, inbox_id: int, **changes: Any) -> None:
        current = self._health.get(inbox_id, ChannelHealth(inbox_id))
        self._health[inbox_id] = dataclasses.replace(current, **changes)

    def health(self) -> Sequence[ChannelHealth]:
        return list(self._health.values())

    async def close(self) -> None:
        await self.bots.close()
