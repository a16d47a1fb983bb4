"""The web console's records, kept in the ledger: its users, the jobs uploaded to it, and
who did what to each (the audit trail). Each order's own history stays where every run
keeps it: the ledger's orders and events, under the run's id."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import text

from bot.errors import UsageError
from bot.ledger import Ledger, now_iso


class Role(StrEnum):
    """What a console user may do."""

    OPERATOR = "operator"  # upload jobs, start small ones, read everything
    APPROVER = "approver"  # also approve or reject other people's jobs
    ADMIN = "admin"  # an approver who also looks after the console


APPROVING_ROLES = frozenset({Role.APPROVER, Role.ADMIN})


class JobState(StrEnum):
    """Where an uploaded job is. Moves only forward (see ConsoleStore.move)."""

    PREVIEWING = "previewing"  # its dry run is under way
    PREVIEW_FAILED = "preview_failed"  # the dry run could not look at the orders
    AWAITING_APPROVAL = "awaiting_approval"  # more orders than the threshold: a 2nd person
    READY = "ready"  # at most the threshold: its uploader (or an approver) may start it
    REJECTED = "rejected"  # an approver said no
    QUEUED = "queued"  # approved or started; waits for its account to be free
    RUNNING = "running"
    DONE = "done"  # the run finished (its exit code says how)
    INTERRUPTED = "interrupted"  # the console stopped while it ran: start it again


# Chinese first, English beside: the same wording on every page.
STATE_LABELS: dict[JobState, tuple[str, str]] = {
    JobState.PREVIEWING: ("预览中", "previewing"),
    JobState.PREVIEW_FAILED: ("预览失败", "preview failed"),
    JobState.AWAITING_APPROVAL: ("等待审批", "awaiting approval"),
    JobState.READY: ("可执行", "ready to run"),
    JobState.REJECTED: ("已驳回", "rejected"),
    JobState.QUEUED: ("排队中", "queued"),
    JobState.RUNNING: ("执行中", "running"),
    JobState.DONE: ("已完成", "done"),
    JobState.INTERRUPTED: ("已中断", "interrupted"),
}
# States in which a job's background work is under way (the console restarted: interrupted).
BUSY_STATES = frozenset({JobState.PREVIEWING, JobState.QUEUED, JobState.RUNNING})

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Checked against when the user name is unknown, so the answer takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

MIN_PASSWORD = 8
USER_NAME = r"^[A-Za-z0-9_.@-]{1,64}$"


@dataclass(frozen=True)
class User:
    """A console user."""

    name: str
    role: Role
    created_at: str

    @property
    def approves(self) -> bool:
        """True when the user may approve other people's jobs."""
        return self.role in APPROVING_ROLES


@dataclass(frozen=True)
class ConsoleJob:
    """One job uploaded to the console, as the ledger keeps it."""

    job_id: str
    name: str | None
    account: str | None
    upload_name: str | None
    job_file: str | None
    orders: int
    state: JobState
    uploaded_by: str
    uploaded_at: str
    preview_run: str | None
    run_id: str | None
    decided_by: str | None
    decided_at: str | None
    decision: str | None  # approved | rejected | started (no approval needed)
    comment: str | None
    error: str | None
    exit_code: int | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ConsoleJob:
        values = {f.name: data[f.name] for f in fields(cls)}
        values["state"] = JobState(values["state"])
        return cls(**values)

    def needs_approval(self, threshold: int) -> bool:
        """True when a second person must approve the job before it runs."""
        return self.orders > threshold


@dataclass(frozen=True)
class AuditEntry:
    """One line of a job's audit trail."""

    at: str
    job_id: str | None
    user: str | None
    action: str
    detail: dict[str, Any]


def new_job_id() -> str:
    """A sortable, unique job id such as J20261130-113000-3fa2."""
    return datetime.now().strftime("J%Y%m%d-%H%M%S-") + secrets.token_hex(2)


