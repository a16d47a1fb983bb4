"""Fixtures for the web console: the app in-process with background work recorded (security
and intake tests), or `dhbot serve` for real beside the mock portal (browser tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from bot.config import LoadedSettings, load_settings
from bot.console.app import create_app
from bot.console.store import ConsoleJob, ConsoleStore, Role
from bot.console.work import Conductor
from bot.ledger import open_ledger
from flows.profile import load_profile
from tests.bot.conftest import logged  # noqa: F401  (the fixture, for the console's tests)

PASSWORD = "correct horse battery"
USERS = {"olga": Role.OPERATOR, "oscar": Role.OPERATOR, "amy": Role.APPROVER,
         "ann": Role.APPROVER}


class RecordingConductor(Conductor):
    """Starts no child process: records what the pages asked for, so the security tests
    see exactly how often a run would have started (the browser tests run the real one)."""

    def __init__(self, loaded: LoadedSettings, store: ConsoleStore) -> None:
        super().__init__(loaded, store)
        self.previews: list[tuple[str, str]] = []
        self.runs: list[tuple[str, str]] = []

    def preview(self, job: ConsoleJob, run_id: str) -> None:
        self.previews.append((job.job_id, run_id))

    def run(self, job: ConsoleJob, run_id: str) -> None:
        self.runs.append((job.job_id, run_id))


@dataclass
class ConsoleApp:
    """The console app on a test client, its store, and what it asked to run."""

    root: Path
    loaded: LoadedSettings
    store: ConsoleStore
    conductor: RecordingConductor
    clients: list[TestClient] = field(default_factory=list)

    def client(self) -> TestClient:
        """A new browser: its own cookies (the app's lifespan runs once per client)."""
        profile = load_profile(self.loaded.settings.portal.profile)
        app = create_app(self.loaded, profile, "k" * 48, conductor=self.conductor)
        client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
        client.__enter__()
        self.clients.append(client)
        return client

    def signed_in(self, name: str) -> TestClient:
        """A client signed in as `name`."""
        client = self.client()
        token = csrf(client, "/login")
        response = client.post("/login", data={"name": name, "password": PASSWORD,
                                               "csrf_token": token, "next": "/runs"})
        assert response.status_code == 303, response.text
        return client

    def job(self, job_id: str) -> ConsoleJob:
        found = self.store.job(job_id)
        assert found is not None
        return found


def csrf(client: TestClient, path: str) -> str:
    """The CSRF token of the form on `path`."""
    import re

    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF token on {path}"
    return match[1]


def upload_csv(client: TestClient, text: str, name: str = "orders.csv",
               **fields: str) -> Any:
    """POST an order list to /jobs/new as the form does."""
    token = csrf(client, "/jobs/new")
    return client.post("/jobs/new", data={"csrf_token": token, "account": "main", **fields},
                       files={"file": (name, text.encode("utf-8"), "text/csv")})


@pytest.fixture
def console_app(tmp_path: Path) -> Iterator[ConsoleApp]:
    """A console over a fresh ledger with four users; background work only recorded."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "portal": {"base_url": "http://127.0.0.1:9/", "profile": "mock",
                   "accounts": [{"name": "main", "username": "demo_seller",
                                 "password_env": "DHBOT_PASSWORD_MAIN"}]},
        "paths": {"state_dir": str(tmp_path / "state"), "runs_dir": str(tmp_path / "runs")},
        "console": {"max_upload_kb": 64, "login_attempts": 3},
    }), encoding="utf-8")
    loaded = load_settings(config, {})
    ledger = open_ledger(loaded.settings)
    store = ConsoleStore(ledger)
    for name, role in USERS.items():
        store.add_user(name, role, PASSWORD)
    app = ConsoleApp(tmp_path, loaded, store, RecordingConductor(loaded, store))
    yield app
    for client in app.clients:
        with contextlib.suppress(Exception):
            client.__exit__(None, None, None)
    ledger.close()


# -- `dhbot serve` for real, beside the mock portal ------------------------------------------

PORTAL_PASSWORD = "demo-pass"  # the mock portal's published demo account


@pytest.fixture(scope="module")
def console_portal() -> Iterator[Any]:
    """A mock portal of its own for the console's browser tests."""
    from tests.portal_server import PortalServer

    with PortalServer(seed=42, orders=200) as server:
        yield server


@dataclass
class Served:
    """`dhbot serve` running on a free port in a folder of its own."""

    root: Path
    url: str
    portal: Any
    env: dict[str, str]

    def dhbot(self, *args: str, stdin: str | None = None) -> Any:
        import subprocess
        import sys

        return subprocess.run([sys.executable, "-m", "bot.cli", *args, "--config",
                               str(self.root / "config.yaml")], cwd=self.root, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path, console_portal: Any) -> Iterator[Served]:
    """`dhbot serve` as ops staff would start it, four users added with `dhbot user add`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    console_portal.reset()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "portal": {"base_url": console_portal.url, "profile": "mock",
                   "accounts": [{"name": "main", "username": "demo_seller",
                                 "password_env": "DHBOT_PASSWORD_MAIN"}]},
        "browser": {"headless": True, "timeout_s": 5, "navigation_timeout_s": 15},
        "paths": {"state_dir": "state", "runs_dir": "runs"},
        "concurrency": {"pages_per_account": 2},
    }, allow_unicode=True), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DHBOT_")}
    env.update(DHBOT_PASSWORD_MAIN=PORTAL_PASSWORD,
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    port = _free_port()
    server = Served(tmp_path, f"http://127.0.0.1:{port}", console_portal, env)
    # One user through the command line, as ops staff's admin adds them; the rest directly
    # (each `dhbot user add` is a Python start-up; the command has tests of its own).
    added = server.dhbot("user", "add", "olga", "--role", "operator", "--password-stdin",
                         stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    settings = load_settings(tmp_path / "config.yaml", {}).settings
    ledger = open_ledger(settings)
    try:
        for name, role in USERS.items():
            if name != "olga":
                ConsoleStore(ledger).add_user(name, role, PASSWORD)
    finally:
        ledger.close()
    log = (tmp_path / "serve.log").open("wb")
    child = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                              "--config", str(tmp_path / "config.yaml")], cwd=tmp_path,
                             env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(server.url + "/login", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert child.poll() is None, (tmp_path / "serve.log").read_text()
        assert time.monotonic() < deadline, "dhbot serve did not start"
        time.sleep(0.2)
    try:
        yield server
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()
