"""The ledger: what dhbot planned, was about to do, and did, per account and order.

An account is its portal identity (`AccountConfig.key`: portal host + user name), never its
name in the configuration: renaming an account keeps its history, and `adopt` moves rows
of ledgers written before that to the identity.

One interface, two databases (SQLAlchemy): SQLite for one machine (the default; WAL mode
with synchronous=FULL, so a committed row survives the process being killed and the
machine losing power) and PostgreSQL when workers on many machines share the work. The
intent row is committed *before* the submit click, so a crash between the two leaves
"intent recorded, result unknown", which the next run reads back from the portal before
anything else happens to that order. With distributed workers, the intent is also fenced:
a worker whose account lock was taken over can no longer record one (see `record_intent`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url

from bot.errors import ConfigError, LockLost, first_line
from bot.log import mask_url, redactor
from bot.outcomes import FINAL_OUTCOMES, Outcome, State, moves_forward

if TYPE_CHECKING:
    from bot.config import Settings


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
    submitted_run: str | None = None  # the run that clicked submit (kept for good)
    intent_fence: int | None = None  # the lock's fencing token when the intent was recorded

    @property
    def is_final(self) -> bool:
        """True when a rerun must not act on this order again."""
        return self.state == State.DONE and self.outcome in FINAL_OUTCOMES

    @property
    def intent_unknown(self) -> bool:
        """True when a submit may have happened but its result was never recorded."""
        return self.state == State.INTENT


@dataclass(frozen=True)
class RunRow:
    """The ledger's record of one run."""

    run_id: str
    job: str
    started_at: str
    finished_at: str | None
    summary: dict[str, int]  # outcome -> count, once finished
    report_dir: str | None
    mode: str  # local | distributed

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> RunRow:
        return cls(run_id=data["run_id"], job=data["job"] or "", started_at=data["started_at"],
                   finished_at=data["finished_at"],
                   summary=json.loads(data["summary"]) if data["summary"] else {},
                   report_dir=data["report_dir"], mode=data["mode"] or "local")


@dataclass(frozen=True)
class PartRow:
    """The ledger's record of one part of a distributed run."""

    run_id: str
    part_no: int
    account: str  # its name in the configuration
    orders: list[dict[str, Any]]  # the job's orders (JobOrder fields)
    state: str  # queued | running | done | failed
    worker: str | None
    attempts: int
    started_at: str | None
    finished_at: str | None
    summary: dict[str, int] | None
    results: list[dict[str, Any]]  # the orders' results, report.json's shape
    error: str | None
    exit_code: int | None
    heartbeat_at: str | None
    sent_at: str | None
    queue: str | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> PartRow:
        return cls(**{**data, "attempts": int(data["attempts"] or 0),
                      "orders": json.loads(data["orders"]),
                      "summary": json.loads(data["summary"]) if data["summary"] else None,
                      "results": json.loads(data["results"]) if data["results"] else []})


@dataclass(frozen=True)
class WorkerRow:
    """A worker that said it is up, and the accounts it can run."""

    name: str
    queue: str
    accounts: list[str]
    seen_at: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> WorkerRow:
        return cls(name=data["name"], queue=data["queue"],
                   accounts=json.loads(data["accounts"]), seen_at=data["seen_at"])


metadata = MetaData()

