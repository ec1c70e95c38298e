"""Per-inbox mailbox settings: defaults, env secrets, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from channels.email.settings import MailboxSettings, Security, SettingsError


def test_defaults_and_env_secret() -> None:
    mailbox = MailboxSettings.from_inbox(
        {
            "address": "support@example.test",
            "imap_host": "imap.test",
            "imap_password": "env:IMAP_PW",
            "aliases": ["help@example.test"],
        },
        environ={"IMAP_PW": "s3cret"},
    )
    assert mailbox.imap_password == "s3cret"
    assert mailbox.imap_security == Security.TLS and mailbox.imap_port == 993
    assert mailbox.smtp_security == Security.STARTTLS and mailbox.smtp_port == 587
    assert mailbox.addresses == {"support@example.test", "help@example.test"}
    assert mailbox.imap_enabled and not mailbox.smtp_enabled
    assert "s3cret" not in repr(mailbox)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "settings.address: the inbox's email address is required"),
        ({"address": "nope"}, "settings.address"),
        ({"address": "a@b.test", "imap_hots": "x"}, "settings.imap_hots: unknown email setting"),
        ({"address": "a@b.test", "imap_port": "993"}, "settings.imap_port: expected an integer"),
        (
            {"address": "a@b.test", "smtp_security": "ssl"},
            "settings.smtp_security: expected one of tls, starttls, plain",
        ),
        ({"address": "a@b.test", "imap_security": "starttls"}, "settings.imap_security: starttls is not supported"),
        (
            {"address": "a@b.test", "smtp_password": "env:MISSING"},
            "settings.smtp_password: environment variable MISSING is not set",
        ),
        ({"address": "a@b.test", "aliases": "help@b.test"}, "settings.aliases: expected a list of strings"),
        ({"address": "a@b.test", "imap_idle": "yes"}, "settings.imap_idle: expected true or false"),
        (
            {"address": "a@b.test", "poll_interval_seconds": 0},
            "settings.poll_interval_seconds: expected a positive number",
        ),
    ],
)
def test_errors_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        MailboxSettings.from_inbox(settings, environ={})