class ConsoleStore:
    """Users, jobs and the audit trail in the ledger's database."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # -- users ------------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password: str) -> User:
        """Add a user; refuses a name that exists or a short password."""
        import re

        if not re.fullmatch(USER_NAME, name):
            raise UsageError(f"user name {name!r}: use 1-64 letters, digits or _ . @ -")
        check_password(password)
        at = now_iso()
        with self.ledger.transaction() as db:
            if db.execute(text("SELECT 1 FROM console_users WHERE name=:n"),
                          {"n": name}).first():
                raise UsageError(f"user {name!r} exists already")
            db.execute(text("INSERT INTO console_users (name, role, password_hash, created_at)"
                            " VALUES (:n, :r, :h, :at)"),
                       {"n": name, "r": role.value, "h": _hasher.hash(password), "at": at})
        self.audit(None, name, "user_added", {"role": role.value})
        return User(name, role, at)

    def set_password(self, name: str, password: str) -> None:
        """Give a user a new password."""
        check_password(password)
        with self.ledger.transaction() as db:
            done = db.execute(text("UPDATE console_users SET password_hash=:h WHERE name=:n"),
                              {"n": name, "h": _hasher.hash(password)}).rowcount
        if not done:
            raise UsageError(f"no user {name!r}")
        self.audit(None, name, "password_changed", {})

    def remove_user(self, name: str) -> None:
        """Remove a user (their jobs and audit lines stay)."""
        with self.ledger.transaction() as db:
            done = db.execute(text("DELETE FROM console_users WHERE name=:n"),
                              {"n": name}).rowcount
        if not done:
            raise UsageError(f"no user {name!r}")
        self.audit(None, name, "user_removed", {})

    def users(self) -> list[User]:
        """Every user, by name."""
        return [User(r["name"], Role(r["role"]), r["created_at"]) for r in self.ledger.query(
            "SELECT name, role, created_at FROM console_users ORDER BY name")]

    def user(self, name: str) -> User | None:
        """One user, or None."""
        found = self.ledger.query("SELECT name, role, created_at FROM console_users "
                                  "WHERE name=:n", {"n": name})
        return User(found[0]["name"], Role(found[0]["role"]), found[0]["created_at"]) \
            if found else None

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is theirs, else None (as slow for an unknown name)."""
        found = self.ledger.query("SELECT * FROM console_users WHERE name=:n", {"n": name})
        stored = found[0]["password_hash"] if found else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not found:
            return None
        if _hasher.check_needs_rehash(stored):
            with self.ledger.transaction() as db:
                db.execute(text("UPDATE console_users SET password_hash=:h WHERE name=:n"),
                           {"n": name, "h": _hasher.hash(password)})
        return User(name, Role(found[0]["role"]), found[0]["created_at"])

    # -- jobs -------------------------------------------------------------------------------

    def add_job(self, job_id: str, *, name: str | None, account: str, upload_name: str,
                job_file: str, orders: int, uploaded_by: str) -> ConsoleJob:
        """Record a job that passed validation; its dry run starts next."""
        values = {"job_id": job_id, "name": name, "account": account,
                  "upload_name": upload_name, "job_file": job_file, "orders": orders,
                  "state": JobState.PREVIEWING.value, "uploaded_by": uploaded_by,
                  "uploaded_at": now_iso()}
        with self.ledger.transaction() as db:
            db.execute(text(f"INSERT INTO console_jobs ({', '.join(values)}) "
                            f"VALUES ({', '.join(':' + k for k in values)})"), values)
        self.audit(job_id, uploaded_by, "uploaded",
                   {"file": upload_name, "orders": orders, "account": account})
        found = self.job(job_id)
        assert found is not None
        return found

    def job(self, job_id: str) -> ConsoleJob | None:
        """One job, or None."""
        found = self.ledger.query("SELECT * FROM console_jobs WHERE job_id=:j", {"j": job_id})
        return ConsoleJob.of(found[0]) if found else None

    def jobs(self, limit: int = 100, states: Iterable[JobState] | None = None
             ) -> list[ConsoleJob]:
        """Recent jobs, newest first."""
        sql, args = "SELECT * FROM console_jobs", dict[str, Any](limit=limit)
        if states is not None:
            names = [s.value for s in states]
            args.update({f"s{i}": s for i, s in enumerate(names)})
            sql += f" WHERE state IN ({','.join(f':s{i}' for i in range(len(names)))})"
        sql += " ORDER BY uploaded_at DESC, job_id DESC LIMIT :limit"
        return [ConsoleJob.of(r) for r in self.ledger.query(sql, args)]

    def job_for_run(self, run_id: str) -> ConsoleJob | None:
        """The job a run (or its dry run) belongs to, or None (a run from the CLI)."""
        found = self.ledger.query("SELECT * FROM console_jobs WHERE run_id=:r OR "
                                  "preview_run=:r", {"r": run_id})
        return ConsoleJob.of(found[0]) if found else None

    def move(self, job_id: str, allowed: Iterable[JobState], to: JobState,
             **values: Any) -> bool:
        """Move a job to `to` (setting `values`) only from one of the `allowed` states, in
        one statement: of two people approving at once, one moves it, the other's does
        nothing. True when this call moved it."""
        names = [s.value for s in allowed]
        args: dict[str, Any] = {"job": job_id, "to": to.value, **values}
        args.update({f"s{i}": s for i, s in enumerate(names)})
        sets = "".join(f", {k}=:{k}" for k in values)
        with self.ledger.transaction() as db:
            moved = db.execute(text(
                f"UPDATE console_jobs SET state=:to{sets} WHERE job_id=:job AND state IN "
                f"({','.join(f':s{i}' for i in range(len(names)))})"), args).rowcount
        return bool(moved)

    def interrupt_busy(self) -> list[str]:
        """Mark jobs whose background work died with the console (at start-up)."""
        busy = self.jobs(limit=10_000, states=BUSY_STATES)
        moved = []
        for job in busy:
            to = JobState.PREVIEW_FAILED if job.state is JobState.PREVIEWING \
                else JobState.INTERRUPTED
            why = "the console stopped during this work; " + (
                "upload the job again" if to is JobState.PREVIEW_FAILED
                else "start it again: orders already done are never done twice")
            if self.move(job.job_id, [job.state], to, error=why):
                self.audit(job.job_id, None, "interrupted", {"was": job.state.value})
                moved.append(job.job_id)
        return moved

    # -- the audit trail --------------------------------------------------------------------

    def audit(self, job_id: str | None, user: str | None, action: str,
              detail: Mapping[str, Any]) -> None:
        """Add a line to the audit trail."""
        with self.ledger.transaction() as db:
            db.execute(text("INSERT INTO console_audit (at, job_id, actor, action, detail) "
                            "VALUES (:at, :j, :u, :a, :d)"),
                       {"at": now_iso(), "j": job_id, "u": user, "a": action,
                        "d": json.dumps(dict(detail), ensure_ascii=False)})

    def trail(self, job_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """A job's audit trail (or the whole console's), oldest first."""
        sql, args = "SELECT * FROM console_audit", dict[str, Any](limit=limit)
        if job_id is not None:
            sql += " WHERE job_id=:j"
            args["j"] = job_id
        rows = self.ledger.query(sql + " ORDER BY id DESC LIMIT :limit", args)
        return [AuditEntry(r["at"], r["job_id"], r["actor"], r["action"],
                           json.loads(r["detail"] or "{}")) for r in reversed(rows)]


def check_password(password: str) -> None:
    """Refuse a password too short to be one."""
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"a password needs at least {MIN_PASSWORD} characters")
