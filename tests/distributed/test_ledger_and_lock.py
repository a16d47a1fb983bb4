"""The ledger on both databases, sealed sessions, and the Redis account lock with fencing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text

from bot.config import load_settings
from bot.distlock import RedisAccountLock
from bot.errors import AccountBusy, ConfigError, LockLost
from bot.ledger import Ledger, ledger_url, metadata, schema_version
from bot.migrations import HEAD
from bot.outcomes import Outcome, State
from bot.session import SealedSessionStore, session_store
from tests.services import PostgresServer, RedisServer

# The ledger tests run on SQLite everywhere and on PostgreSQL where the services are
# (marked distributed); the Redis lock tests need Redis.


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.distributed)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a ledger goes, nothing there yet: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database(f"ledger_{request.node.name[-30:].lower()}"
                               .replace("[", "_").replace("]", "").replace("-", "_"))


@pytest.fixture
def ledger(target: Path | str) -> Iterator[Ledger]:
    """A fresh ledger on SQLite and on PostgreSQL."""
    opened = Ledger(target)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A Redis client, the database emptied first."""
    conn = redis.Redis.from_url(redis_server.url)
    conn.flushdb()
    try:
        yield conn
    finally:
        conn.close()


def test_intent_then_result_round_trip(ledger: Ledger) -> None:
    ledger.plan("r1", "main", [("1455953150", "out_of_stock", "仓库断货")])
    ledger.plan("r2", "main", [("1455953150", "price_error", "x")])  # keeps the first plan
    row = ledger.get("main", "1455953150")
    assert row is not None and row.state == State.PLANNED and row.reason == "out_of_stock"
    ledger.record_intent("r1", "main", "1455953150", "out_of_stock", "仓库断货", "待发货")
    row = ledger.get("main", "1455953150")
    assert row is not None and row.intent_unknown
    ledger.record_result("r1", "main", "1455953150", Outcome.SUBMITTED, status_before=None,
                         status_after="取消审核中", attempts=1)
    row = ledger.get("main", "1455953150")
    assert row is not None and row.is_final and row.status_before == "待发货"
    assert [r.order_no for r in ledger.rows(outcomes=[Outcome.SUBMITTED])] == ["1455953150"]
    assert ledger.rows(order_nos=[]) == []
    kinds = [e["kind"] for e in ledger.events("main", "1455953150")]
    assert kinds == ["intent", "result"]


def test_stale_fencing_token_cannot_record_an_intent(ledger: Ledger) -> None:
    ledger.plan("r1", "main", [("1", "out_of_stock", ""), ("2", "out_of_stock", "")])
    old = ledger.take_fence("main")
    new = ledger.take_fence("main")
    assert new > old
    ledger.record_intent("r1", "main", "1", "out_of_stock", "", "待发货", fence=new)
    with pytest.raises(LockLost, match="stale"):
        ledger.record_intent("r1", "main", "2", "out_of_stock", "", "待发货", fence=old)
    with pytest.raises(LockLost, match="stale"):  # a token the ledger never handed out
        ledger.record_intent("r1", "main", "2", "out_of_stock", "", "待发货", fence=new + 1)
    row = ledger.get("main", "2")
    assert row is not None and row.state == State.PLANNED, "a fenced-out intent was written"
    ledger.record_intent("r1", "main", "2", "out_of_stock", "", "待发货", fence=new)
    ledger.plan("r1", "other", [("3", "out_of_stock", "")])
    own = ledger.take_fence("other")  # every account counts on its own
    assert own == 1
    ledger.record_intent("r1", "other", "3", "out_of_stock", "", "待发货", fence=own)


def test_parts_life_cycle(ledger: Ledger) -> None:
    ledger.start_run("r9", "job.yaml", Path("runs/r9"), mode="distributed")
    ledger.add_parts("r9", [("main", json.dumps([{"order_no": "1"}])), ("b", "[]")])
    ledger.start_part("r9", 1, "w1")
    ledger.requeue_part("r9", 1, "lock lost")
    ledger.start_part("r9", 1, "w2")
    ledger.finish_part("r9", 1, state="done", summary={"submitted": 1},
                       results=[{"order_no": "1"}], exit_code=0)
    part = ledger.part("r9", 1)
    assert part is not None
    assert (part.state, part.worker, part.attempts) == ("done", "w2", 2)
    assert (part.orders, part.summary, part.results) == (
        [{"order_no": "1"}], {"submitted": 1}, [{"order_no": "1"}])  # decoded, typed
    assert [p.state for p in ledger.parts("r9")] == ["done", "queued"]
    run = ledger.run("r9")
    assert run is not None and run.mode == "distributed" and run.job == "job.yaml"


