"""acknowledgements and the customer portal's sign-in links

Revision ID: portal_1
Revises: workflow_1
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "portal_1"
down_revision = "reports_1"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
Text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "acknowledgement",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("address_hash", Text(length=64), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("acknowledgement", schema=None) as batch_op:
        batch_op.create_index("ix_acknowledgement_address", ["address_hash", "created_at"], unique=False)
    op.create_table(
        "portallink",
        sa.Column("id", Text(length=64), nullable=False),
        sa.Column("address_hash", Text(length=64), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("used_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("portallink", schema=None) as batch_op:
        batch_op.create_index("ix_portallink_address", ["address_hash", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("portallink", schema=None) as batch_op:
        batch_op.drop_index("ix_portallink_address")
    op.drop_table("portallink")
    with op.batch_alter_table("acknowledgement", schema=None) as batch_op:
        batch_op.drop_index("ix_acknowledgement_address")
    op.drop_table("acknowledgement")
