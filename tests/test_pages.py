"""The pages over real HTTP on both databases: setup only once, login CSRF and throttling, a generic login
error, logout that ends the session, and CSRF on cookie-authenticated API writes."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from inbox.admin.directory import Directory
from inbox.store.models import Agent
from tests.servers.app import LiveServer

PASSWORD = "a-long-password"


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def meta_csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def agents(server: LiveServer) -> int:
    async with server.state.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(Agent))).scalar_one())


async def login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"email": email, "password": password, "form_token": form_token(page.text)})


async def test_setup_creates_the_first_admin_once(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        first = await http.get("/")
        assert first.status_code == 303 and first.headers["location"] == "/setup"
        assert (await http.get("/login")).headers["location"] == "/setup"
        page = await http.get("/setup")
        assert page.status_code == 200 and "Create the first admin" in page.text
        fields = {"name": "Ada", "email": "ada@example.test", "password": PASSWORD, "password_confirm": PASSWORD}

        forged = await http.post("/setup", data={**fields, "form_token": "forged"})
        assert forged.status_code == 403 and await agents(server) == 0
        short = await http.post(
            "/setup",
            data={**fields, "password": "short", "password_confirm": "short", "form_token": form_token(page.text)},
        )
        assert short.status_code == 422 and "at least 10 characters" in short.text and await agents(server) == 0
        mismatch = await http.post(
            "/setup", data={**fields, "password_confirm": "something-else", "form_token": form_token(page.text)}
        )
        assert mismatch.status_code == 422 and "do not match" in mismatch.text

        created = await http.post("/setup", data={**fields, "form_token": form_token(page.text)})
        assert created.status_code == 303 and created.headers["location"] == "/"
        cookie = created.headers["set-cookie"]
        assert cookie.startswith("sb_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Max-Age=1209600" in cookie and "Secure" not in cookie
        inbox = await http.get("/")
        assert inbox.status_code == 200 and "Ada" in inbox.text and 'id="boot"' in inbox.text
        assert (await http.get("/setup")).headers["location"] == "/"
    async with httpx.AsyncClient(base_url=server.url) as stranger:
        page = await stranger.get("/setup")
        assert page.status_code == 303
        again = await stranger.post("/setup", data={**fields, "email": "eve@example.test"})
        assert again.status_code == 404
    assert await agents(server) == 1


async def test_login_error_is_generic_and_throttled(server: LiveServer) -> None:
    await Directory(server.state.service).create_agent(
        email="ann@example.test", name="Ann", role="agent", password=PASSWORD
    )
    throttle = server.state.throttle
    limit = server.state.config.auth.login_max_attempts
    async with httpx.AsyncClient(base_url=server.url) as http:
        unknown = await login(http, "nobody@example.test", PASSWORD)
        wrong = await login(http, "ann@example.test", "wrong-password")
        assert unknown.status_code == wrong.status_code == 401
        assert "Email or password is incorrect." in unknown.text and "Email or password is incorrect." in wrong.text
        throttle.succeeded("ip:127.0.0.1", "email:ann@example.test")

        # Per email: the limit is reached, then even the right password waits.
        for _ in range(limit):
            assert (await login(http, "ann@example.test", "wrong-password")).status_code == 401
        blocked = await login(http, "ann@example.test", PASSWORD)
        assert blocked.status_code == 429 and "Try again in" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        assert "sb_session" not in http.cookies
        throttle.succeeded("ip:127.0.0.1")
        assert (await login(http, "ann@example.test", PASSWORD)).status_code == 429
        throttle.succeeded("email:ann@example.test")
        ok = await login(http, "ann@example.test", PASSWORD)
        assert ok.status_code == 303 and "sb_session" in http.cookies

    # Per client address: guessing across many emails is throttled too.
    throttle.succeeded("ip:127.0.0.1")
    async with httpx.AsyncClient(base_url=server.url) as sprayer:
        for number in range(limit):
            assert (await login(sprayer, f"user{number}@example.test", "guess")).status_code == 401
        assert (await login(sprayer, "ann@example.test", PASSWORD)).status_code == 429


async def test_login_form_needs_its_csrf_token(server: LiveServer) -> None:
    await Directory(server.state.service).create_agent(
        email="ann@example.test", name="Ann", role="agent", password=PASSWORD
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        no_cookie = await http.post("/login", data={"email": "ann@example.test", "password": PASSWORD})
        assert no_cookie.status_code == 403 and "expired" in no_cookie.text
        await http.get("/login")
        forged = await http.post(
            "/login", data={"email": "ann@example.test", "password": PASSWORD, "form_token": "0" * 64}
        )
        assert forged.status_code == 403 and "sb_session" not in http.cookies


async def test_cookie_writes_need_csrf_and_logout_ends_the_session(server: LiveServer) -> None:
    await Directory(server.state.service).create_agent(
        email="ann@example.test", name="Ann", role="agent", password=PASSWORD
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await login(http, "ann@example.test", PASSWORD)).status_code == 303
        page = await http.get("/")
        csrf = meta_csrf(page.text)
        assert (await http.get("/api/v1/me")).json()["email"] == "ann@example.test"
        refused = await http.patch("/api/v1/me", json={"availability": "busy"})
        assert refused.status_code == 403 and "x-csrf-token" in refused.json()["error"]["detail"]
        assert (await http.get("/api/v1/me")).json()["availability"] == "offline"
        ok = await http.patch("/api/v1/me", json={"availability": "busy"}, headers={"x-csrf-token": csrf})
        assert ok.status_code == 200 and ok.json()["availability"] == "busy"

        old_cookie = http.cookies["sb_session"]
        forged = await http.post("/logout", data={"csrf_token": "nope"})
        assert forged.status_code == 403
        assert (await http.get("/api/v1/me")).status_code == 200
        out = await http.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert "sb_session" not in http.cookies
        assert (await http.get("/")).headers["location"] == "/login"
    async with httpx.AsyncClient(base_url=server.url, cookies={"sb_session": old_cookie}) as replay:
        assert (await replay.get("/api/v1/me")).status_code == 401
        assert (await replay.get("/")).headers["location"] == "/login"


async def test_password_change_through_the_cookie_keeps_this_browser_logged_in(server: LiveServer) -> None:
    await Directory(server.state.service).create_agent(
        email="ann@example.test", name="Ann", role="agent", password=PASSWORD
    )
    async with httpx.AsyncClient(base_url=server.url) as http, httpx.AsyncClient(base_url=server.url) as laptop:
        await login(http, "ann@example.test", PASSWORD)
        await login(laptop, "ann@example.test", PASSWORD)
        csrf = meta_csrf((await http.get("/")).text)
        changed = await http.patch(
            "/api/v1/me",
            json={"password": "another-password", "current_password": PASSWORD},
            headers={"x-csrf-token": csrf},
        )
        assert changed.status_code == 200
        assert (await http.get("/api/v1/me")).status_code == 200
        assert changed.headers["x-csrf-token"] == meta_csrf((await http.get("/")).text)
        assert (await laptop.get("/api/v1/me")).status_code == 401