def test_sealed_session_is_encrypted_and_needs_the_key(ledger: Ledger) -> None:
    key = Fernet.generate_key().decode()
    state = {"cookies": [{"name": "DHSESSID", "value": "secret-cookie-value-123"}]}
    SealedSessionStore(ledger, "main", key).save(state)
    raw = ledger.load_session("main")
    assert raw is not None and b"secret-cookie-value-123" not in raw
    assert SealedSessionStore(ledger, "main", key).load() == state
    assert SealedSessionStore(ledger, "main", Fernet.generate_key().decode()).load() is None
    ledger.drop_session("main")
    assert SealedSessionStore(ledger, "main", key).load() is None


@pytest.mark.distributed
def test_shared_ledger_needs_a_valid_session_key(postgres_server: PostgresServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(None, {"ledger": postgres_server.url}, environ={}).settings
    ledger = Ledger(settings.ledger_url)
    try:
        with pytest.raises(ConfigError, match="DHBOT_SESSION_KEY"):
            session_store(settings, "main", ledger)
        monkeypatch.setenv("DHBOT_SESSION_KEY", "not-a-key")
        with pytest.raises(ConfigError, match="not a valid key"):
            session_store(settings, "main", ledger)
        monkeypatch.setenv("DHBOT_SESSION_KEY", Fernet.generate_key().decode())
        assert isinstance(session_store(settings, "main", ledger), SealedSessionStore)
    finally:
        ledger.close()


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"cannot open the ledger postgresql\+psycopg://u:\*\*\*@"):
        Ledger("postgresql://u:hunter2hunter2@127.0.0.1:1/nodb")


def _tokens(ledger: Ledger, account: str = "main") -> Callable[[], int]:
    return lambda: ledger.take_fence(account)


@pytest.mark.distributed
def test_lock_is_exclusive_and_tokens_increase(client: redis.Redis, ledger: Ledger) -> None:
    first = RedisAccountLock(client, "main", ttl_s=5, tokens=_tokens(ledger))
    second = RedisAccountLock(client, "main", ttl_s=5, tokens=_tokens(ledger))
    token = first.acquire()
    try:
        with pytest.raises(AccountBusy):
            second.acquire()
        assert first.check() == token
    finally:
        first.release()
    assert second.acquire() > token
    second.release()
    with pytest.raises(LockLost):
        second.check()


