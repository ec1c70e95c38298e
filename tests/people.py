"""An admin and an agent with API tokens, made through the Directory of a running app (for HTTP tests)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from inbox.admin.directory import Directory
from inbox.store.models import key
from tests.servers.app import LiveServer

ADMIN_PASSWORD = "admin-password-1"
AGENT_PASSWORD = "agent-password-1"


@dataclass
class People:
    admin_id: int
    agent_id: int
    admin: httpx.AsyncClient
    agent: httpx.AsyncClient


async def make_people(server: LiveServer) -> People:
    directory = Directory(server.state.service)
    admin = await directory.create_agent(
        email="ada@example.test", name="Ada Admin", role="admin", password=ADMIN_PASSWORD
    )
    agent = await directory.create_agent(
        email="bob@example.test", name="Bob Agent", role="agent", password=AGENT_PASSWORD
    )
    _, admin_token = await directory.create_token(key(admin), "tests")
    _, agent_token = await directory.create_token(key(agent), "tests")
    return People(
        key(admin),
        key(agent),
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}),
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {agent_token}"}),
    )
