"""A real aiosmtpd SMTP server in the test's own loop: records what it receives, answers as told."""

from __future__ import annotations

import asyncio
import contextlib
import email
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    """The handler: `rcpt_answer`/`data_answer` let a test make the server refuse (e.g. "451 try later")."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    rcpt_answer: str = "250 OK"
    data_answer: str = "250 OK"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.data_answer.startswith("250"):
            return self.data_answer
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw))
        self.arrived.set()
        return self.data_answer

    async def wait(self, count: int = 1, seconds: float = 10.0) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self.received) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"expected {count} mails at the SMTP sink, got {len(self.received)}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.received


@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[Sink]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test"), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()