@pytest.mark.distributed
def test_renewal_keeps_the_lock_past_its_ttl(client: redis.Redis, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with RedisAccountLock(client, "main", ttl_s=2, tokens=_tokens(ledger)) as held:
        time.sleep(3.5)
        with pytest.raises(AccountBusy):
            RedisAccountLock(client, "main", ttl_s=2, tokens=_tokens(ledger)).acquire()
        held.check()


@pytest.mark.distributed
def test_frozen_holder_is_fenced_out(client: redis.Redis, tmp_path: Path) -> None:
    """A worker that stopped renewing (frozen) loses the account to a newer holder, and can
    then neither pass its own check nor record an intent in the ledger."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.plan("r1", "main", [("1", "out_of_stock", ""), ("2", "out_of_stock", "")])
    frozen = RedisAccountLock(client, "main", ttl_s=2, tokens=_tokens(ledger))
    old_token = frozen.acquire()
    frozen._stop.set()  # the renewal thread stops, as in a process that is paused
    time.sleep(2.5)
    newer = RedisAccountLock(client, "main", ttl_s=5, tokens=_tokens(ledger))
    new_token = newer.acquire()
    try:
        ledger.record_intent("r1", "main", "1", "out_of_stock", "", "待发货",
                             fence=newer.check())
        with pytest.raises(LockLost):
            frozen.check()
        with pytest.raises(LockLost):  # even if it skipped its own check
            ledger.record_intent("r1", "main", "2", "out_of_stock", "", "待发货",
                                 fence=old_token)
        assert new_token > old_token
        got = ledger.get("main", "2")
        assert got is not None and got.state == State.PLANNED
        frozen.release()  # not the owner any more: must not free the newer holder's lock
        assert newer.check() == new_token
    finally:
        newer.release()
        ledger.close()


@pytest.mark.distributed
def test_fencing_tokens_come_from_the_ledger_and_survive_a_redis_restart(
        tmp_path: Path, ledger: Ledger) -> None:
    """Tokens used to be a Redis counter: after a restart without persistence it started
    at 1 again, so every new holder was refused as stale until it climbed back, and then
    old and new holders shared a token."""
    server = RedisServer(tmp_path / "redis")
    with server:
        conn = redis.Redis.from_url(server.url)
        ledger.plan("r1", "main", [("1", "out_of_stock", ""), ("2", "out_of_stock", "")])
        before = RedisAccountLock(conn, "main", ttl_s=5, tokens=_tokens(ledger))
        tokens = [before.acquire()]
        before.release()
        tokens.append(before.acquire())
        before.release()
        server.restart()  # empty: no persistence
        after = RedisAccountLock(conn, "main", ttl_s=5, tokens=_tokens(ledger))
        tokens.append(after.acquire())
        try:
            assert tokens == sorted(set(tokens)), tokens  # strictly increasing
            # The new holder is not refused as stale; the old token is.
            ledger.record_intent("r1", "main", "1", "out_of_stock", "", "待发货",
                                 fence=after.check())
            with pytest.raises(LockLost, match="stale"):
                ledger.record_intent("r1", "main", "2", "out_of_stock", "", "待发货",
                                     fence=tokens[1])
            row = ledger.get("main", "1")
            assert row is not None and row.intent_fence == tokens[-1]
        finally:
            after.release()
            conn.close()


def test_rows_kept_under_a_configured_name_move_to_the_portal_identity(
        ledger: Ledger) -> None:
    """Ledgers written before rows were keyed by identity: `adopt` moves every table's rows
    from the configured name to the identity, once, and never over an existing row."""
    ledger.plan("r1", "main", [("1", "out_of_stock", ""), ("2", "out_of_stock", "")])
    ledger.record_intent("r1", "main", "1", "out_of_stock", "", "待发货")
    ledger.record_result("r1", "main", "1", Outcome.SUBMITTED, status_before="待发货",
                         status_after="取消审核中", attempts=1)
    ledger.plan("r2", "ident-b", [("2", "price_error", "")])  # already there: kept
    ledger.save_session("main", b"sealed")
    ledger.take_fence("main")
    moved = ledger.adopt({"main": "ident-b", "other": "ident-o"})
    assert moved == 1
    assert ledger.get("main", "1") is None
    row = ledger.get("ident-b", "1")
    assert row is not None and row.outcome == Outcome.SUBMITTED
    two = ledger.get("ident-b", "2")
    assert two is not None and two.reason == "price_error"  # not overwritten
    assert [e["kind"] for e in ledger.events("ident-b", "1")] == ["intent", "result"]
    assert ledger.load_session("ident-b") == b"sealed" and ledger.load_session("main") is None
    assert ledger.take_fence("ident-b") == 2  # the fence moved with its count
    assert ledger.adopt({"main": "ident-b"}) == 0  # nothing left to move


def _engine(target: Path | str) -> Engine:
    return create_engine(ledger_url(target))


def _assert_newest_schema(target: Path | str) -> None:
    """The ledger is at HEAD, and its tables are exactly those the code uses (a forgotten
    migration for a new column would show here)."""
    engine = _engine(target)
    try:
        with engine.connect() as conn:
            assert schema_version(conn) == HEAD
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_a_new_ledger_has_the_newest_schema_and_it_matches_the_code(target: Path | str) -> None:
    Ledger(target).close()
    _assert_newest_schema(target)


def test_a_ledger_from_before_migrations_keeps_its_rows_and_gains_the_new_columns(
        target: Path | str) -> None:
    """A ledger of the first release: no alembic_version, no columns added since."""
    engine = _engine(target)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE orders (account TEXT NOT NULL, order_no TEXT NOT NULL, "
                "state TEXT NOT NULL, outcome TEXT, reason TEXT, note TEXT, status_before TEXT,"
                " status_after TEXT, run_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, "
                "error TEXT, intent_at TEXT, updated_at TEXT NOT NULL, review_result TEXT, "
                "review_comment TEXT, cancel_date TEXT, message_sent_at TEXT, "
                "PRIMARY KEY (account, order_no))"))
            conn.execute(text(
                "CREATE TABLE runs (run_id TEXT NOT NULL, job TEXT, started_at TEXT NOT NULL, "
                "finished_at TEXT, summary TEXT, report_dir TEXT, PRIMARY KEY (run_id))"))
            conn.execute(text(
                "INSERT INTO orders (account, order_no, state, outcome, reason, note, run_id, "
                "updated_at) VALUES ('acct', '1455953156', 'done', 'submitted', "
                "'out_of_stock', '缺货', 'r0', '2026-01-02T03:04:05+00:00')"))
            conn.execute(text("INSERT INTO runs (run_id, job, started_at) VALUES "
                              "('r0', 'old.yaml', '2026-01-02T03:04:05+00:00')"))
    finally:
        engine.dispose()
    ledger = Ledger(target)
    try:
        row = ledger.get("acct", "1455953156")
        assert row is not None and row.outcome == Outcome.SUBMITTED and row.note == "缺货"
        assert row.intent_fence is None and row.submitted_run is None  # the added columns
        ledger.start_run("r1", "new.yaml", Path("runs/r1"), mode="distributed")
        assert [r.run_id for r in ledger.runs()] == ["r1", "r0"]
    finally:
        ledger.close()
    _assert_newest_schema(target)


def test_a_ledger_from_a_newer_dhbot_is_refused_untouched(target: Path | str) -> None:
    Ledger(target).close()
    engine = _engine(target)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num='9999'"))
    finally:
        engine.dispose()
    with pytest.raises(ConfigError, match=r"revision 9999.*newer dhbot"):
        Ledger(target)
    engine = _engine(target)
    try:
        with engine.connect() as conn:
            assert schema_version(conn) == "9999"
    finally:
        engine.dispose()
