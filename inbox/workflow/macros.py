"""Macros: a named list of actions (the shapes of `inbox.workflow.rules`) an agent runs on one conversation.

Checking who may run one is the API's job; this module loads the macro, makes "assign via routing" concrete
and hands the actions to `InboxService.run_actions`, which writes each with an activity line naming the macro
(and the agent, whose name signs its notes and replies). It writes nothing itself.
"""

from __future__ import annotations

from typing import Any

from inbox.errors import Invalid, NotFound
from inbox.service import InboxService
from inbox.service.automation import Action, Runner
from inbox.store.models import Agent, Macro, key
from inbox.workflow.routing import Router
from inbox.workflow.rules import parse_actions, resolve


async def load(service: InboxService, macro_id: int) -> tuple[Macro, tuple[Action, ...]]:
    async with service.store.session() as session:
        macro = await session.get(Macro, macro_id)
    if macro is None:
        raise NotFound(f"macro {macro_id} not found")
    try:
        return macro, parse_actions(macro.actions, f"macro {macro_id}.actions")
    except Invalid as exc:  # stored before a shape changed: say so rather than half-run it
        raise Invalid(f"macro_id: macro {macro_id} cannot run: {exc}") from exc


async def run(
    service: InboxService, macro: Macro, actions: tuple[Action, ...], conversation_id: int, *, by: Agent
) -> dict[str, Any]:
    """Run the macro's actions on one conversation as `by`; answers the conversation afterwards."""
    router = Router(service)
    concrete = [await resolve(router, action, conversation_id) for action in actions]
    runner = Runner("macro", key(macro), macro.name, agent=by)
    return await service.run_actions(conversation_id, concrete, by=runner)
