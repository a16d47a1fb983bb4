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
