"""The phone (CTI) channel: a signed call-event webhook any PBX can call, and click-to-call through the PBX."""

from channels.phone.channel import PhoneChannel
from channels.phone.dial import dial_request
from channels.phone.events import CallEvent, EventError, inbound_of, read_event, summary
from channels.phone.numbers import to_e164
from channels.phone.settings import InboxSettings, PhoneSettings, SettingsError, inbox_settings
from channels.phone.signature import signature, signature_problem

__all__ = [
    "CallEvent",
    "EventError",
    "InboxSettings",
    "PhoneChannel",
    "PhoneSettings",
    "SettingsError",
    "dial_request",
    "inbound_of",
    "inbox_settings",
    "read_event",
    "signature",
    "signature_problem",
    "summary",
    "to_e164",
]
