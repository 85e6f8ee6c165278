"""Search codes: each palm's sealed identification-index code (next to its template), and pending key destructions.

``search_codes`` holds, per template row, the index code computed at enrollment, sealed with the subject's data key
(its own AEAD purpose, bound to the code format), so the start-up rebuild reads ~0.6 KB per palm instead of the
~15 KB template. It is a table of its own, not a column of ``templates``: SQLite keeps a 15 KB row in a chain of
overflow pages, and reading a column stored after the template would walk that whole chain for every palm.

``pending_key_destructions`` records, in the erasure transaction, the data keys still to destroy in the keystore,
so that a crash between the two steps is repaired at the next open without scanning the whole keystore.

Revision ID: 0003_search_codes
Revises: 0002_purposes
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_search_codes"
down_revision: str | None = "0002_purposes"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "search_codes",
        sa.Column(
            "template_id",
            sa.Integer,
            sa.ForeignKey("templates.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("code_format", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "pending_key_destructions",
        sa.Column("subject_id", sa.String(32), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_key_destructions")
    op.drop_table("search_codes")
