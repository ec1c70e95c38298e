"""The message catalogues: en and ru hold the same keys, placeholders and plural forms; every key a template
or an inbox module names exists; Accept-Language and the picker choose the language; and each page the
product serves renders in Russian with no English left over from the catalogue."""

from __future__ import annotations

import html as htmllib
import json
import re
import string
from pathlib import Path

import httpx
import pytest

from inbox.admin.directory import Directory
from inbox.i18n import LOCALES, catalogue, negotiate, translate
from inbox.store.models import Article, key
from tests.factories import make_inbox
from tests.servers.app import LiveServer

WEB = Path(__file__).resolve().parents[1] / "web"
DYNAMIC = {  # keys built at run time: prefix → the suffixes the code can produce
    "js.status.": ["open", "pending", "snoozed", "resolved"],
    "js.priority.": ["urgent", "high", "medium", "low", "none"],
    "js.delivery.": ["queued", "sent", "delivered", "read", "failed", "seen"],
    "settings.section.": ["inboxes", "agents", "teams", "labels", "canned_responses", "health", "selfservice"],
    "csat.word.": ["1", "2", "3", "4", "5"],
}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_is_in_every_catalogue_with_the_same_placeholders() -> None:
    en, ru = catalogue("en"), catalogue("ru")
    assert set(en) == set(ru), set(en) ^ set(ru)
    for name, english in en.items():
        russian = ru[name]
        assert type(english) is type(russian), name
        if isinstance(english, dict) and isinstance(russian, dict):
            assert {"one", "other"} <= set(english) and {"one", "few", "many", "other"} <= set(russian), name
            wanted = set().union(*(fields(text) for text in english.values()))
            assert all(fields(text) == wanted for text in russian.values()), name
        else:
            assert isinstance(english, str) and isinstance(russian, str)
            assert fields(english) == fields(russian), name
            assert russian.strip(), name


def test_every_key_the_templates_and_modules_use_exists() -> None:
    used: set[str] = set()
    for template in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"""\b_\(\s*["']([a-z0-9_.]+)["']""", template.read_text()))
    for module in (WEB / "static" / "inbox").glob("*.js"):
        used |= {"js." + found for found in re.findall(r"""\bt\(\s*"([a-z0-9_.]+)\"""", module.read_text())}
    for prefix, suffixes in DYNAMIC.items():
        used |= {prefix + suffix for suffix in suffixes}
    used.discard("settings.section.")  # the template builds it from the section
    assert len(used) > 150
    assert used - set(catalogue("en")) == set()


@pytest.mark.parametrize(
    ("locale", "count", "expected"),
    [
        ("en", 1, "Last 1 day"),
        ("en", 7, "Last 7 days"),
        ("ru", 1, "Последний 1 день"),
        ("ru", 3, "Последние 3 дня"),
        ("ru", 7, "Последние 7 дней"),
        ("ru", 21, "Последний 21 день"),
        ("de", 7, "Last 7 days"),  # no catalogue: English
    ],
)
def test_plural_forms_follow_the_language(locale: str, count: int, expected: str) -> None:
    assert translate(locale, "reports.last_days", count) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", "ru"),
        ("en;q=0.3, ru;q=0.7", "ru"),
        ("ru;q=0, en", "en"),
        ("fr", "en"),
        ("RU", "ru"),
    ],
)
def test_negotiate_picks_the_best_language_we_have(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected
    assert expected in LOCALES


# ── pages in Russian ─────────────────────────────────────────────────────────────────────────────
def visible_text(page: str) -> str:
    """What a reader meets: text outside scripts and styles, plus the labels and hints in attributes."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    attributes = " ".join(re.findall(r'(?:aria-label|placeholder|title)="([^"]*)"', body))
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", body) + " " + attributes)


def english_leftovers(page: str) -> list[str]:
    """Catalogue texts that differ between en and ru yet show up in English on the page."""
    text = " ".join(visible_text(page).split())
    found = []
    for name, english in catalogue("en").items():
        if not isinstance(english, str) or fields(english) or english == catalogue("ru")[name] or len(english) < 3:
            continue
        if re.search(rf"(?<![\w]){re.escape(english)}(?![\w])", text):
            found.append(f"{name}: {english!r}")
    return found


def embedded_catalogue(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', page, re.S)
    assert found, "the page embeds no catalogue"
    loaded: dict[str, object] = json.loads(found.group(1))
    return loaded


async def test_every_page_renders_in_russian_without_english_leftovers(server: LiveServer) -> None:
    ru = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
    async with httpx.AsyncClient(base_url=server.url, headers=ru) as http:
        setup = await http.get("/setup")
        assert setup.status_code == 200 and '<html lang="ru">' in setup.text
        assert "Создайте первого администратора" in setup.text and not english_leftovers(setup.text)

        directory = Directory(server.state.service)
        admin = await directory.create_agent(
            email="ada@example.test", name="Ада", role="admin", password="a-long-password"
        )
        login = await http.get("/login")
        assert "Вход" in login.text and not english_leftovers(login.text)

        http.cookies.set("sb_session", server.state.sessions.issue(admin))
        pages = ["/", "/reports", "/settings/selfservice"] + [
            f"/settings/{section}" for section in DYNAMIC["settings.section."] if section != "selfservice"
        ]
        for path in pages:
            page = await http.get(path)
            assert page.status_code == 200, path
            assert '<html lang="ru">' in page.text, path
            assert english_leftovers(page.text) == [], path
            assert embedded_catalogue(page.text)["list.empty"] == "Здесь нет диалогов.", path

        inbox = await make_inbox(server.state.store, name="Поддержка")
        async with server.state.store.transaction() as tx:
            article = Article(inbox_id=key(inbox), title="Как вернуть заказ", body="Текст", html="<p>Текст</p>")
            article.published = True
            tx.add(article)
        help_page = await http.get(f"/help/articles/{key(article)}")
        assert help_page.status_code == 200 and '<html lang="ru">' in help_page.text
        assert "Обновлено" in help_page.text and not english_leftovers(help_page.text)

        missing = await http.get("/csat/not-a-token")
        assert missing.status_code == 404 and "Опрос не найден" in missing.text
        assert not english_leftovers(missing.text)


async def test_the_language_picker_sets_a_cookie_that_beats_the_browser(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"Accept-Language": "en-US"}) as http:
        await Directory(server.state.service).create_agent(
            email="ada@example.test", name="Ada", role="admin", password="a-long-password"
        )
        english = (await http.get("/login")).text
        assert "Log in" in english and "login.submit: 'Log in'" in english_leftovers(english)  # the check can fail
        chosen = await http.post("/language", data={"lang": "ru", "next": "/login"})
        assert chosen.status_code == 303 and chosen.headers["location"] == "/login"
        assert http.cookies["sb_lang"] == "ru"
        page = await http.get("/login")
        assert '<html lang="ru">' in page.text and not english_leftovers(page.text)
        outside = await http.post("/language", data={"lang": "xx", "next": "//evil.example/"})
        assert outside.headers["location"] == "/" and http.cookies["sb_lang"] == "ru"
