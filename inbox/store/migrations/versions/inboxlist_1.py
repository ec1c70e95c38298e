"""inbox list indexes: the list ordered by activity within one assignee and within one inbox, any status

Revision ID: inboxlist_1
Revises: 0001

`assignee=…` / `unassigned` without a status sorted every matching row (tens of thousands at 1M
conversations); an agent's list (their inboxes, any status) is read inbox by inbox in activity order
(`inbox.read.queries`), which needs (inbox_id, last_activity_at, id).
"""

from __future__ import annotations

from alembic import op

revision = "inboxlist_1"
down_revision = "csat_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_assignee_activity", ["assignee_id", "last_activity_at", "id"])
        batch_op.create_index("ix_conversation_inbox_activity", ["inbox_id", "last_activity_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_inbox_activity")
        batch_op.drop_index("ix_conversation_assignee_activity")
