"""trust: the append-only audit log

Revision ID: trust_1
Revises: limits_1

`auditentry` holds who did what, when and from where (sign-ins, settings, inboxes, roles, tokens, exports,
erasures, merges). The `supervisor` role needs no change: `agent.role` is a string.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "trust_1"
down_revision = "limits_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditentry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("target_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auditentry_actor", "auditentry", ["actor_id", "id"])
    op.create_index("ix_auditentry_action", "auditentry", ["action", "id"])
    op.create_index("ix_auditentry_created", "auditentry", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_auditentry_created", table_name="auditentry")
    op.drop_index("ix_auditentry_action", table_name="auditentry")
    op.drop_index("ix_auditentry_actor", table_name="auditentry")
    op.drop_table("auditentry")
