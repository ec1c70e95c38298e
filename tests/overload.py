"""Helpers of the overload tests: a gate that stalls every store write of a running server until released."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from channels.base import Delivered, Inbound
from inbox.service import InboxService


class Gate:
    """Holds every `InboxService.deliver` (a stalled database) until `release`; `waiting` counts the held ones.

    Patched on the service instance, below the host, so the host's admission counts held deliveries as in
    flight exactly as it counts slow real ones.
    """

    def __init__(self, service: InboxService) -> None:
        self.service = service
        self.released = asyncio.Event()
        self.waiting = 0
        original = service.deliver

        async def held(inbound: Inbound) -> Delivered:
            self.waiting += 1
            try:
                await self.released.wait()
            finally:
                self.waiting -= 1
            return await original(inbound)

        service.deliver = held  # type: ignore[method-assign]

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        del self.service.deliver


async def metric(base_url: str, name: str) -> float:
    """One sample of `/metrics` (a series without labels)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base_url}/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


def slow_down(frame: dict[str, Any], client_id: str) -> bool:
    return frame.get("type") == "error" and frame.get("code") == "slow_down" and frame.get("client_id") == client_id
