"""One python-telegram-bot `Bot` per inbox, made once and kept while the inbox's token stays the same
(a new token replaces it; the old one is shut down). The receiver, the outbox and typing share it."""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot

log = logging.getLogger(__name__)


class Bots:
    """The bots of this process, by inbox id, talking to `api_base_url` (Telegram's, or a local Bot API)."""

    def __init__(self, api_base_url: str, file_base_url: str) -> None:
        self.api_base_url = api_base_url
        self.file_base_url = file_base_url
        self._bots: dict[int, tuple[str, Bot]] = {}
        self._lock = asyncio.Lock()

    async def get(self, inbox_id: int, token: str) -> Bot:
        """The inbox's bot for `token`, initialised (getMe fails early on a wrong token)."""
        cached = self._bots.get(inbox_id)
        if cached is not None and cached[0] == token:
            return cached[1]
        async with self._lock:  # the receiver, the outbox and typing may all ask at once
            cached = self._bots.get(inbox_id)
            if cached is not None and cached[0] == token:
                return cached[1]
            bot = Bot(token, base_url=self.api_base_url, base_file_url=self.file_base_url)
            try:
                await bot.initialize()
            except BaseException:
                await bot.shutdown()
                raise
            if cached is not None:
                await cached[1].shutdown()
            self._bots[inbox_id] = (token, bot)
            return bot

    async def close(self) -> None:
        for _, bot in self._bots.values():
            try:
                await bot.shutdown()
            except Exception:
                log.exception("telegram: bot shutdown failed")
        self._bots.clear()
