"""The email channel: IMAP IDLE and SMTP in, SMTP out, threading, hostile mail handled (see README ## Email)."""

from channels.email.channel import EmailChannel
from channels.email.settings import EmailSettings, MailboxSettings

__all__ = ["EmailChannel", "EmailSettings", "MailboxSettings"]
