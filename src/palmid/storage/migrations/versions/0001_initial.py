"""Initial palmid schema: tenants, keys, consents, subjects, encrypted templates, refs, lockouts, audit chain.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)
_GENESIS = "0" * 64

_SQLITE_GUARDS = (
    ("consents_no_update", "UPDATE", "consents", "consent records are immutable"),
    ("audit_events_no_update", "UPDATE", "audit_events", "the audit log is append-only"),
    ("audit_events_no_delete", "DELETE", "audit_events", "the audit log is append-only"),
)


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("notice_version", sa.String(64), nullable=False),
        sa.Column("notice_sha256", sa.String(64), nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("accepted_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("consent_id", sa.String(32), sa.ForeignKey("consents.id"), nullable=False, unique=True),
        sa.Column("enrolled_tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_interaction_at", _TS, nullable=False),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "subject_refs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("ref_sha256", sa.String(64), nullable=False),
        sa.Column(
            "subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.UniqueConstraint("tenant_id", "ref_sha256", name="uq_subject_refs_tenant_ref"),
    )
    op.create_table(
        "lockouts",
        sa.Column("lock_key", sa.String(120), primary_key=True),
        sa.Column(
            "subject_id", sa.String(32), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True, index=True
        ),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(32), nullable=True),
        sa.Column("subject_ref_hash", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": _GENESIS}])
    _create_guards()


def _create_guards() -> None:
    """Database-level refusal of UPDATE on consents and UPDATE/DELETE on audit events."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name, action, table, message in _SQLITE_GUARDS:
            op.execute(f"CREATE TRIGGER {name} BEFORE {action} ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END")
        return
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION palmid_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'palmid: % on % is not allowed', TG_OP, TG_TABLE_NAME; END $$"
        )
        for name, action, table, _message in _SQLITE_GUARDS:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON {table} FOR EACH ROW EXECUTE FUNCTION palmid_refuse_change()"
            )
        return
    raise RuntimeError(f"unsupported database dialect {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, _action, table, _message in _SQLITE_GUARDS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS palmid_refuse_change()")
    for table in (
        "audit_head",
        "audit_events",
        "lockouts",
        "subject_refs",
        "templates",
        "subjects",
        "consents",
        "api_keys",
        "tenants",
        "store_meta",
    ):
        op.drop_table(table)
