"""The WhatsApp Cloud API channel: settings, pure webhook/request translation, and the one I/O class.

Imports only `channels.base`, the standard library, httpx and starlette; never `inbox`.
"""

from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.outbound import Template, window_open
from channels.whatsapp.settings import InboxSettings, SettingsError, WhatsAppSettings, inbox_settings
from channels.whatsapp.webhook import read_notification, signature_valid, verify_handshake

__all__ = [
    "InboxSettings",
    "SettingsError",
    "Template",
    "WhatsAppChannel",
    "WhatsAppSettings",
    "inbox_settings",
    "read_notification",
    "signature_valid",
    "verify_handshake",
    "window_open",
]