orders_table = Table(
    "orders", metadata,
    Column("account", Text, primary_key=True),
    Column("order_no", Text, primary_key=True),
    Column("state", Text, nullable=False),
    *(Column(name, Text) for name in ("outcome", "reason", "note", "status_before",
                                      "status_after", "run_id")),
    Column("attempts", Integer, nullable=False, server_default="0"),
    *(Column(name, Text) for name in ("error", "intent_at")),
    Column("updated_at", Text, nullable=False),
    *(Column(name, Text) for name in ("review_result", "review_comment", "cancel_date",
                                      "message_sent_at", "submitted_run")),
    Column("intent_fence", BigInteger),
)
Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("run_id", Text),
    Column("account", Text, nullable=False),
    Column("order_no", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("detail", Text),
    sqlite_autoincrement=True,
)
Table(
    "runs", metadata,
    Column("run_id", Text, primary_key=True),
    Column("job", Text),
    Column("started_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("summary", Text),
    Column("report_dir", Text),
    Column("mode", Text),  # local | distributed
)
# A distributed run's work: one row per task (a slice of one account's orders).
Table(
    "parts", metadata,
    Column("run_id", Text, primary_key=True),
    Column("part_no", Integer, primary_key=True),
    Column("account", Text, nullable=False),
    Column("orders", Text, nullable=False),  # JSON list of the job's orders
    Column("state", Text, nullable=False),  # queued | running | done | failed
    Column("worker", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("summary", Text),
    Column("results", Text),  # JSON list of the orders' results (report.json's shape)
    Column("error", Text),  # why a failed part stopped
    Column("exit_code", Integer),  # the part's exit status, as `dhbot run` would have exited
    Column("heartbeat_at", Text),  # a running part's worker writes it every few seconds
    Column("sent_at", Text),  # when its task message was last put on the queue
    Column("queue", Text),  # the queue its message goes to
)
# The workers that are up, and the accounts each can run (see `dhbot submit`).
Table(
    "workers", metadata,
    Column("name", Text, primary_key=True),
    Column("queue", Text, nullable=False),
    Column("accounts", Text, nullable=False),  # JSON list of config account names
    Column("seen_at", Text, nullable=False),
)
# Fencing tokens: the newest holder of each account's lock (see take_fence, record_intent).
Table(
    "fences", metadata,
    Column("account", Text, primary_key=True),
    Column("token", BigInteger, nullable=False),
)
# Saved browser sessions, encrypted, for workers on many machines.
Table(
    "sessions", metadata,
    Column("account", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# The web console (`dhbot serve`): its users, the jobs uploaded to it, and who did what.
Table(
    "console_users", metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),  # operator | approver | admin
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("created_at", Text, nullable=False),
)
Table(
    "console_jobs", metadata,
    Column("job_id", Text, primary_key=True),
    *(Column(name, Text) for name in ("name", "account", "upload_name", "job_file")),
    Column("orders", Integer, nullable=False),
    Column("state", Text, nullable=False),  # see bot.console.store.JobState
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", Text, nullable=False),
    *(Column(name, Text) for name in ("preview_run", "run_id", "decided_by", "decided_at",
                                      "decision", "comment", "error")),
    Column("exit_code", Integer),
)
Table(
    "console_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("job_id", Text),
    Column("actor", Text),  # the console user ("user" is reserved in SQL)
    Column("action", Text, nullable=False),
    Column("detail", Text),
    sqlite_autoincrement=True,
)

# The tables above are the schema as the code reads and writes it; a database gets there
# through the migrations in bot/migrations (a test checks the two agree).
MIGRATIONS = Path(__file__).parent / "migrations"


def schema_version(conn: Connection) -> str | None:
    """The ledger's migration revision (None: made before migrations, or empty)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    version: str | None = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return version


def migrate(conn: Connection) -> str | None:
    """Bring the ledger's schema to the newest revision, inside the caller's transaction;
    returns the revision it had. A ledger from a newer dhbot is refused, not written."""
    from bot.migrations import HEAD

    current = schema_version(conn)
    if current == HEAD:
        return current
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if current is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except CommandError as exc:
            raise ConfigError(f"the ledger's schema is revision {current}, which this dhbot "
                              f"does not know (its newest is {HEAD}): it was written by a "
                              "newer dhbot; upgrade dhbot before using this ledger") from exc
    fresh = current is None and not inspect(conn).has_table("orders")
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    # A new ledger is nothing to say; an existing one brought up to date is.
    logger.log("DEBUG" if fresh else "INFO", "ledger: schema {} -> {}",
               current or "(before migrations)", HEAD)
    return current


def now_iso() -> str:
    """The current time, UTC, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def ledger_url(target: Path | str) -> str:
    """A SQLAlchemy URL for a ledger: a Path is a SQLite file; postgresql:// uses psycopg 3."""
    if isinstance(target, Path):
        return f"sqlite:///{target}"
    for prefix in ("postgresql://", "postgres://"):
        if target.startswith(prefix):
            return "postgresql+psycopg://" + target[len(prefix):]
    return target


def sqlite_path(target: Path | str) -> Path | None:
    """The SQLite file behind a ledger URL, or None for a database server."""
    url = make_url(ledger_url(target))
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database)


class Ledger:
    """Durable per-order records in SQLite (one file per state folder) or PostgreSQL."""

    def __init__(self, target: Path | str) -> None:
        url = ledger_url(target)
        self.path = sqlite_path(target)
        self.url = mask_url(url)
        redactor.add_url(url)  # a password in the URL never reaches a log
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._engine = create_engine(url, connect_args={"timeout": 30})
                event.listen(self._engine, "connect", _sqlite_connect)
                event.listen(self._engine, "begin", _sqlite_begin)
            else:
                self._engine = create_engine(url, pool_pre_ping=True, pool_size=2)
        except Exception as exc:  # unknown driver or malformed URL
            raise ConfigError(f"ledger {self.url}: {exc}") from exc
        self.is_sqlite = self.path is not None
        try:
            self._create()
        except Exception as exc:
            self._engine.dispose()
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"cannot open the ledger {self.url}: "
                              f"{first_line(exc)}") from exc
        if self.path is not None:
            self.path.chmod(0o600)

    def _create(self) -> None:
        with self._tx() as conn:
            if not self.is_sqlite:  # workers may start together: one creates the tables
                conn.execute(text("SELECT pg_advisory_xact_lock(7001)"))
            migrate(conn)

    def close(self) -> None:
        """Close the database."""
        self._engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(dhbot_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, for the few modules with tables of their own here (the web
        console's users and jobs)."""
        with self._tx() as conn:
            yield conn

    def query(self, sql: str, args: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a read-only SQL query, as dicts."""
        return self._query(sql, args)

    def _query(self, sql: str, args: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), dict(args or {})).mappings()]

    @staticmethod
    def _row(data: dict[str, Any] | None) -> LedgerRow | None:
        if data is None:
            return None
        data["state"] = State(data["state"])
        data["outcome"] = Outcome(data["outcome"]) if data["outcome"] else None
        return LedgerRow(**data)

    def get(self, account: str, order_no: str) -> LedgerRow | None:
        """The record of one order, or None if the ledger has never seen it."""
        found = self._query("SELECT * FROM orders WHERE account=:a AND order_no=:n",
                            {"a": account, "n": order_no})
        return self._row(found[0] if found else None)

    def rows(self, account: str | None = None, order_nos: Iterable[str] | None = None,
             outcomes: Iterable[Outcome] | None = None,
             run_id: str | None = None) -> list[LedgerRow]:
        """Records filtered by account, order numbers, outcomes and last run."""
        sql = "SELECT * FROM orders WHERE 1=1"
        args: dict[str, Any] = {}
        if account is not None:
            sql += " AND account=:account"
            args["account"] = account
        if run_id is not None:
            sql += " AND run_id=:run_id"
            args["run_id"] = run_id
        if order_nos is not None:
            nos = list(order_nos)
            args.update({f"n{i}": no for i, no in enumerate(nos)})
            sql += f" AND order_no IN ({','.join(f':n{i}' for i in range(len(nos))) or 'NULL'})"
        if outcomes is not None:
            outs = [str(o) for o in outcomes]
            args.update({f"o{i}": out for i, out in enumerate(outs)})
            sql += f" AND outcome IN ({','.join(f':o{i}' for i in range(len(outs))) or 'NULL'})"
        sql += " ORDER BY account, order_no"
        return [r for r in (self._row(x) for x in self._query(sql, args)) if r]

    def plan(self, run_id: str, account: str, orders: Iterable[tuple[str, str, str]]) -> None:
        """Record the orders a run is about to work on (keeps existing records)."""
        at = now_iso()
        params = [{"a": account, "n": no, "s": State.PLANNED.value, "r": reason, "note": note,
                   "run": run_id, "at": at} for no, reason, note in orders]
        if not params:
            return
        with self._tx() as db:
            db.execute(text(
                "INSERT INTO orders (account, order_no, state, reason, note, run_id, updated_at)"
                " VALUES (:a, :n, :s, :r, :note, :run, :at) ON CONFLICT DO NOTHING"), params)

    def record_intent(self, run_id: str, account: str, order_no: str, reason: str, note: str,
                      status_before: str, fence: int | None = None) -> None:
        """Commit, durably, that a submit is about to happen. Call before the click.

        `fence` is the token a holder of the shared account lock took from `take_fence`.
        The intent is recorded only if no newer token has been taken for the account;
        otherwise LockLost is raised and nothing is written, so a worker whose lock expired
        and was taken over by another can never submit after the new holder started. The
        token is kept with the intent: a newer holder that finds it unfinished waits for
        the older holder's submit to have landed before it reads the order back.
        """
        at = now_iso()
        with self._tx() as db:
            if fence is not None:
                self._check_fence(db, account, fence)
            db.execute(text(
                "UPDATE orders SET state=:s, reason=:r, note=:note, status_before=:sb,"
                " run_id=:run, submitted_run=:run, intent_at=:at, updated_at=:at, error=NULL,"
                " intent_fence=:fence WHERE account=:a AND order_no=:n"),
                {"s": State.INTENT.value, "r": reason, "note": note, "sb": status_before,
                 "run": run_id, "at": at, "a": account, "n": order_no, "fence": fence})
            self._event(db, run_id, account, order_no, "intent", {"reason": reason})

    def take_fence(self, account: str) -> int:
        """A new fencing token for the account: strictly greater than every token taken
        before, whatever happened to Redis (taken by `UPDATE … RETURNING` in the ledger,
        the one store that is never reset)."""
        with self._tx() as db:
            token = db.execute(text(
                "INSERT INTO fences (account, token) VALUES (:a, 1) ON CONFLICT (account)"
                " DO UPDATE SET token=fences.token + 1 RETURNING token"),
                {"a": account}).scalar_one()
        return int(token)

    def _check_fence(self, db: Connection, account: str, fence: int) -> None:
        lock = "" if self.is_sqlite else " FOR UPDATE"  # SQLite: BEGIN IMMEDIATE already
        newest = db.execute(text(f"SELECT token FROM fences WHERE account=:a{lock}"),
                            {"a": account}).scalar()
        if newest != fence:
            raise LockLost(f"account {account!r}: a newer holder of its lock exists "
                           f"(fencing token {fence} is stale, the newest is {newest}); "
                           "not submitting")

    def record_result(self, run_id: str, account: str, order_no: str, outcome: Outcome, *,
                      status_before: str | None, status_after: str | None, attempts: int,
                      error: str | None = None, keep_intent: bool = False) -> None:
        """Record what happened. keep_intent leaves the order marked "result unknown"."""
        at = now_iso()
        state = State.INTENT if keep_intent else State.DONE
        with self._tx() as db:
            if not self._may_record(db, run_id, account, order_no, outcome, error):
                return
            db.execute(text(
                "UPDATE orders SET state=:s, outcome=:o, status_before=COALESCE(:sb,"
                " status_before), status_after=:sa, run_id=:run, attempts=:att, error=:err,"
                " updated_at=:at WHERE account=:a AND order_no=:n"),
                {"s": state.value, "o": str(outcome), "sb": status_before, "sa": status_after,
                 "run": run_id, "att": attempts, "err": error, "at": at, "a": account,
                 "n": order_no})
            self._event(db, run_id, account, order_no, "result",
                        {"outcome": outcome, "status_after": status_after, "error": error})

    def record_review(self, run_id: str, account: str, order_no: str, outcome: Outcome, *,
                      status_after: str, review_result: str | None,
                      review_comment: str | None, cancel_date: str | None) -> None:
        """Record the platform's review decision read back by a sync."""
        at = now_iso()
        with self._tx() as db:
            if not self._may_record(db, run_id, account, order_no, outcome, review_comment):
                return
            db.execute(text(
                "UPDATE orders SET state=:s, outcome=:o, status_after=:sa, review_result=:rr,"
                " review_comment=:rc, cancel_date=:cd, updated_at=:at"
                " WHERE account=:a AND order_no=:n"),
                {"s": State.DONE.value, "o": str(outcome), "sa": status_after,
                 "rr": review_result, "rc": review_comment, "cd": cancel_date, "at": at,
                 "a": account, "n": order_no})
            self._event(db, run_id, account, order_no, "review",
                        {"outcome": outcome, "comment": review_comment})

    def record_message(self, run_id: str, account: str, order_no: str) -> None:
        """Record that the buyer message was sent (a rerun never sends it again)."""
        at = now_iso()
        with self._tx() as db:
            db.execute(text("UPDATE orders SET message_sent_at=:at, updated_at=:at"
                            " WHERE account=:a AND order_no=:n"),
                       {"at": at, "a": account, "n": order_no})
            self._event(db, run_id, account, order_no, "message", None)

    def _may_record(self, db: Connection, run_id: str, account: str, order_no: str,
                    outcome: Outcome, error: str | None) -> bool:
        """True when `outcome` may replace what the ledger holds; otherwise the attempt is
        kept as an event only (see `moves_forward`)."""
        found = db.execute(text("SELECT state, outcome FROM orders WHERE account=:a AND"
                                " order_no=:n"), {"a": account, "n": order_no}).first()
        if found is None:
            return True
        state = State(found[0]) if found[0] else None
        old = Outcome(found[1]) if found[1] else None
        if moves_forward(state, old, outcome):
            return True
        self._event(db, run_id, account, order_no, "kept",
                    {"outcome": old, "not_recorded": outcome, "error": error})
        return False

    @staticmethod
    def _event(db: Connection, run_id: str | None, account: str, order_no: str, kind: str,
               detail: dict[str, Any] | None) -> None:
        db.execute(text("INSERT INTO events (at, run_id, account, order_no, kind, detail)"
                        " VALUES (:at, :run, :a, :n, :k, :d)"),
                   {"at": now_iso(), "run": run_id, "a": account, "n": order_no, "k": kind,
                    "d": json.dumps(detail, ensure_ascii=False) if detail else None})

    def events(self, account: str, order_no: str) -> list[dict[str, Any]]:
        """Every event of one order, oldest first."""
        return self._query("SELECT * FROM events WHERE account=:a AND order_no=:n ORDER BY id",
                           {"a": account, "n": order_no})

    def adopt(self, keys: Mapping[str, str]) -> int:
        """Move what is kept under a configured account name (ledgers written before rows
        were keyed by identity) to its portal identity key: orders, their events, the
        fencing token and the saved session. What the identity already has is never
        overwritten. Returns the number of orders moved."""
        pairs = {name: key for name, key in keys.items() if name != key}
        if not pairs:
            return 0
        marks = ",".join(f":n{i}" for i in range(len(pairs)))
        names = {f"n{i}": name for i, name in enumerate(pairs)}
        found = self._query(
            f"SELECT account FROM orders WHERE account IN ({marks}) UNION SELECT account"
            f" FROM sessions WHERE account IN ({marks}) UNION SELECT account FROM fences"
            f" WHERE account IN ({marks})", names)
        if not found:  # the usual case: nothing to move, no write
            return 0
        moved = 0
        with self._tx() as db:
            for name in {row["account"] for row in found}:
                args = {"n": name, "k": pairs[name]}
                moved += db.execute(text(
                    "UPDATE orders SET account=:k WHERE account=:n AND order_no NOT IN"
                    " (SELECT order_no FROM orders WHERE account=:k)"), args).rowcount
                db.execute(text(
                    "UPDATE events SET account=:k WHERE account=:n AND order_no NOT IN"
                    " (SELECT order_no FROM orders WHERE account=:n)"), args)
                for table in ("fences", "sessions"):
                    db.execute(text(
                        f"UPDATE {table} SET account=:k WHERE account=:n AND NOT EXISTS"
                        f" (SELECT 1 FROM {table} WHERE account=:k)"), args)
        return moved

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, run_id: str, job: str, report_dir: Path, mode: str = "local") -> None:
        """Record that a run started."""
        with self._tx() as db:
            db.execute(text(
                "INSERT INTO runs (run_id, job, started_at, report_dir, mode)"
                " VALUES (:run, :job, :at, :dir, :mode) ON CONFLICT (run_id) DO UPDATE SET"
                " job=excluded.job, started_at=excluded.started_at,"
                " report_dir=excluded.report_dir, mode=excluded.mode"),
                {"run": run_id, "job": job, "at": now_iso(), "dir": str(report_dir),
                 "mode": mode})

    def finish_run(self, run_id: str, summary: dict[str, int]) -> None:
        """Record a run's end and its counts."""
        with self._tx() as db:
            db.execute(text("UPDATE runs SET finished_at=:at, summary=:s WHERE run_id=:run"),
                       {"at": now_iso(), "s": json.dumps(summary), "run": run_id})

    def runs(self, limit: int = 20) -> list[RunRow]:
        """Recent runs, newest first."""
        return [RunRow.of(r) for r in self._query(
            "SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT :limit",
            {"limit": limit})]

    def run(self, run_id: str) -> RunRow | None:
        """One run's record, or None."""
        found = self._query("SELECT * FROM runs WHERE run_id=:run", {"run": run_id})
        return RunRow.of(found[0]) if found else None

    # -- the parts of a distributed run ----------------------------------------------------

    def add_parts(self, run_id: str, parts: list[tuple[str, str]], queue: str = "dhbot") -> None:
        """Record a distributed run's parts: (account, orders as JSON), numbered from 1."""
        at = now_iso()
        with self._tx() as db:  # recorded again after a lost commit: no second copy
            db.execute(text("INSERT INTO parts (run_id, part_no, account, orders, state,"
                            " sent_at, queue) VALUES (:run, :no, :a, :o, 'queued', :at, :q)"
                            " ON CONFLICT DO NOTHING"),
                       [{"run": run_id, "no": no, "a": account, "o": orders, "at": at,
                         "q": queue} for no, (account, orders) in enumerate(parts, start=1)])

    def parts(self, run_id: str) -> list[PartRow]:
        """A distributed run's parts, in order."""
        return [PartRow.of(r) for r in self._query(
            "SELECT * FROM parts WHERE run_id=:run ORDER BY part_no", {"run": run_id})]

    def part(self, run_id: str, part_no: int) -> PartRow | None:
        """One part, or None."""
        found = self._query("SELECT * FROM parts WHERE run_id=:run AND part_no=:no",
                            {"run": run_id, "no": part_no})
        return PartRow.of(found[0]) if found else None

    def start_part(self, run_id: str, part_no: int, worker: str) -> None:
        """A worker took the part (again, after a worker died: attempts counts them)."""
        at = now_iso()
        with self._tx() as db:
            db.execute(text("UPDATE parts SET state='running', worker=:w, started_at=:at,"
                            " heartbeat_at=:at, attempts=attempts+1"
                            " WHERE run_id=:run AND part_no=:no"),
                       {"w": worker, "at": at, "run": run_id, "no": part_no})

    def beat_part(self, run_id: str, part_no: int, worker: str) -> None:
        """The part's worker is alive and still working on it."""
        with self._tx() as db:
            db.execute(text("UPDATE parts SET heartbeat_at=:at WHERE run_id=:run AND"
                            " part_no=:no AND state='running' AND worker=:w"),
                       {"at": now_iso(), "run": run_id, "no": part_no, "w": worker})

    def unfinished_parts(self, queue: str, run_id: str | None = None) -> list[PartRow]:
        """Parts of a queue still queued or running (of one run, or of every run)."""
        sql = ("SELECT * FROM parts WHERE state IN ('queued', 'running')"
               " AND COALESCE(queue, :q)=:q")
        if run_id is not None:
            sql += " AND run_id=:run"
        return [PartRow.of(r) for r in
                self._query(sql + " ORDER BY run_id, part_no", {"run": run_id, "q": queue})]

    def claim_resend(self, run_id: str, part_no: int, seen_sent_at: str | None,
                     why: str) -> bool:
        """Mark an unfinished part as queued again, only if nobody else did since it was
        read (`sent_at` unchanged): True when this caller must put its message back."""
        with self._tx() as db:
            claimed = db.execute(text(
                "UPDATE parts SET state='queued', sent_at=:at, error=:why, heartbeat_at=NULL"
                " WHERE run_id=:run AND part_no=:no AND state IN ('queued', 'running')"
                " AND COALESCE(sent_at, '')=:seen"),
                {"at": now_iso(), "why": why, "run": run_id, "no": part_no,
                 "seen": seen_sent_at or ""}).rowcount
        return bool(claimed == 1)

    def note_part(self, run_id: str, part_no: int, why: str) -> None:
        """Say why a queued part is waiting (shown by `dhbot runs` and `dhbot wait`)."""
        with self._tx() as db:
            db.execute(text("UPDATE parts SET error=:why WHERE run_id=:run AND part_no=:no"
                            " AND state='queued'"), {"why": why, "run": run_id, "no": part_no})

    # -- workers ---------------------------------------------------------------------------

    def worker_seen(self, name: str, queue: str, accounts: list[str]) -> None:
        """A worker is up and can run these accounts."""
        with self._tx() as db:
            db.execute(text("INSERT INTO workers (name, queue, accounts, seen_at)"
                            " VALUES (:n, :q, :a, :at) ON CONFLICT (name) DO UPDATE SET"
                            " queue=excluded.queue, accounts=excluded.accounts,"
                            " seen_at=excluded.seen_at"),
                       {"n": name, "q": queue, "a": json.dumps(accounts), "at": now_iso()})

    def worker_gone(self, name: str) -> None:
        """A worker shut down."""
        with self._tx() as db:
            db.execute(text("DELETE FROM workers WHERE name=:n"), {"n": name})

    def workers(self, queue: str) -> list[WorkerRow]:
        """The workers of a queue, with the accounts each can run."""
        return [WorkerRow.of(r) for r in
                self._query("SELECT * FROM workers WHERE queue=:q ORDER BY name", {"q": queue})]

    def finish_part(self, run_id: str, part_no: int, *, state: str, summary: dict[str, int],
                    results: list[dict[str, Any]], exit_code: int,
                    error: str | None = None) -> None:
        """Record a part's end: done (every order has its outcome) or failed."""
        with self._tx() as db:
            db.execute(text("UPDATE parts SET state=:s, finished_at=:at, summary=:sum,"
                            " results=:res, error=:err, exit_code=:code"
                            " WHERE run_id=:run AND part_no=:no"),
                       {"s": state, "at": now_iso(), "sum": json.dumps(summary),
                        "res": json.dumps(results, ensure_ascii=False), "err": error,
                        "code": exit_code, "run": run_id, "no": part_no})

    def requeue_part(self, run_id: str, part_no: int, why: str) -> None:
        """The part's worker stopped before the end (lock lost, shut down): queued again."""
        with self._tx() as db:
            db.execute(text("UPDATE parts SET state='queued', error=:why, sent_at=:at,"
                            " heartbeat_at=NULL"
                            " WHERE run_id=:run AND part_no=:no AND state='running'"),
                       {"why": why, "at": now_iso(), "run": run_id, "no": part_no})

    # -- saved sessions --------------------------------------------------------------------

    def save_session(self, account: str, data: bytes) -> None:
        """Store an account's (encrypted) browser session for every worker."""
        with self._tx() as db:
            db.execute(text("INSERT INTO sessions (account, data, updated_at)"
                            " VALUES (:a, :d, :at) ON CONFLICT (account) DO UPDATE SET"
                            " data=excluded.data, updated_at=excluded.updated_at"),
                       {"a": account, "d": data, "at": now_iso()})

    def load_session(self, account: str) -> bytes | None:
        """An account's stored session, or None."""
        found = self._query("SELECT data FROM sessions WHERE account=:a", {"a": account})
        return bytes(found[0]["data"]) if found else None

    def drop_session(self, account: str) -> None:
        """Forget an account's stored session (the portal rejected it)."""
        with self._tx() as db:
            db.execute(text("DELETE FROM sessions WHERE account=:a"), {"a": account})


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE itself (pysqlite's own
    # transaction handling would start them lazily, as DEFERRED).
    dbapi_conn.isolation_level = None
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock at once (no upgrade deadlocks); readers share.
    write = conn.get_execution_options().get("dhbot_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def open_ledger(settings: Settings) -> Ledger:
    """The configured ledger (by default the SQLite file in the state folder), its rows
    keyed by the accounts' portal identities (rows kept under a configured name move)."""
    ledger = Ledger(settings.ledger_url)
    portal = settings.portal
    try:
        moved = ledger.adopt({a.name: portal.key(a.name) for a in portal.accounts})
    except BaseException:
        ledger.close()
        raise
    if moved:
        logger.info("ledger: {} orders kept under account names now go by portal identity",
                    moved)
    return ledger


def existing_ledger(settings: Settings) -> Ledger | None:
    """The ledger for reading, or None when it is a SQLite file that does not exist yet."""
    path = sqlite_path(settings.ledger_url)
    if path is not None and not path.exists():
        return None
    return open_ledger(settings)


def backup_sqlite(source: Path, dest: Path) -> tuple[int, str | None]:
    """Copy a SQLite ledger to `dest` with SQLite's online backup API: a consistent copy
    even while runs write to it. Written beside `dest` first, then renamed (0600); returns
    the copy's order count and schema revision."""
    import sqlite3

    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    src = sqlite3.connect(source, timeout=30)
    try:
        copy = sqlite3.connect(part)
        try:
            src.backup(copy)
            problem = copy.execute("PRAGMA integrity_check").fetchone()[0]
            if problem != "ok":
                raise ConfigError(f"the copy of {source} fails SQLite's integrity check: "
                                  f"{problem}")
            orders = int(copy.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
            revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            copy.close()
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    part.chmod(0o600)
    part.replace(dest)
    return orders, revision[0] if revision else None


RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4,16}")  # new_run_id's shape


def is_run_id(value: str) -> bool:
    """True for text shaped like a run id (safe as a folder name)."""
    return RUN_ID.fullmatch(value) is not None


def new_run_id() -> str:
    """A sortable, unique run id such as 20261126-132500-3fa2."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
