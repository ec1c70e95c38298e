"""Test an email inbox's connection before it is saved: read the settings as the channel will, log in to IMAP
and select the folder, then EHLO, STARTTLS (when asked) and AUTH on SMTP, reporting each step.

Nothing is fetched, marked or sent. The answer is a list of steps, each `ok` with what the server said, so a
newcomer sees where it stops ("imap.login: authentication failed"). Passwords never appear in a step.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import aiosmtplib
from aioimaplib import IMAP4, IMAP4_SSL

from channels.email.imap import _close, _text
from channels.email.settings import MailboxSettings, Security, SettingsError


@dataclass(frozen=True, slots=True)
class Step:
    step: str  # settings | imap.connect | imap.login | imap.select | smtp.connect | smtp.starttls | smtp.auth
    ok: bool
    detail: str


async def check_connection(settings: Mapping[str, Any], *, seconds: float = 15.0) -> list[dict[str, Any]]:
    """Every step of connecting this mailbox, in order; a failed step ends its protocol's steps."""
    try:
        mailbox = MailboxSettings.from_inbox(settings)
    except SettingsError as error:
        return [asdict(Step("settings", False, str(error)))]
    steps = [Step("settings", True, mailbox.address)]
    if mailbox.imap_enabled:
        steps += await _imap(mailbox, seconds)
    if mailbox.smtp_enabled:
        steps += await _smtp(mailbox, seconds)
    return [asdict(step) for step in steps]


async def _imap(mailbox: MailboxSettings, seconds: float) -> list[Step]:
    where = f"{mailbox.imap_host}:{mailbox.imap_port}"
    client: IMAP4
    if mailbox.imap_security == Security.TLS:
        client = IMAP4_SSL(
            mailbox.imap_host, mailbox.imap_port, timeout=seconds, ssl_context=ssl.create_default_context()
        )
    else:
        client = IMAP4(mailbox.imap_host, mailbox.imap_port, timeout=seconds)
    steps: list[Step] = []
    try:
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), seconds)
        except (OSError, TimeoutError) as error:
            return [Step("imap.connect", False, f"{where}: {error or type(error).__name__}")]
        steps.append(Step("imap.connect", True, where))
        user = mailbox.imap_username or mailbox.address
        login = await asyncio.wait_for(client.login(user, mailbox.imap_password), seconds)
        if login.result != "OK":
            return [*steps, Step("imap.login", False, f"{user}: {_text(login.lines)}")]
        steps.append(Step("imap.login", True, user))
        selected = await asyncio.wait_for(client.select(mailbox.imap_folder), seconds)
        if selected.result != "OK":
            return [*steps, Step("imap.select", False, f"{mailbox.imap_folder}: {_text(selected.lines)}")]
        steps.append(Step("imap.select", True, mailbox.imap_folder))
        return steps
    except Exception as error:  # a protocol error mid-way: report it at the step it stopped
        failed = ("imap.connect", "imap.login", "imap.select")[min(len(steps), 2)]
        return [*steps, Step(failed, False, f"{error or type(error).__name__}")]
    finally:
        _close(client)


async def _smtp(mailbox: MailboxSettings, seconds: float) -> list[Step]:
    where = f"{mailbox.smtp_host}:{mailbox.smtp_port}"
    client = aiosmtplib.SMTP(
        hostname=mailbox.smtp_host,
        port=mailbox.smtp_port,
        use_tls=mailbox.smtp_security == Security.TLS,
        start_tls=False,
        timeout=seconds,
    )
    steps: list[Step] = []
    try:
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return [Step("smtp.connect", False, f"{where}: {error or type(error).__name__}")]
        ehlo = await client.ehlo()
        steps.append(
            Step("smtp.connect", True, f"{where}: {ehlo.message.splitlines()[0] if ehlo.message else ehlo.code}")
        )
        if mailbox.smtp_security == Security.STARTTLS:
            try:
                await client.starttls()
            except aiosmtplib.SMTPException as error:
                return [*steps, Step("smtp.starttls", False, str(error))]
            steps.append(Step("smtp.starttls", True, "TLS"))
        if mailbox.smtp_username:
            try:
                await client.login(mailbox.smtp_username, mailbox.smtp_password)
            except aiosmtplib.SMTPException as error:
                return [*steps, Step("smtp.auth", False, f"{mailbox.smtp_username}: {error}")]
            steps.append(Step("smtp.auth", True, mailbox.smtp_username))
        return steps
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        return [*steps, Step("smtp.connect", False, f"{where}: {error or type(error).__name__}")]
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
