"""The ledger: what dhbot planned, was about to do, and did, per account and order.

SQLite in WAL mode with synchronous=FULL: a committed row survives the process being
killed and the machine losing power. The intent row is committed *before* the submit
click, so a crash between the two leaves "intent recorded, result unknown", which the
next run reads back from the portal before anything else happens to that order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class Outcome(StrEnum):
    """What happened to an order."""

    SUBMITTED = "submitted"  # request accepted, waiting for the platform's review
    CANCELLED = "cancelled"  # cancelled (at once, or review approved)
    ALREADY_REQUESTED = "already_requested"
    ALREADY_CANCELLED = "already_cancelled"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"  # the platform's review refused the request
    NEEDS_REVIEW = "needs_review"  # a person must look: result could not be determined
    FAILED = "failed"
    WOULD_SUBMIT = "would_submit"  # dry run
    SKIPPED = "skipped"  # not reached: the run was interrupted or the account stopped


# Outcomes after which a rerun must not act on the order again.
FINAL_OUTCOMES = frozenset({
    Outcome.SUBMITTED, Outcome.CANCELLED, Outcome.ALREADY_REQUESTED, Outcome.ALREADY_CANCELLED,
    Outcome.REJECTED,
})
# Outcomes meaning the platform has not decided yet (sync re-reads them).
PENDING_OUTCOMES = frozenset({Outcome.SUBMITTED, Outcome.ALREADY_REQUESTED})


class State(StrEnum):
    """Where an order is in its life inside dhbot."""

    PLANNED = "planned"
    INTENT = "intent"  # about to submit / submitted, result not yet known
    DONE = "done"


@dataclass(frozen=True)
class LedgerRow:
    """The ledger's record of one order."""

    account: str
    order_no: str
    state: State
    outcome: Outcome | None
    reason: str | None
    note: str | None
    status_before: str | None
    status_after: str | None
    run_id: str | None
    attempts: int
    error: str | None
    intent_at: str | None
    updated_at: str
    review_result: str | None
    review_comment: str | None
    cancel_date: str | None
    message_sent_at: str | None

    @property
    def is_final(self) -> bool:
        """True when a rerun must not act on this order again."""
        return self.state == State.DONE and self.outcome in FINAL_OUTCOMES

    @property
    def intent_unknown(self) -> bool:
        """True when a submit may have happened but its result was never recorded."""
        return self.state == State.INTENT


SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    account TEXT NOT NULL,
    order_no TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    reason TEXT,
    note TEXT,
    status_before TEXT,
    status_after TEXT,
    run_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    intent_at TEXT,
    updated_at TEXT NOT NULL,
    review_result TEXT,
    review_comment TEXT,
    cancel_date TEXT,
    message_sent_at TEXT,
    PRIMARY KEY (account, order_no)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    run_id TEXT,
    account TEXT NOT NULL,
    order_no TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT,
    report_dir TEXT
);
"""


def now_iso() -> str:
    """The current time, UTC, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """Durable per-order records in SQLite (one file per state directory)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _row(row: sqlite3.Row | None) -> LedgerRow | None:
        if row is None:
            return None
        data = dict(row)
        data["state"] = State(data["state"])
        data["outcome"] = Outcome(data["outcome"]) if data["outcome"] else None
        return LedgerRow(**data)

    def get(self, account: str, order_no: str) -> LedgerRow | None:
        """The record of one order, or None if the ledger has never seen it."""
        cur = self._db.execute("SELECT * FROM orders WHERE account=? AND order_no=?",
                               (account, order_no))
        return self._row(cur.fetchone())

    def rows(self, account: str | None = None, order_nos: Iterable[str] | None = None,
             outcomes: Iterable[Outcome] | None = None) -> list[LedgerRow]:
        """Records filtered by account, order numbers and outcomes."""
        sql = "SELECT * FROM orders WHERE 1=1"
        args: list[Any] = []
        if account is not None:
            sql += " AND account=?"
            args.append(account)
        if order_nos is not None:
            nos = list(order_nos)
            sql += f" AND order_no IN ({','.join('?' * len(nos))})"
            args.extend(nos)
        if outcomes is not None:
            outs = [str(o) for o in outcomes]
            sql += f" AND outcome IN ({','.join('?' * len(outs))})"
            args.extend(outs)
        sql += " ORDER BY account, order_no"
        return [r for r in (self._row(x) for x in self._db.execute(sql, args)) if r]

    def plan(self, run_id: str, account: str, orders: Iterable[tuple[str, str, str]]) -> None:
        """Record the orders a run is about to work on (keeps existing records)."""
        at = now_iso()
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO orders (account, order_no, state, reason, note, run_id,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(account, no, State.PLANNED, reason, note, run_id, at)
                 for no, reason, note in orders],
            )

    def record_intent(self, run_id: str, account: str, order_no: str, reason: str, note: str,
                      status_before: str) -> None:
        """Commit, durably, that a submit is about to happen. Call before the click."""
        at = now_iso()
        with self._tx() as db:
            db.execute(
                "UPDATE orders SET state=?, reason=?, note=?, status_before=?, run_id=?,"
                " intent_at=?, updated_at=?, error=NULL WHERE account=? AND order_no=?",
                (State.INTENT, reason, note, status_before, run_id, at, at, account, order_no),
            )
            self._event(db, run_id, account, order_no, "intent", {"reason": reason})

    def record_result(self, run_id: str, account: str, order_no: str, outcome: Outcome, *,
                      status_before: str | None, status_after: str | None, attempts: int,
                      error: str | None = None, keep_intent: bool = False) -> None:
        """Record what happened. keep_intent leaves the order marked "result unknown"."""
        at = now_iso()
        state = State.INTENT if keep_intent else State.DONE
        with self._tx() as db:
            db.execute(
                "UPDATE orders SET state=?, outcome=?, status_before=COALESCE(?, status_before),"
                " status_after=?, run_id=?, attempts=?, error=?, updated_at=?"
                " WHERE account=? AND order_no=?",
                (state, outcome, status_before, status_after, run_id, attempts, error, at,
                 account, order_no),
            )
            self._event(db, run_id, account, order_no, "result",
                        {"outcome": outcome, "status_after": status_after, "error": error})

    def record_review(self, run_id: str, account: str, order_no: str, outcome: Outcome, *,
                      status_after: str, review_result: str | None,
                      review_comment: str | None, cancel_date: str | None) -> None:
        """Record the platform's review decision read back by a sync."""
        at = now_iso()
        with self._tx() as db:
            db.execute(
                "UPDATE orders SET state=?, outcome=?, status_after=?, review_result=?,"
                " review_comment=?, cancel_date=?, updated_at=? WHERE account=? AND order_no=?",
                (State.DONE, outcome, status_after, review_result, review_comment, cancel_date,
                 at, account, order_no),
            )
            self._event(db, run_id, account, order_no, "review",
                        {"outcome": outcome, "comment": review_comment})

    def record_message(self, run_id: str, account: str, order_no: str) -> None:
        """Record that the buyer message was sent (a rerun never sends it again)."""
        at = now_iso()
        with self._tx() as db:
            db.execute("UPDATE orders SET message_sent_at=?, updated_at=? WHERE account=? AND "
                       "order_no=?", (at, at, account, order_no))
            self._event(db, run_id, account, order_no, "message", None)

    def _event(self, db: sqlite3.Connection, run_id: str | None, account: str, order_no: str,
               kind: str, detail: dict[str, Any] | None) -> None:
        db.execute("INSERT INTO events (at, run_id, account, order_no, kind, detail) VALUES "
                   "(?, ?, ?, ?, ?, ?)", (now_iso(), run_id, account, order_no, kind,
                                          json.dumps(detail, ensure_ascii=False) if detail
                                          else None))

    def start_run(self, run_id: str, job: str, report_dir: Path) -> None:
        """Record that a run started."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO runs (run_id, job, started_at, report_dir) "
                       "VALUES (?, ?, ?, ?)", (run_id, job, now_iso(), str(report_dir)))

    def finish_run(self, run_id: str, summary: dict[str, int]) -> None:
        """Record a run's end and its counts."""
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at=?, summary=? WHERE run_id=?",
                       (now_iso(), json.dumps(summary), run_id))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent runs, newest first."""
        cur = self._db.execute("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC "
                               "LIMIT ?", (limit,))
        return [dict(r) for r in cur]
