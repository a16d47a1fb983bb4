"""Baseline: the ledger as it was when migrations began.

A fresh database gets every table. A ledger made before migrations existed keeps its rows
and gets what it lacks: missing tables, and the columns that earlier releases added with
ad-hoc ALTER TABLE (runs.mode, orders.submitted_run and intent_fence, parts.heartbeat_at,
sent_at and queue).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Text) for name in names]


def _tables() -> list[tuple[str, list[sa.Column], dict[str, object]]]:
    """(name, columns, options) of every table; a fresh list each time (columns are bound
    to the table made from them)."""
    return [
        ("orders", [
            sa.Column("account", sa.Text, primary_key=True),
            sa.Column("order_no", sa.Text, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
            *_text("outcome", "reason", "note", "status_before", "status_after", "run_id"),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            *_text("error", "intent_at"),
            sa.Column("updated_at", sa.Text, nullable=False),
            *_text("review_result", "review_comment", "cancel_date", "message_sent_at",
                   "submitted_run"),
            sa.Column("intent_fence", sa.BigInteger),
        ], {}),
        ("events", [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.Text, nullable=False),
            sa.Column("run_id", sa.Text),
            sa.Column("account", sa.Text, nullable=False),
            sa.Column("order_no", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("detail", sa.Text),
        ], {"sqlite_autoincrement": True}),
        ("runs", [
            sa.Column("run_id", sa.Text, primary_key=True),
            sa.Column("job", sa.Text),
            sa.Column("started_at", sa.Text, nullable=False),
            *_text("finished_at", "summary", "report_dir", "mode"),
        ], {}),
        ("parts", [
            sa.Column("run_id", sa.Text, primary_key=True),
            sa.Column("part_no", sa.Integer, primary_key=True),
            sa.Column("account", sa.Text, nullable=False),
            sa.Column("orders", sa.Text, nullable=False),
            sa.Column("state", sa.Text, nullable=False),
            sa.Column("worker", sa.Text),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            *_text("started_at", "finished_at", "summary", "results", "error"),
            sa.Column("exit_code", sa.Integer),
            *_text("heartbeat_at", "sent_at", "queue"),
        ], {}),
        ("workers", [
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("queue", sa.Text, nullable=False),
            sa.Column("accounts", sa.Text, nullable=False),
            sa.Column("seen_at", sa.Text, nullable=False),
        ], {}),
        ("fences", [
            sa.Column("account", sa.Text, primary_key=True),
            sa.Column("token", sa.BigInteger, nullable=False),
        ], {}),
        ("sessions", [
            sa.Column("account", sa.Text, primary_key=True),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
        ], {}),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, columns, options in _tables():
        if name not in existing:
            op.create_table(name, *columns, **options)  # type: ignore[arg-type]
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        for column in columns:
            if column.name not in have:  # nullable, no default: safe on a filled table
                op.add_column(name, column)


def downgrade() -> None:
    raise NotImplementedError("the ledger's history is never dropped")
