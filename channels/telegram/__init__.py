"""The Telegram bot channel: settings, pure update/Markdown translation, and the one I/O class."""

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
