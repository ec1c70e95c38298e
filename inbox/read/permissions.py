"""The permission matrix: role × action × inbox membership → allowed. Pure; the one place it is decided.

Roles: `admin` (everything), `supervisor` (every inbox of their teams — inboxes they or a teammate belong
to —, may reassign there, sees reports; no settings, no audit log, no privacy requests), `agent` (the inboxes
they belong to; may take or hand on unassigned and own conversations, never take one off a colleague).
Membership says how the caller relates to the inbox an action touches; actions that touch no inbox
(settings, the audit log, reports, privacy requests) ignore it. Callers find the membership with
`inbox.read.access.membership` and turn a refusal into 404 (an inbox one may not see does not exist for
one) or 403 (seen, but not allowed).
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    VIEW = "conversation.view"  # read conversations, messages and contacts of the inbox
    REPLY = "conversation.reply"  # reply, notes, status, labels, priority, team
    ASSIGN = "conversation.assign"  # assign an unassigned or one's own conversation
    REASSIGN = "conversation.reassign"  # change the assignee of a colleague's conversation
    REPORTS = "reports.view"  # figures of the inboxes one may see
    SETTINGS = "settings.manage"  # inboxes, agents and roles, teams, labels, canned responses, channels
    AUDIT = "audit.view"  # read the audit log
    EXPORT = "contact.export"  # privacy: everything about a contact, as an archive
    ERASE = "contact.erase"  # privacy: erase a contact


class Membership(StrEnum):
    MEMBER = "member"  # the caller belongs to the inbox
    TEAM = "team"  # the inbox belongs to a teammate of the caller (not to the caller)
    NONE = "none"


ROLES = ("admin", "supervisor", "agent")
INBOX_ACTIONS = frozenset({Action.VIEW, Action.REPLY, Action.ASSIGN, Action.REASSIGN})
ALL = frozenset(Membership)

# role → action → the memberships under which it is allowed (absent: never).
MATRIX: dict[str, dict[Action, frozenset[Membership]]] = {
    "admin": {action: ALL for action in Action},
    "supervisor": {
        Action.VIEW: frozenset({Membership.MEMBER, Membership.TEAM}),
        Action.REPLY: frozenset({Membership.MEMBER, Membership.TEAM}),
        Action.ASSIGN: frozenset({Membership.MEMBER, Membership.TEAM}),
        Action.REASSIGN: frozenset({Membership.MEMBER, Membership.TEAM}),
        Action.REPORTS: ALL,
    },
    "agent": {
        Action.VIEW: frozenset({Membership.MEMBER}),
        Action.REPLY: frozenset({Membership.MEMBER}),
        Action.ASSIGN: frozenset({Membership.MEMBER}),
        Action.REPORTS: ALL,
    },
}


def allowed(role: str, action: Action, membership: Membership = Membership.NONE) -> bool:
    """Whether `role` may do `action` on an inbox it relates to by `membership` (unknown roles: nothing)."""
    return membership in MATRIX.get(role, {}).get(action, frozenset())


def sees_all_inboxes(role: str) -> bool:
    """Whether `role` sees every inbox whatever its memberships (admins)."""
    return allowed(role, Action.VIEW, Membership.NONE)


def sees_team_inboxes(role: str) -> bool:
    """Whether `role` sees the inboxes of its teammates."""
    return allowed(role, Action.VIEW, Membership.TEAM)
