"""Fixtures for dhbot's own tests: the mock portal, a workspace, and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.portal_server import PortalServer

PASSWORD = "demo-pass"


@pytest.fixture(scope="session")
def portal() -> Iterator[PortalServer]:
    """One mock portal for the bot tests (seed 42, 200 orders)."""
    with PortalServer(seed=42, orders=200) as server:
        yield server


@dataclass(frozen=True)
class Layout:
    """A mock portal layout, the profile written for it, and the status names it shows."""

    name: str
    profile: str
    paid: str  # paid, awaiting shipment: cancellable
    unpaid: str  # awaiting payment: cancellable
    pending: str  # a cancellation waits for the platform's review
    cancelled: str
    shipped: str
    completed: str
    paid_after: str  # a paid order once its cancellation is accepted
    unpaid_after: str
    paid_outcome: str  # what a run reports for a paid order it cancelled


LAYOUTS = {
    "v1": Layout("v1", "mock", paid="待发货", unpaid="等待买家付款", pending="取消审核中",
                 cancelled="已取消", shipped="已发货", completed="交易成功",
                 paid_after="取消审核中", unpaid_after="已取消", paid_outcome="submitted"),
    # Paid orders are cancelled at once (with the fine); unpaid ones close.
    "legacy": Layout("legacy", "legacy", paid="等待您发货", unpaid="等待买家付款",
                     pending="等待平台审核", cancelled="订单取消", shipped="等待买家确认收货",
                     completed="交易成功", paid_after="订单取消", unpaid_after="交易关闭",
                     paid_outcome="cancelled"),
}


@dataclass
class Workspace:
    """A folder with config.yaml pointing at the portal, as an operator would have."""

    root: Path
    portal: PortalServer
    env: dict[str, str]
    profile: str = "mock"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def write_config(self, **overrides: Any) -> None:
        """config.yaml for the test portal; `overrides` are section dicts merged in."""
        data: dict[str, Any] = {
            "portal": {
                "base_url": self.portal.url,
                "profile": self.profile,
                "accounts": [{"name": "main", "username": "demo_seller",
                              "password_env": "DHBOT_PASSWORD_MAIN"}],
            },
            "browser": {"headless": True, "timeout_s": 5, "navigation_timeout_s": 15},
            "paths": {"state_dir": "state", "runs_dir": "runs"},
            "concurrency": {"pages_per_account": 3},
            "retry": {"attempts": 3, "backoff_s": 0.1, "backoff_max_s": 1},
        }
        for section, values in overrides.items():
            if isinstance(values, dict) and isinstance(data.get(section), dict):
                data[section].update(values)
            else:
                data[section] = values
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    def write_job(self, orders: list[dict[str, str]], name: str = "job.yaml",
                  **top: Any) -> Path:
        """A job file with the given orders and defaults."""
        data: dict[str, Any] = {
            "defaults": {"reason": "out_of_stock", "note": "仓库断货，无法按时发货"},
            **top,
            "orders": orders,
        }
        path = self.root / name
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    def dhbot(self, *args: str, timeout: float = 180, check_code: int | None = None,
              extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the CLI as a subprocess in the workspace."""
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if check_code is not None:
            assert proc.returncode == check_code, (
                f"exit {proc.returncode} != {check_code}\nstdout:\n{proc.stdout}\n"
                f"stderr:\n{proc.stderr}")
        return proc

    def cli(self, *args: str, check_code: int | None = None,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the CLI in this process (click's test runner): the same exit codes and
        messages as `dhbot`, without a Python start-up. For commands that start no browser."""
        import contextlib

        from click.testing import CliRunner
        from loguru import logger

        from bot.cli import cli

        wanted = {**self.env, **(extra_env or {})}
        env: dict[str, str | None] = {k: v for k, v in wanted.items() if k.startswith("DHBOT_")}
        env.update({k: None for k in os.environ if k.startswith("DHBOT_") and k not in env})
        try:
            with contextlib.chdir(self.root):
                result = CliRunner(env=env).invoke(cli, list(args), prog_name="dhbot")
        finally:
            logger.remove()  # its sink was the runner's captured stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback: the test shows it
        proc = subprocess.CompletedProcess(["dhbot", *args], result.exit_code,
                                           result.stdout, result.stderr)
        if check_code is not None:
            assert proc.returncode == check_code, (
                f"exit {proc.returncode} != {check_code}\nstdout:\n{proc.stdout}\n"
                f"stderr:\n{proc.stderr}")
        return proc

    def session_file(self, account: str = "main") -> Path:
        """Where the account's session is saved (keyed by its portal identity)."""
        from bot.config import load_settings
        from bot.session import session_file

        return self.root / session_file(load_settings(self.config, {}).settings, account)

    def account_lock(self, account: str = "main") -> Any:
        """The lock a dhbot run takes for the account (to hold it as another run would)."""
        from bot.config import load_settings
        from bot.lock import AccountLock

        key = load_settings(self.config, {}).settings.portal.key(account)
        return AccountLock(self.root / "state", key, account=account)

    def last_report(self) -> dict[str, Any]:
        """The newest report.json."""
        reports = sorted((self.root / "runs").glob("*/report.json"))
        assert reports, "no report was written"
        data: dict[str, Any] = json.loads(reports[-1].read_text(encoding="utf-8"))
        return data


@pytest.fixture
def workspace(tmp_path: Path, portal: PortalServer) -> Workspace:
    """A fresh workspace and a freshly reset portal."""
    portal.reset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DHBOT_")}
    env["DHBOT_PASSWORD_MAIN"] = PASSWORD
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    ws = Workspace(root=tmp_path, portal=portal, env=env)
    ws.write_config()
    return ws


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log line dhbot writes in this process during the test ("LEVEL message")."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{level} {message}")
    yield lines
    logger.remove(sink)


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest, workspace: Workspace) -> Layout:
    """The core set runs on each layout, with nothing but that layout's profile."""
    chosen = LAYOUTS[request.param]
    if chosen.name != "v1":
        workspace.portal.set_faults(layout=chosen.name)
    workspace.profile = chosen.profile
    workspace.write_config()
    return chosen


def by_status(portal: PortalServer, status: str, count: int = 1) -> list[str]:
    """Order numbers of demo_seller's orders showing `status`."""
    nos = [o["order_no"] for o in portal.orders(account="demo_seller", status=status)]
    assert len(nos) >= count, f"the seed has only {len(nos)} orders in {status}"
    return nos[:count]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_gone(pids: set[int], timeout: float = 15.0) -> set[int]:
    """Wait for the processes to end; returns those still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def alive(pids: set[int]) -> set[int]:
    """The pids of `pids` that still run (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def chromium_main(pid: int) -> int | None:
    """The browser process (not its renderers) among the descendants of `pid`."""
    for child in sorted(descendants(pid)):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--remote-debugging-pipe" in cmdline and b"--type=" not in cmdline:
            return child
    return None
