"""Purposes: encrypted subject attributes (payment token, membership id, date of birth) and idempotency records.

Revision ID: 0002_purposes
Revises: 0001_initial
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_purposes"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subject_attributes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("subject_id", "kind", "scope", name="uq_subject_attributes_kind"),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "key_sha256", name="uq_idempotency_records_key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_records")
    op.drop_table("subject_attributes")
