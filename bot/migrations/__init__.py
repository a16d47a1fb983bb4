"""The ledger's schema, as versioned Alembic migrations (bot/migrations/versions/).

`Ledger` brings every database it opens to HEAD: a fresh one gets the whole schema, an
older one its missing steps, a ledger made before migrations existed is adopted by the
baseline. A ledger newer than this dhbot is refused rather than written to.

A schema change is a new file in versions/ (`alembic -c bot/migrations/alembic.ini revision
-m "what"`) whose `down_revision` is the previous HEAD, and HEAD below set to its revision.
"""

HEAD = "0002"
