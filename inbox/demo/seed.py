"""`switchboard demo`: realistic sample data — agents, inboxes, labels, canned responses, contacts and about
thirty multi-message conversations in every status — written through the Directory and `InboxService`,
so every change has its event. It refuses to run twice (the demo admin's email is the marker).

Demo replies are marked sent right away: there is no real customer on the other end to deliver them to.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from channels.base import Identity, IdentityKind, Inbound
from inbox.admin.directory import Directory
from inbox.clock import utcnow
from inbox.errors import Conflict
from inbox.service import UNSET, ConversationChanges
from inbox.store.models import Agent, CannedResponse, Label, Team, TeamMember, key

DEMO_ADMIN = "admin@example.com"

AGENTS = [
    ("Dana Reyes", DEMO_ADMIN, "admin"),
    ("Priya Nair", "priya@example.com", "agent"),
    ("Marco Rossi", "marco@example.com", "agent"),
    ("Li Wei", "li@example.com", "agent"),
]
LABELS = [
    ("billing", "#2563eb", "Invoices, payments and plans"),
    ("bug", "#dc2626", "Something is broken"),
    ("feature-request", "#7c3aed", "Ideas from customers"),
    ("refund", "#d97706", "Refund requested"),
    ("vip", "#059669", "Key accounts"),
    ("onboarding", "#0891b2", "New customers getting started"),
]
CANNED = [
    ("hello", "Hi there, thanks for reaching out! Let me take a look at this for you."),
    ("refund-policy", "We refund any unused part of your plan within 30 days of purchase, no questions asked."),
    ("password-reset", "You can reset your password at any time from the login page via “Forgot password?”."),
    ("thanks", "Thanks for your patience — is there anything else I can help you with?"),
]

# A turn is (who, text): "c" the customer, "a" the assigned agent replying, "n" a private note.
THREADS: list[tuple[str | None, list[tuple[str, str]]]] = [
    (
        "Charged twice this month",
        [
            ("c", "Hi, I was charged twice for my March invoice. Can you check? Order #48213."),
            ("a", "Sorry about that! I can see two charges of $49 on the 3rd. I've started a refund for one of them."),
            ("c", "Great, how long does it take to show up?"),
            ("a", "Usually 3–5 business days, depending on your bank."),
            ("c", "Perfect, thank you!"),
        ],
    ),
    (
        "Export to CSV is empty",
        [
            ("c", "When I export my contacts to CSV the file only has the header row."),
            ("n", "Reproduced on staging with >10k contacts. Filed ENG-2291."),
            ("a", "Thanks for the report — we reproduced it and our engineers are on it. I'll update you here."),
        ],
    ),
    (
        None,
        [
            ("c", "hey! is there a way to change the color of the chat bubble?"),
            ("a", "Yes! Go to Settings → Widget → Appearance and pick any color you like."),
            ("c", "found it, thanks 🙌"),
        ],
    ),
    (
        "Dark mode?",
        [
            ("c", "Any plans for a dark mode in the dashboard? My team works late shifts."),
            ("a", "It's on our roadmap! I've added your vote to the request."),
        ],
    ),
    (
        "Can't log in after password reset",
        [
            ("c", "I reset my password but the new one doesn't work. I've tried three times."),
            ("a", "I'm sorry about that. Could you tell me which email address you use to log in?"),
            ("c", "It's the one I'm writing from."),
            ("n", "Account was locked after 5 attempts — unlocked it."),
            ("a", "Your account was temporarily locked after several attempts. I've unlocked it, please try again."),
        ],
    ),
    (
        "Upgrade to the Team plan",
        [
            ("c", "We'd like to move from Starter to Team for 12 seats. Do you offer annual billing?"),
            ("a", "Absolutely — annual billing saves 20%. I'll send over a quote for 12 seats today."),
            ("c", "Sounds good. Please address it to ACME Logistics GmbH."),
        ],
    ),
    (
        None,
        [
            ("c", "Hello, do you ship to Canada?"),
        ],
    ),
    (
        "Refund for unused months",
        [
            ("c", "We're closing the business and would like a refund for the remaining 5 months."),
            ("n", "Annual plan bought 7 months ago — outside the 30-day window. Ask Dana about an exception."),
            ("a", "Sorry to hear that. I'm checking with our billing team whether we can make an exception."),
        ],
    ),
    (
        "Webhook signature mismatch",
        [
            ("c", "Our webhook endpoint rejects your requests: the signature never matches."),
            (
                "a",
                "The signature is computed over the timestamp, a dot, then the raw body. Are you hashing the parsed JSON?",
            ),
            ("c", "That was it — we were re-serialising the JSON. Works now."),
            ("a", "Great to hear! I'll close this one then."),
        ],
    ),
    (
        None,
        [
            ("c", "The checkout page keeps spinning after I click Pay."),
            ("a", "Thanks for letting us know. Which browser are you using?"),
            ("c", "Safari on an iPad."),
        ],
    ),
    (
        "Invite link expired",
        [
            ("c", "My colleague's invite link says it expired. Can you send a new one?"),
            ("a", "I've sent a fresh invite to your colleague; it's valid for 7 days."),
        ],
    ),
    (
        "Onboarding call",
        [
            ("c", "We just signed up. Is there someone who can walk us through the setup?"),
            ("a", "Welcome aboard! I'd be happy to. Does Thursday at 15:00 CET work for you?"),
            ("c", "Thursday works. Talk then!"),
        ],
    ),
]
CUSTOMERS = [
    "Olivia Martin",
    "Noah Schmidt",
    "Emma Dubois",
    "Liam O'Connor",
    "Sofia Rossi",
    "Lucas Silva",
    "Mia Johansson",
    "Ethan Brown",
    "Ava Kowalski",
    "Mateo García",
    "Chloe Nguyen",
    "Leo Novak",
    "Isabella Costa",
    "Jonas Weber",
    "Amara Okafor",
    "Hugo Laurent",
    "Yuki Tanaka",
    "Zara Ahmed",
    "Finn Murphy",
    "Elena Petrova",
    "Omar Haddad",
    "Nora Lindqvist",
    "Diego Fernández",
    "Hannah Fischer",
    "Ravi Patel",
    "Grace Kim",
    "Tomás Ortega",
    "Freya Nielsen",
    "Samuel Adeyemi",
    "Ines Moreau",
]
STATUS_CYCLE = ["open", "open", "pending", "resolved", "open", "snoozed", "resolved", "open"]
LABELS_BY_THREAD = [
    ["billing", "refund"],
    ["bug"],
    [],
    ["feature-request"],
    [],
    ["billing", "vip"],
    [],
    ["billing", "refund"],
    ["bug"],
    ["bug"],
    ["onboarding"],
    ["onboarding", "vip"],
]


@dataclass
class DemoInbox:
    id: int
    channel: str
    agents: list[Agent]


async def seed(directory: Directory) -> tuple[str, str]:
    """Create the demo data; answers the demo admin's email and password."""
    service = directory.service
    async with directory.store.session() as session:
        if await _agent_by_email(session, DEMO_ADMIN) is not None:
            raise Conflict(f"demo data already exists (agent {DEMO_ADMIN}); nothing was changed")
    password = secrets.token_urlsafe(9)
    agents = [
        await directory.create_agent(
            email=email, name=name, role=role, password=password if role == "admin" else secrets.token_urlsafe(16)
        )
        for name, email, role in AGENTS
    ]
    dana, priya, marco, li = agents
    async with directory.store.transaction() as tx:
        tx.add_all([Label(name=name, color=color, description=text) for name, color, text in LABELS])
        tx.add_all([CannedResponse(short_code=code, content=text) for code, text in CANNED])
        tier1, billing = Team(name="Tier 1", description="First line"), Team(name="Billing", description="Money")
        tx.add_all([tier1, billing])
        await tx.flush()
        tx.add_all(
            [
                TeamMember(team_id=key(tier1), agent_id=key(priya)),
                TeamMember(team_id=key(tier1), agent_id=key(marco)),
                TeamMember(team_id=key(billing), agent_id=key(li)),
            ]
        )
    inboxes = []
    for name, channel, members in [
        ("Website chat", "webchat", [priya, marco]),
        ("Help desk API", "api", [marco, li]),
        ("Billing", "api", [priya, li]),
    ]:
        view = await directory.create_inbox(name=name, channel=channel, settings={})
        for agent in members:
            await directory.add_member(view["id"], key(agent))
        inboxes.append(DemoInbox(view["id"], channel, members))

    tokens = itertools.count(1)
    for number, customer in enumerate(CUSTOMERS):
        inbox = inboxes[number % len(inboxes)]
        subject, turns = THREADS[number % len(THREADS)]
        assignee = inbox.agents[number % len(inbox.agents)] if number % 5 != 4 else None
        sender = _sender(inbox, customer, number)
        conversation_id = 0
        for turn, text in turns:
            if turn == "c":
                delivered = await service.deliver(
                    Inbound(
                        inbox_id=inbox.id,
                        external_id=f"demo-{number}-{next(tokens)}",
                        thread_key=f"demo:{number}",
                        sender=sender,
                        text=text,
                        subject=subject,
                    )
                )
                conversation_id = delivered.conversation_id
                continue
            by = assignee or dana
            if turn == "n":
                await service.add_note(conversation_id, by=by, body=text, client_id=None)
                continue
            message, _ = await service.reply(conversation_id, by=by, body=text, client_id=None)
            await service.mark_sent(message["id"], None)
        status = STATUS_CYCLE[number % len(STATUS_CYCLE)]
        await service.update_conversation(
            conversation_id,
            ConversationChanges(
                assignee_id=key(assignee) if assignee else None,
                labels=LABELS_BY_THREAD[number % len(THREADS)],
                priority="high" if "vip" in LABELS_BY_THREAD[number % len(THREADS)] else UNSET,
                status=status,
                snoozed_until=utcnow() + timedelta(days=2) if status == "snoozed" else UNSET,
            ),
            by=dana,
        )
    return DEMO_ADMIN, password


def _sender(inbox: DemoInbox, name: str, number: int) -> Identity:
    email = name.lower().replace(" ", ".").replace("'", "") + "@example.net"
    if inbox.channel == "webchat":
        return Identity(IdentityKind.WEBCHAT, f"demo-visitor-{number}", name=name)
    return Identity(IdentityKind.EXTERNAL, f"{inbox.id}:demo-{number}", name=name, email=email, verified=True)


async def _agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return (await session.execute(select(Agent).where(col(Agent.email) == email))).scalar_one_or_none()
