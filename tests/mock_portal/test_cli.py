"""``python -m mock_portal`` as a user starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.portal_server import REPO_ROOT, PortalServer


def test_start_prints_url_and_demo_credentials() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_portal",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--seed",
            "42",
            "--orders",
            "20",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        url_line = process.stdout.readline().rstrip("\n")
        creds_line = process.stdout.readline().rstrip("\n")
        assert url_line.startswith("mock portal running at http://127.0.0.1:")
        assert url_line.endswith("/") and not url_line.endswith(":0/")
        assert creds_line == "demo credentials: demo_seller / demo-pass"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_bad_faults_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "faults.yaml"
    bad.write_text("latency_ms: soon\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mock_portal", "--port", "0", "--faults", str(bad)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "latency_ms" in result.stderr and str(bad) in result.stderr


def test_faults_file_and_accounts_file_apply(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(
        "accounts:\n  - {username: a1, password: p1}\n  - {username: a2, password: p2}\n",
        encoding="utf-8",
    )
    with PortalServer(
        seed=3, orders=9, faults={"layout": "v2", "latency_ms": 1}, accounts_file=accounts
    ) as server:
        assert [o["account"] for o in server.orders()[:3]] == ["demo_seller", "a1", "a2"]
        assert server.set_faults()["layout"] == "v2"
        server.set_faults(layout="v1")
        server.reset()
        assert server.set_faults()["layout"] == "v2"  # reset goes back to the file's faults
        pid = server._process.pid if server._process else 0
    assert pid
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    with httpx.Client(trust_env=False) as c:
        try:
            c.get(server.url + "__admin/health", timeout=1)
            reachable = True
        except httpx.TransportError:
            reachable = False
    assert not reachable


def test_a_non_loopback_address_needs_an_admin_token() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mock_portal", "--host", "0.0.0.0", "--port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without --admin-token" in proc.stderr


def test_the_admin_token_guards_every_admin_call() -> None:
    with PortalServer(orders=20, extra_args=["--admin-token", "s3cret"]) as server:
        plain = httpx.get(server.url + "__admin/orders")
        assert plain.status_code == 401
        assert httpx.put(server.url + "__admin/faults", json={"captcha": True},
                         headers={"X-Admin-Token": "wrong"}).status_code == 401
        good = {"X-Admin-Token": "s3cret"}
        assert httpx.get(server.url + "__admin/orders", headers=good).status_code == 200
        assert httpx.get(server.url + "__admin/faults", headers=good).json()["captcha"] is False


def test_admin_posts_take_json_only(portal: PortalServer) -> None:
    # A web page can send a form post anywhere; it cannot send JSON without the portal's say.
    form = httpx.post(portal.url + "__admin/reset", data={"seed": "1"})
    assert form.status_code == 415
    assert httpx.put(portal.url + "__admin/faults", content=b'{"captcha": true}',
                     headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.get(portal.url + "__admin/faults").json()["captcha"] is False
