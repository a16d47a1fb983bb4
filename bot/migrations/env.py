"""Alembic's environment: dhbot hands it an open connection (see bot.ledger.migrate)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic revision` needs no database
    raise SystemExit("dhbot runs its migrations itself when it opens a ledger; use "
                     "`alembic revision` only to write a new one")
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
