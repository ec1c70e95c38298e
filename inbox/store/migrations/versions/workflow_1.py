"""team workflow: business hours, agent routing capacity, SLA policies and clocks

Revision ID: workflow_1
Revises: limits_1
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "workflow_1"
down_revision = "trust_1"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
Text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "businesshours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", Text(length=100), nullable=False),
        sa.Column("calendar", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "agentcapacity",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    op.create_table(
        "slapolicy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", Text(length=100), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("priority", Text(length=16), nullable=True),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("next_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("warning_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inbox_id", "priority", name="uq_slapolicy_inbox_priority"),
    )
    op.create_table(
        "slaclock",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("target", Text(length=16), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("warning_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC(), nullable=False),
        sa.Column("elapsed", sa.Float(), nullable=False),
        sa.Column("running_since", UTC(), nullable=True),
        sa.Column("due_at", UTC(), nullable=True),
        sa.Column("met_at", UTC(), nullable=True),
        sa.Column("warned_at", UTC(), nullable=True),
        sa.Column("breached_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["policy_id"], ["slapolicy.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id", "target"),
    )
    with op.batch_alter_table("slaclock", schema=None) as batch_op:
        batch_op.create_index("ix_slaclock_due", ["due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slaclock", schema=None) as batch_op:
        batch_op.drop_index("ix_slaclock_due")
    op.drop_table("slaclock")
    op.drop_table("slapolicy")
    op.drop_table("agentcapacity")
    op.drop_table("businesshours")
