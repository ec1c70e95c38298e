"""The Telegram bot channel: settings, pure update/Markdown translation, and the one I/O class."""

import os

# Opt in to python-telegram-bot's coming time periods as `timedelta` (durations, `RetryAfter.retry_after`):
# without it PTB 22 emits a deprecation warning each time it builds one, e.g. on every 429.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from channels.telegram.channel import TelegramChannel
from channels.telegram.settings import InboxSettings, Mode, SettingsError, TelegramSettings, inbox_settings
from channels.telegram.updates import inbound_from_update

__all__ = [
    "InboxSettings",
    "Mode",
    "SettingsError",
    "TelegramChannel",
    "TelegramSettings",
    "inbound_from_update",
    "inbox_settings",
]
