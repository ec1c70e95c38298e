"""Click-to-call: the URL that asks the PBX to connect an agent's phone with a customer. Pure.

The inbox's `dial_url` template (validated by `settings.dial_template_problem`) gets the values URL-encoded,
so "+4930…" arrives as "%2B4930…" and an extension cannot smuggle in a parameter. Without a template,
click-to-call is a `tel:` link that the agent's own softphone or mobile handles.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from channels.phone.numbers import E164
from channels.phone.settings import dial_template_problem, placeholders

EXTENSION = re.compile(r"[A-Za-z0-9*#@._+-]{1,64}")


def dial_request(template: str | None, agent_extension: str | None, number: str) -> str:
    """The PBX's dial URL for this agent and E.164 `number`, or `tel:<number>` without a template.

    Raises `ValueError` for a number that is not E.164, a malformed template, or a template that needs the
    agent's extension when the agent has none.
    """
    if not E164.fullmatch(number):
        raise ValueError(f"number: not an E.164 number: {number[:40]!r}")
    if template is None:
        return f"tel:{number}"
    problem = dial_template_problem(template)
    if problem:
        raise ValueError(f"dial_url: {problem}")
    if "agent_extension" in placeholders(template) and (
        agent_extension is None or not EXTENSION.fullmatch(agent_extension)
    ):
        raise ValueError("agent_extension: required by the dial URL (letters, digits or *#@._+-, at most 64)")
    values = {"number": number, "number_digits": number[1:], "agent_extension": agent_extension or ""}
    return template.format_map({key: quote(value, safe="") for key, value in values.items()})
