"""The private Redis and PostgreSQL servers the distributed tests run on really work."""

from __future__ import annotations

import psycopg
import pytest
import redis

from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.distributed


def test_redis_set_get_roundtrip(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.set("dhbot:test", "仓库断货")
        assert client.get("dhbot:test") == "仓库断货".encode()
    finally:
        client.close()


def test_postgres_databases_are_separate_and_keep_chinese_text(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database("t1")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes (body) VALUES (%s)", ("仓库断货",))
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("仓库断货",)]

    other = postgres_server.new_database("t2")
    assert other != url
    with psycopg.connect(other) as conn:
        row = conn.execute("SELECT to_regclass('public.notes') IS NULL").fetchone()
        assert row == (True,)
        assert conn.execute("SELECT current_database()").fetchone() == ("t2",)
