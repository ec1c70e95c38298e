"""HTTP API of automation: rules (CRUD and a dry run), macros (CRUD and running one on a conversation), and
outgoing event webhooks (CRUD, the delivery log, a retry).

Rules, macros and webhooks are settings (admins write them, every agent may read rules and macros; webhooks,
which hold a secret, are admins' only). Shapes are validated by `inbox.workflow.rules` with errors naming the
field (`body.actions[1].label: label 'vip' does not exist`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field, StringConstraints
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import Id, Query, path_id
from inbox.clock import iso, utcnow
from inbox.errors import Conflict, Forbidden, Invalid, NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body, parse_query
from inbox.http.schema import Body, provided
from inbox.http.services import services
from inbox.read import access, permissions
from inbox.service.automation import ActionType
from inbox.store.models import AutomationRule, Macro, Webhook, WebhookDelivery, key
from inbox.workflow import macros, rules, webhooks

api = Api()

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Minutes = Annotated[int, Field(ge=1, le=rules.MAX_MINUTES)]
TriggerName = Literal[
    "conversation_created",
    "message_incoming",
    "message_outgoing",
    "status_changed",
    "assignee_changed",
    "label_added",
    "sla_warning",
    "sla_breached",
    "pending_no_reply",
    "open_unassigned",
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Description = Annotated[str, StringConstraints(max_length=300)]


# ── automation rules ────────────────────────────────────────────────────────────────────────
class RuleBody(Body):
    name: Name
    trigger: TriggerName
    after_minutes: Minutes | None = None
    enabled: bool = True
    conditions: list[Any] = []
    actions: list[Any]


class RuleUpdate(Body):
    name: Name | None = None
    trigger: TriggerName | None = None
    after_minutes: Minutes | None = None
    enabled: bool | None = None
    conditions: list[Any] | None = None
    actions: list[Any] | None = None


async def _checked_rule(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    """The rule's fields in their stored form; a 422 naming the field when a part is wrong."""
    trigger = rules.Trigger(data["trigger"])
    if trigger in rules.TIMED and data.get("after_minutes") is None:
        raise Invalid(f"body.after_minutes: required for the {trigger} trigger")
    if trigger not in rules.TIMED and data.get("after_minutes") is not None:
        raise Invalid("body.after_minutes: only for the pending_no_reply and open_unassigned triggers")
    conditions = rules.parse_conditions(data.get("conditions") or [])
    actions = rules.parse_actions(data.get("actions"))
    await rules.check_references(session, actions)
    return {
        **data,
        "conditions": [rules.condition_json(item) for item in conditions],
        "actions": [rules.action_json(item) for item in actions],
    }


def _rule_view(row: AutomationRule) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "enabled": row.enabled,
        "trigger": row.trigger,
        "after_minutes": row.after_minutes,
        "conditions": row.conditions,
        "actions": row.actions,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


@asynccontextmanager
async def _writing(request: Request, what: str, name: str | None) -> AsyncIterator[AsyncSession]:
    try:
        async with services(request).store.transaction() as tx:
            yield tx
    except IntegrityError as exc:
        raise Conflict(f"name: a {what} named {name!r} exists already") from exc


async def _row(session: AsyncSession, table: Any, row_id: int, noun: str) -> Any:
    row = await session.get(table, row_id)
    if row is None:
        raise NotFound(f"{noun} {row_id} not found")
    return row


