"""The role matrix over the real HTTP API: every role × action × inbox membership, against a table written
here by hand (not read from `inbox.read.permissions`), so a change of the rules shows up as a failure.

Memberships: `member` (the caller belongs to the inbox), `team` (a teammate does), `none`. Refused actions
are a 404 when the caller may not see the inbox at all, else a 403.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select

from inbox.read import permissions
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import Agent, Conversation, Inbox, InboxMember, Team, TeamMember
from tests.conftest import fresh_postgres_database
from tests.factories import inbound, make_inbox, make_token
from tests.servers.app import LiveServer, live_server, make_config

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROLES = ("admin", "supervisor", "agent")
ACTIONS = ("view", "reply", "assign", "reassign", "reports", "settings", "audit", "export", "erase")
MEMBERSHIPS = ("member", "team", "none")
EVERY = frozenset(MEMBERSHIPS)
INBOX_ONLY = frozenset({"member"})
TEAMS = frozenset({"member", "team"})
NEVER: frozenset[str] = frozenset()

# role → action → memberships under which the API allows it.
EXPECTED: dict[str, dict[str, frozenset[str]]] = {
    "admin": dict.fromkeys(ACTIONS, EVERY),
    "supervisor": {
        "view": TEAMS, "reply": TEAMS, "assign": TEAMS, "reassign": TEAMS, "reports": TEAMS,
        "settings": NEVER, "audit": NEVER, "export": NEVER, "erase": NEVER,
    },
    "agent": {
        "view": INBOX_ONLY, "reply": INBOX_ONLY, "assign": INBOX_ONLY, "reassign": NEVER, "reports": INBOX_ONLY,
        "settings": NEVER, "audit": NEVER, "export": NEVER, "erase": NEVER,
    },
}  # fmt: skip
GLOBAL = {"settings", "audit", "export", "erase"}


@dataclass
class Matrix:
    server: LiveServer
    inboxes: dict[str, Inbox]  # membership → the inbox every caller relates to that way
    staff: dict[str, int]
    tokens: dict[str, str]

    @property
    def service(self) -> InboxService:
        service: InboxService = self.server.state.service
        return service


async def _build(server: LiveServer) -> Matrix:
    store = server.state.store
    inboxes = {
        "member": await make_inbox(store, name="Own"),
        "team": await make_inbox(store, name="Teammates'"),
        "none": await make_inbox(store, name="Elsewhere"),
    }
    people = {
        "admin": Agent(email="root@example.test", name="Root", role="admin"),
        "supervisor": Agent(email="sam@example.test", name="Sam", role="supervisor"),
        "agent": Agent(email="ann@example.test", name="Ann"),
        "tina": Agent(email="tina@example.test", name="Tina"),
        "tom": Agent(email="tom@example.test", name="Tom"),
        "olga": Agent(email="olga@example.test", name="Olga"),
        "oscar": Agent(email="oscar@example.test", name="Oscar"),
    }
    async with store.transaction() as tx:
        tx.add_all(people.values())
        ours, theirs = Team(name="Ours"), Team(name="Theirs")
        tx.add_all([ours, theirs])
        await tx.flush()
        members = {
            "member": ("admin", "supervisor", "agent", "tina", "tom"),
            "team": ("tina", "tom"),
            "none": ("olga", "oscar"),
        }
        for where, names in members.items():
            tx.add_all(InboxMember(inbox_id=inboxes[where].id, agent_id=people[name].id) for name in names)
        tx.add_all(
            TeamMember(team_id=ours.id, agent_id=people[n].id) for n in ("admin", "supervisor", "agent", "tina", "tom")
        )
        tx.add_all(TeamMember(team_id=theirs.id, agent_id=people[n].id) for n in ("olga", "oscar"))
    tokens = {role: await make_token(store, people[role]) for role in ROLES}
    staff = {name: row.id for name, row in people.items() if row.id is not None}
    return Matrix(server, inboxes, staff, tokens)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Matrix]:
    state = tmp_path_factory.mktemp("matrix")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{state / 'switchboard.db'}"
    else:
        base = request.getfixturevalue("postgres_base")
        if base is None:
            pytest.skip("PostgreSQL binaries not installed (run `make test` as root to install them)")
        url = await fresh_postgres_database(base)
    async with live_server(make_config(url, state)) as server:
        yield await _build(server)


async def _conversation(matrix: Matrix, where: str, assignee: str | None = None) -> tuple[int, int]:
    """A fresh conversation (and contact) in the inbox of `where`; answers (conversation id, contact id)."""
    delivered = await matrix.service.deliver(inbound(matrix.inboxes[where], uuid.uuid4().hex, sender=uuid.uuid4().hex))
    if assignee is not None:
        changes = ConversationChanges(assignee_id=matrix.staff[assignee])
        await matrix.service.update_conversation(delivered.conversation_id, changes, by=None)
    async with matrix.server.state.store.session() as session:
        row = await session.get(Conversation, delivered.conversation_id)
    assert row is not None and row.id is not None
    return row.id, row.contact_id


async def _attempt(matrix: Matrix, http: httpx.AsyncClient, action: str, where: str) -> httpx.Response:
    inbox_id = matrix.inboxes[where].id
    first, second = ("tina", "tom") if where != "none" else ("olga", "oscar")
    if action == "reassign":
        conversation_id, _ = await _conversation(matrix, where, assignee=first)
    else:
        conversation_id, contact_id = await _conversation(matrix, where)
    url = f"/api/v1/conversations/{conversation_id}"
    match action:
        case "view":
            return await http.get(url)
        case "reply":
            return await http.post(f"{url}/messages", json={"kind": "note", "body": "checked"})
        case "assign":
            return await http.patch(url, json={"assignee_id": matrix.staff[first]})
        case "reassign":
            return await http.patch(url, json={"assignee_id": matrix.staff[second]})
        case "reports":
            return await http.get("/api/v1/reports/summary", params={"inbox_id": inbox_id})
        case "settings":
            return await http.patch(f"/api/v1/inboxes/{inbox_id}", json={"name": matrix.inboxes[where].name})
        case "audit":
            return await http.get("/api/v1/audit")
        case "export":
            return await http.get(f"/api/v1/contacts/{contact_id}/export")
        case "erase":
            return await http.post(f"/api/v1/contacts/{contact_id}/erase")
    raise AssertionError(action)


@pytest.mark.parametrize(("role", "action", "membership"), list(itertools.product(ROLES, ACTIONS, MEMBERSHIPS)))
async def test_role_matrix_over_the_api(matrix: Matrix, role: str, action: str, membership: str) -> None:
    headers = {"Authorization": f"Bearer {matrix.tokens[role]}"}
    async with httpx.AsyncClient(base_url=matrix.server.url, headers=headers, timeout=10) as http:
        response = await _attempt(matrix, http, action, membership)
    if membership in EXPECTED[role][action]:
        assert response.status_code in (200, 201), response.text
    else:
        sees_inbox = membership in EXPECTED[role]["view"]
        assert response.status_code == (403 if action in GLOBAL or sees_inbox else 404), response.text


async def test_the_pure_matrix_says_what_the_api_does() -> None:
    """`inbox.read.permissions` and the table above agree for every inbox action (the one place decides)."""
    actions = {
        "view": permissions.Action.VIEW,
        "reply": permissions.Action.REPLY,
        "assign": permissions.Action.ASSIGN,
        "reassign": permissions.Action.REASSIGN,
        "settings": permissions.Action.SETTINGS,
        "audit": permissions.Action.AUDIT,
        "export": permissions.Action.EXPORT,
        "erase": permissions.Action.ERASE,
    }
    for role, (name, action), membership in itertools.product(ROLES, actions.items(), MEMBERSHIPS):
        allowed = permissions.allowed(role, action, permissions.Membership(membership))
        assert allowed == (membership in EXPECTED[role][name]), (role, name, membership)
    assert not permissions.allowed("intern", permissions.Action.VIEW, permissions.Membership.MEMBER)


async def test_an_agent_may_take_back_their_own_conversation_but_not_a_colleagues(matrix: Matrix) -> None:
    conversation_id, _ = await _conversation(matrix, "member", assignee="agent")
    headers = {"Authorization": f"Bearer {matrix.tokens['agent']}"}
    async with httpx.AsyncClient(base_url=matrix.server.url, headers=headers, timeout=10) as http:
        url = f"/api/v1/conversations/{conversation_id}"
        assert (await http.patch(url, json={"assignee_id": matrix.staff["tina"]})).status_code == 200
        refused = await http.patch(url, json={"assignee_id": None})
        assert refused.status_code == 403 and "supervisor" in refused.text
        assert (await http.patch(url, json={"priority": "high"})).status_code == 200  # other changes stay open


async def test_a_supervisor_loses_a_teams_inbox_with_the_team(matrix: Matrix) -> None:
    conversation_id, _ = await _conversation(matrix, "team")
    headers = {"Authorization": f"Bearer {matrix.tokens['supervisor']}"}
    store = matrix.server.state.store
    sam = matrix.staff["supervisor"]
    async with store.session() as session:
        [team_id] = (await session.execute(select(TeamMember.team_id).where(TeamMember.agent_id == sam))).scalars()
    async with httpx.AsyncClient(base_url=matrix.server.url, headers=headers, timeout=10) as http:
        url = f"/api/v1/conversations/{conversation_id}"
        assert (await http.get(url)).status_code == 200
        async with store.transaction() as tx:
            await tx.execute(delete(TeamMember).where(TeamMember.agent_id == sam))
        try:
            assert (await http.get(url)).status_code == 404
        finally:
            async with store.transaction() as tx:
                tx.add(TeamMember(team_id=team_id, agent_id=sam))
