"""limits: one CSAT survey per customer message, self-service event retention index

Revision ID: limits_1
Revises: inboxlist_1

`csatsurvey.incoming_at` is the conversation's last customer message a survey follows; unique with the
conversation, two racing resolutions cannot both send a survey (rows from before have NULL, which never
conflicts). `ix_selfserveevent_created` lets the retention timer delete old visitor actions by date.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "limits_1"
down_revision = "inboxlist_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("csatsurvey", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incoming_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_csatsurvey_conversation_incoming", ["conversation_id", "incoming_at"])
    with op.batch_alter_table("selfserveevent", schema=None) as batch_op:
        batch_op.create_index("ix_selfserveevent_created", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("selfserveevent", schema=None) as batch_op:
        batch_op.drop_index("ix_selfserveevent_created")
    with op.batch_alter_table("csatsurvey", schema=None) as batch_op:
        batch_op.drop_constraint("uq_csatsurvey_conversation_incoming", type_="unique")
        batch_op.drop_column("incoming_at")
