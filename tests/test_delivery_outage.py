"""While the database is down (issue 17 item 9): widget visitors get `unavailable` error frames that name
their `client_id`, a resend after recovery is acknowledged once, and the server logs one line per state
change with counts instead of a traceback per failed delivery."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from channels.base import FailureRun
from tests.servers.app import LiveServer
from tests.webchat_client import webchat_inbox, widget


def test_a_failure_run_logs_its_start_and_its_end_with_counts(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.outage")
    run = FailureRun(log, "deliveries")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        run.succeeded()  # nothing was failing: silent
        for _ in range(50):
            run.failed(ConnectionRefusedError("connection refused"))
        run.succeeded()
        run.succeeded()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0] == "deliveries failing: ConnectionRefusedError: connection refused"
    assert lines[1].startswith("deliveries recovered after 50 failures in ")
    assert sum(1 for record in caplog.records if record.exc_info) == 0  # `trace=True` adds the first one


async def test_widget_sends_during_a_database_outage(
    server: LiveServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await webchat_inbox(server)
    service = server.state.service
    real = service.deliver
    down = True

    async def deliver(inbound: Any) -> Any:
        if down:
            raise OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))
        return await real(inbound)

    monkeypatch.setattr(service, "deliver", deliver)
    with caplog.at_level(logging.INFO):
        async with widget(server, inbox.public_key, hello={}) as socket:
            await socket.expect_type("welcome")
            for number in range(5):
                await socket.send({"type": "message", "client_id": f"c-{number}", "body": f"hello {number}"})
                error = await socket.expect_type("error")
                assert error["code"] == "unavailable" and error["client_id"] == f"c-{number}"
            down = False
            await socket.send({"type": "message", "client_id": "c-0", "body": "hello 0"})
            ack = await socket.expect_type("ack")
            assert ack["client_id"] == "c-0"
            await socket.nothing(lambda frame: frame.get("type") == "ack", within=0.5)
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) <= 1, [record.getMessage() for record in tracebacks]
    lines = [record.getMessage() for record in caplog.records]
    assert sum("failing" in line for line in lines) >= 1
    assert any("recovered after 5 failures" in line for line in lines), lines


async def test_smtp_in_during_an_outage_answers_451_and_logs_the_run_once(caplog: pytest.LogCaptureFixture) -> None:
    from aiosmtpd.smtp import Envelope

    from channels.base import InboxInfo
    from channels.email.smtp import InboundHandler

    inbox = InboxInfo(1, "Support", "email", {"address": "support@example.test"}, "secret", "key")
    down = True

    async def inboxes() -> list[InboxInfo]:
        return [inbox]

    async def ingest(target: InboxInfo, raw: bytes, recipients: Any) -> None:
        if down:
            raise OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))

    handler = InboundHandler(inboxes, ingest)
    envelope = Envelope()
    envelope.rcpt_tos.append("support@example.test")
    envelope.content = envelope.original_content = b"From: a@b.test\r\n\r\nhi\r\n"
    with caplog.at_level(logging.INFO, logger="channels.email"):
        answers = [await handler.handle_DATA(None, None, envelope) for _ in range(20)]  # type: ignore[arg-type]
        down = False
        answers.append(await handler.handle_DATA(None, None, envelope))  # type: ignore[arg-type]
    assert all(answer.startswith("451 ") for answer in answers[:-1]) and answers[-1].startswith("250 ")
    assert len([record for record in caplog.records if record.exc_info]) == 1
    assert any("recovered after 20 failures" in record.getMessage() for record in caplog.records)