@api.route("GET", "/api/v1/automation_rules", summary="List automation rules", tag="automation")
async def list_rules(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        rows = (await session.execute(select(AutomationRule).order_by(col(AutomationRule.id)))).scalars()
        return json({"items": [_rule_view(row) for row in rows]})


@api.route(
    "POST",
    "/api/v1/automation_rules",
    summary="Create an automation rule",
    tag="automation",
    body=RuleBody,
    status=201,
    auth="admin",
)
async def create_rule(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, RuleBody)
    async with _writing(request, "rule", body.name) as tx:
        row = AutomationRule(**await _checked_rule(tx, body.model_dump()))
        tx.add(row)
        await tx.flush()
    return json(_rule_view(row), 201)


@api.route("GET", "/api/v1/automation_rules/{rule_id:int}", summary="Get an automation rule", tag="automation")
async def get_rule(request: Request) -> Response:
    await caller(request)
    rule_id = path_id(request, "rule_id", "automation rule")
    async with services(request).store.session() as session:
        return json(_rule_view(await _row(session, AutomationRule, rule_id, "automation rule")))


@api.route(
    "PATCH",
    "/api/v1/automation_rules/{rule_id:int}",
    summary="Change an automation rule (turn it on or off with enabled)",
    tag="automation",
    body=RuleUpdate,
    auth="admin",
)
async def update_rule(request: Request) -> Response:
    await admin(request)
    rule_id = path_id(request, "rule_id", "automation rule")
    given = provided(await parse_body(request, RuleUpdate), nullable=frozenset({"after_minutes"}))
    async with _writing(request, "rule", given.get("name")) as tx:
        row = await _row(tx, AutomationRule, rule_id, "automation rule")
        merged = {
            name: getattr(row, name)
            for name in ("name", "trigger", "after_minutes", "enabled", "conditions", "actions")
        }
        merged.update(given)
        if "trigger" in given and rules.Trigger(given["trigger"]) not in rules.TIMED and "after_minutes" not in given:
            merged["after_minutes"] = None
        for name, value in (await _checked_rule(tx, merged)).items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        await tx.flush()
    return json(_rule_view(row))


@api.route(
    "DELETE",
    "/api/v1/automation_rules/{rule_id:int}",
    summary="Delete an automation rule",
    tag="automation",
    status=204,
    auth="admin",
)
async def delete_rule(request: Request) -> Response:
    await admin(request)
    rule_id = path_id(request, "rule_id", "automation rule")
    async with services(request).store.transaction() as tx:
        await tx.delete(await _row(tx, AutomationRule, rule_id, "automation rule"))
    return Response(status_code=204)


@api.route(
    "POST",
    "/api/v1/automation_rules/{rule_id:int}/dry_run",
    summary="Try a rule's conditions on the last 500 conversations (nothing is changed)",
    tag="automation",
    auth="admin",
)
async def dry_run_rule(request: Request) -> Response:
    await admin(request)
    rule_id = path_id(request, "rule_id", "automation rule")
    async with services(request).store.session() as session:
        row = await _row(session, AutomationRule, rule_id, "automation rule")
        try:
            rule = rules.rule_of(row)
        except (Invalid, ValueError) as exc:
            raise Conflict(f"automation rule {rule_id} is not valid any more: {exc}") from exc
        found = await rules.dry_run(session, rule, utcnow())
    return json({"rule_id": rule_id, **found})


# ── macros ──────────────────────────────────────────────────────────────────────────────────
class MacroBody(Body):
    name: Name
    actions: list[Any]


class MacroUpdate(Body):
    name: Name | None = None
    actions: list[Any] | None = None


def _macro_view(row: Macro) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "actions": row.actions,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _checked_actions(session: AsyncSession, raw: Any) -> list[dict[str, Any]]:
    actions = rules.parse_actions(raw)
    await rules.check_references(session, actions)
    return [rules.action_json(item) for item in actions]


@api.route("GET", "/api/v1/macros", summary="List macros", tag="automation")
async def list_macros(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        rows = (await session.execute(select(Macro).order_by(col(Macro.name)))).scalars()
        return json({"items": [_macro_view(row) for row in rows]})


@api.route(
    "POST", "/api/v1/macros", summary="Create a macro", tag="automation", body=MacroBody, status=201, auth="admin"
)
async def create_macro(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, MacroBody)
    async with _writing(request, "macro", body.name) as tx:
        row = Macro(name=body.name, actions=await _checked_actions(tx, body.actions))
        tx.add(row)
        await tx.flush()
    return json(_macro_view(row), 201)


@api.route("GET", "/api/v1/macros/{macro_id:int}", summary="Get a macro", tag="automation")
async def get_macro(request: Request) -> Response:
    await caller(request)
    macro_id = path_id(request, "macro_id", "macro")
    async with services(request).store.session() as session:
        return json(_macro_view(await _row(session, Macro, macro_id, "macro")))


@api.route(
    "PATCH",
    "/api/v1/macros/{macro_id:int}",
    summary="Rename a macro or replace its actions",
    tag="automation",
    body=MacroUpdate,
    auth="admin",
)
async def update_macro(request: Request) -> Response:
    await admin(request)
    macro_id = path_id(request, "macro_id", "macro")
    given = provided(await parse_body(request, MacroUpdate))
    async with _writing(request, "macro", given.get("name")) as tx:
        row = await _row(tx, Macro, macro_id, "macro")
        if "actions" in given:
            row.actions = await _checked_actions(tx, given["actions"])
        if "name" in given:
            row.name = given["name"]
        row.updated_at = utcnow()
        await tx.flush()
    return json(_macro_view(row))


@api.route(
    "DELETE", "/api/v1/macros/{macro_id:int}", summary="Delete a macro", tag="automation", status=204, auth="admin"
)
async def delete_macro(request: Request) -> Response:
    await admin(request)
    macro_id = path_id(request, "macro_id", "macro")
    async with services(request).store.transaction() as tx:
        await tx.delete(await _row(tx, Macro, macro_id, "macro"))
    return Response(status_code=204)


ASSIGNING = frozenset({ActionType.ASSIGN_AGENT, ActionType.ASSIGN_ROUTING, ActionType.UNASSIGN})


@api.route(
    "POST",
    "/api/v1/conversations/{conversation_id:int}/macros/{macro_id:int}",
    summary="Run a macro on a conversation (each action an activity line naming the macro)",
    tag="automation",
)
async def run_macro(request: Request) -> Response:
    who = await caller(request)
    store = services(request).store
    conversation = await access.conversation(store, who.agent, path_id(request, "conversation_id", "conversation"))
    macro_id = path_id(request, "macro_id", "macro")
    service = services(request).service
    macro, actions = await macros.load(service, macro_id)
    membership = await access.membership(store, who.agent, conversation.inbox_id)
    if not permissions.allowed(who.agent.role, permissions.Action.REPLY, membership):
        raise Forbidden(f"conversation {conversation.id}: you may not change it")
    reassigns = any(action.type in ASSIGNING for action in actions) and conversation.assignee_id not in (
        None,
        who.agent.id,
    )
    if reassigns and not permissions.allowed(who.agent.role, permissions.Action.REASSIGN, membership):
        raise Forbidden(
            f"macro_id: macro {macro_id} changes the assignee of a colleague's conversation; only a supervisor or an admin may"
        )
    view = await macros.run(service, macro, actions, key(conversation), by=who.agent)
    return json({"macro_id": macro_id, "conversation": view})


# ── outgoing event webhooks ─────────────────────────────────────────────────────────────────
class WebhookBody(Body):
    url: Url
    event_types: Annotated[list[str], Field(min_length=1, max_length=50)]
    enabled: bool = True
    description: Description = ""


class WebhookUpdate(Body):
    url: Url | None = None
    event_types: Annotated[list[str], Field(min_length=1, max_length=50)] | None = None
    enabled: bool | None = None
    description: Description | None = None
    rotate_secret: bool = False


class DeliveryQuery(Query):
    status: Literal["pending", "delivered", "failed"] | None = None
    before: Id | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def _url(value: str) -> str:
    try:
        parsed = httpx.URL(value)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise Invalid(f"body.url: not a URL ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Invalid("body.url: must be an http:// or https:// URL with a host")
    return value


def _event_types(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if value not in webhooks.EVENT_TYPES:
            raise Invalid(f"body.event_types[{index}]: must be one of {', '.join(webhooks.EVENT_TYPES)}")
    return list(dict.fromkeys(values))


def _webhook_view(row: Webhook, *, secret: bool = False) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "event_types": row.event_types,
        "enabled": row.enabled,
        "description": row.description,
        "secret": row.secret if secret else None,  # shown once: on create and when rotated
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


@api.route("GET", "/api/v1/webhooks", summary="List outgoing event webhooks", tag="automation", auth="admin")
async def list_webhooks(request: Request) -> Response:
    await admin(request)
    async with services(request).store.session() as session:
        rows = (await session.execute(select(Webhook).order_by(col(Webhook.id)))).scalars()
        return json({"items": [_webhook_view(row) for row in rows]})


@api.route(
    "POST",
    "/api/v1/webhooks",
    summary="Subscribe a URL to event types (the answer holds the signing secret, shown once)",
    tag="automation",
    body=WebhookBody,
    status=201,
    auth="admin",
)
async def create_webhook(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, WebhookBody)
    row = Webhook(
        url=_url(body.url),
        event_types=_event_types(body.event_types),
        enabled=body.enabled,
        description=body.description,
        secret=secrets.token_urlsafe(32),
    )
    async with services(request).store.transaction() as tx:
        tx.add(row)
        await tx.flush()
    return json(_webhook_view(row, secret=True), 201)


@api.route(
    "GET", "/api/v1/webhooks/{webhook_id:int}", summary="Get an outgoing webhook", tag="automation", auth="admin"
)
async def get_webhook(request: Request) -> Response:
    await admin(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    async with services(request).store.session() as session:
        return json(_webhook_view(await _row(session, Webhook, webhook_id, "webhook")))


@api.route(
    "PATCH",
    "/api/v1/webhooks/{webhook_id:int}",
    summary="Change an outgoing webhook (rotate_secret: a new secret, shown in the answer)",
    tag="automation",
    body=WebhookUpdate,
    auth="admin",
)
async def update_webhook(request: Request) -> Response:
    await admin(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    body = await parse_body(request, WebhookUpdate)
    given = provided(body)
    async with services(request).store.transaction() as tx:
        row = await _row(tx, Webhook, webhook_id, "webhook")
        if "url" in given:
            row.url = _url(given["url"])
        if "event_types" in given:
            row.event_types = _event_types(given["event_types"])
        for name in ("enabled", "description"):
            if name in given:
                setattr(row, name, given[name])
        if body.rotate_secret:
            row.secret = secrets.token_urlsafe(32)
        row.updated_at = utcnow()
    return json(_webhook_view(row, secret=body.rotate_secret))


@api.route(
    "DELETE",
    "/api/v1/webhooks/{webhook_id:int}",
    summary="Delete an outgoing webhook and its delivery log",
    tag="automation",
    status=204,
    auth="admin",
)
async def delete_webhook(request: Request) -> Response:
    await admin(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    async with services(request).store.transaction() as tx:
        row = await _row(tx, Webhook, webhook_id, "webhook")
        await tx.execute(delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook_id))
        await tx.delete(row)
    return Response(status_code=204)


@api.route(
    "GET",
    "/api/v1/webhooks/{webhook_id:int}/deliveries",
    summary="The delivery log of a webhook, newest first (status, response code, attempts)",
    tag="automation",
    query=DeliveryQuery,
    auth="admin",
)
async def list_deliveries(request: Request) -> Response:
    await admin(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    query = parse_query(request, DeliveryQuery)
    conditions: list[Any] = [col(WebhookDelivery.webhook_id) == webhook_id]
    if query.status is not None:
        conditions.append(col(WebhookDelivery.status) == query.status)
    if query.before is not None:
        conditions.append(col(WebhookDelivery.id) < query.before)
    async with services(request).store.session() as session:
        await _row(session, Webhook, webhook_id, "webhook")
        rows = list(
            (
                await session.execute(
                    select(WebhookDelivery)
                    .where(*conditions)
                    .order_by(col(WebhookDelivery.id).desc())
                    .limit(query.limit + 1)
                )
            ).scalars()
        )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return json(
        {
            "items": [webhooks.describe(row) for row in rows],
            "next_before": rows[-1].id if more and rows else None,
        }
    )


@api.route(
    "POST",
    "/api/v1/webhooks/{webhook_id:int}/deliveries/{delivery_id:int}/retry",
    summary="Send a delivery again now (same delivery id)",
    tag="automation",
    auth="admin",
)
async def retry_delivery(request: Request) -> Response:
    await admin(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    delivery_id = path_id(request, "delivery_id", "delivery")
    async with services(request).store.transaction() as tx:
        row = await tx.get(WebhookDelivery, delivery_id)
        if row is None or row.webhook_id != webhook_id:
            raise NotFound(f"delivery {delivery_id} not found")
        if row.status == webhooks.DeliveryStatus.DELIVERED:
            raise Conflict(f"delivery {delivery_id} was delivered already")
        row.status = webhooks.DeliveryStatus.PENDING
        row.next_attempt_at = utcnow()
    worker = getattr(services(request), "webhooks", None)
    if worker is not None:
        worker.wake()
    return json(webhooks.describe(row))
