"""Who is calling: password hashing (argon2), signed session cookies, CSRF tokens, API tokens, throttling.

Answers "which agent is this request" and "may it write"; it does not decide what that agent may see
(see `inbox.read.access`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import HTTPConnection

from inbox.clock import utcnow
from inbox.errors import Throttled, Unauthorized
from inbox.store.engine import Store
from inbox.store.models import Agent, ApiToken

SESSION_COOKIE = "sb_session"
CSRF_HEADER = "x-csrf-token"
TOKEN_PREFIX = "sb_"
TOKEN_TOUCH_SECONDS = 60  # ApiToken.last_used_at is written at most this often per token

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown email like that of a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_api_token() -> tuple[str, str]:
    """A fresh token and the hash we store (tokens are random, so SHA-256 is enough)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    agent_id: int
    version: int
    nonce: str


class Sessions:
    """Signed, timestamped session cookies; bumping an agent's `session_version` logs them out everywhere."""

    def __init__(self, secret_key: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="switchboard.session")
        self._csrf_key = hashlib.sha256(b"csrf:" + secret_key.encode()).digest()
        self.max_age_seconds = max_age_seconds

    def issue(self, agent: Agent) -> str:
        return self._serializer.dumps([agent.id, agent.session_version, secrets.token_hex(8)])

    def read(self, cookie: str) -> Session | None:
        try:
            agent_id, version, nonce = self._serializer.loads(cookie, max_age=self.max_age_seconds)
        except (BadSignature, ValueError, TypeError):
            return None
        return Session(int(agent_id), int(version), str(nonce))

    def csrf_token(self, cookie: str) -> str:
        """A token bound to this session cookie; pages embed it, cookie-authenticated writes echo it."""
        return hmac.new(self._csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(cookie), token)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated agent and how they proved it (cookie writes need CSRF; bearer writes do not)."""

    agent: Agent
    via_cookie: bool
    cookie: str | None = None


class Authenticator:
    """Resolves a request or websocket to an agent."""

    def __init__(self, store: Store, sessions: Sessions) -> None:
        self.store = store
        self.sessions = sessions

    async def caller(self, conn: HTTPConnection, db: AsyncSession | None = None) -> Caller | None:
        """The agent behind the request's bearer token or session cookie.

        `db`: a read session of the request to look it up in (one session per request instead of two)."""
        header = conn.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization: expected 'Bearer <token>'")
            agent = await self.agent_for_token(token.strip(), db)
            if agent is None:
                raise Unauthorized("invalid or revoked API token")
            return Caller(agent, via_cookie=False)
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            agent = await self.agent_for_cookie(cookie, db)
            if agent is not None:
                return Caller(agent, via_cookie=True, cookie=cookie)
        return None

    async def agent_for_cookie(self, cookie: str, db: AsyncSession | None = None) -> Agent | None:
        session = self.sessions.read(cookie)
        if session is None:
            return None
        async with self.store.reading(db) as reader:
            agent = await reader.get(Agent, session.agent_id)
        if agent is None or not agent.active or agent.session_version != session.version:
            return None
        return agent

    async def agent_for_token(self, token: str, db: AsyncSession | None = None) -> Agent | None:
        async with self.store.reading(db) as reader:
            row = (
                await reader.execute(
                    select(Agent, ApiToken)
                    .join(ApiToken, col(ApiToken.agent_id) == Agent.id)
                    .where(col(ApiToken.token_hash) == hash_token(token))
                )
            ).first()
        if row is None:
            return None
        agent, token_row = row
        if not agent.active:
            return None
        await self._touch(token_row)
        return agent

    async def _touch(self, token_row: ApiToken) -> None:
        """Record when a token was last used, at most once per `TOKEN_TOUCH_SECONDS` (not a write per request).

        The UPDATE is conditional, so processes racing on the same token write once between them.
        """
        now = utcnow()
        stale = now - timedelta(seconds=TOKEN_TOUCH_SECONDS)
        if token_row.last_used_at is not None and token_row.last_used_at > stale:
            return
        async with self.store.transaction() as db:
            await db.execute(
                update(ApiToken)
                .where(
                    col(ApiToken.id) == token_row.id,
                    or_(col(ApiToken.last_used_at).is_(None), col(ApiToken.last_used_at) <= stale),
                )
                .values(last_used_at=now)
            )

    async def login(self, email: str, password: str) -> Agent | None:
        async with self.store.session() as db:
            agent = (
                await db.execute(select(Agent).where(col(Agent.email) == email.strip().lower()))
            ).scalar_one_or_none()
        ok = verify_password(agent.password_hash if agent else "", password)
        return agent if ok and agent is not None and agent.active else None


class LoginThrottle:
    """At most `attempts` failed logins per window, per email and per client address."""

    def __init__(self, attempts: int, window_seconds: int) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            failures = self._failures.get(key)
            if failures is None:
                continue
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) >= self.attempts:
                retry = int(failures[0] + self.window - now) + 1
                raise Throttled(f"too many failed logins; try again in {retry} seconds", retry)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 10_000:  # bound memory under a spray of addresses
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1] if self._failures[k] else 0)
            for key in oldest[:5_000]:
                del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
