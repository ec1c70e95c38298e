"""email continuity for live chat: the per-conversation continuity table

Revision ID: continuity_1
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "continuity_1"
down_revision = "selfserve_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "continuity",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("seen_up_to", sa.Integer(), nullable=False),
        sa.Column("emailed_up_to", sa.Integer(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("continuity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_continuity_due_at"), ["due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("continuity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_continuity_due_at"))
    op.drop_table("continuity")
