"""The web console (`dhbot serve`): its users, its jobs and its audit trail.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "console_jobs",
        sa.Column("job_id", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text) for name in ("name", "account", "upload_name", "job_file")),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("uploaded_at", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text) for name in ("preview_run", "run_id", "decided_by",
                                                "decided_at", "decision", "comment", "error")),
        sa.Column("exit_code", sa.Integer),
    )
    op.create_table(
        "console_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("actor", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger's history is never dropped")
