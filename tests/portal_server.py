"""Run the bundled mock portal in a subprocess, for tests and benchmarks.

Like playwright-python's ``tests/server.py``: a real server on a free port, scripted through
its JSON admin API. Nothing here imports ``mock_portal``; it is driven as a user would run it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 20.0
URL_PREFIX = "mock portal running at "


class PortalServer:
    """Runs `python -m mock_portal --port 0` in a subprocess (sys.executable)."""

    def __init__(
        self,
        *,
        seed: int = 42,
        orders: int = 200,
        faults: dict[str, Any] | None = None,
        accounts_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.seed = seed
        self.order_count = orders
        self.faults = faults
        self.accounts_file = accounts_file
        self.extra_args = list(extra_args)
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._faults_file: Path | None = None
        self._client: httpx.Client | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PortalServer:
        """Start the server; wait for its URL line and for /__admin/health (20 s at most)."""
        args = [
            sys.executable,
            "-m",
            "mock_portal",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--seed",
            str(self.seed),
            "--orders",
            str(self.order_count),
        ]
        if self.faults:
            handle, name = tempfile.mkstemp(prefix="mock-portal-faults-", suffix=".yaml")
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                yaml.safe_dump(self.faults, f, allow_unicode=True)
            self._faults_file = Path(name)
            args += ["--faults", name]
        if self.accounts_file:
            args += ["--accounts", str(self.accounts_file)]
        args += self.extra_args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self._process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,  # its own process group, so stop() can end all of it
        )
        atexit.register(self.stop)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self._process, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            self.url = self._await_url(lines, deadline)
            self._await_health(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        # Keep draining stdout so the server never blocks on a full pipe.
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _await_url(self, lines: queue.Queue[str | None], deadline: float) -> str:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("mock portal did not print its URL within 20 s")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self._process.wait() if self._process else None
                raise RuntimeError(f"mock portal exited (code {code}) before printing its URL")
            if line.startswith(URL_PREFIX):
                url = line[len(URL_PREFIX) :].strip()
                return url if url.endswith("/") else url + "/"

    def _await_health(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if self.admin.get("__admin/health").json().get("ok"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("mock portal did not answer /__admin/health within 20 s")

    def stop(self) -> None:
        """Terminate the server's process group; kill it after 5 s."""
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._faults_file is not None:
            self._faults_file.unlink(missing_ok=True)
            self._faults_file = None

    def __enter__(self) -> PortalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin API -------------------------------------------------------------------------

    @property
    def admin(self) -> httpx.Client:
        """An httpx client on the server's base URL (no proxies from the environment)."""
        if not self.url:
            raise RuntimeError("PortalServer.start() has not run")
        if self._client is None:
            # The admin token, when the portal was started with one.
            token = next((b for a, b in zip(self.extra_args, self.extra_args[1:], strict=False)
                          if a == "--admin-token"), None)
            headers = {"X-Admin-Token": token} if token else {}
            self._client = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False,
                                        headers=headers)
        return self._client

    def _json(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def reset(self, seed: int | None = None, orders: int | None = None) -> None:
        """Regenerate the data and forget sessions, logs, counters and fault changes."""
        body = {k: v for k, v in (("seed", seed), ("orders", orders)) if v is not None}
        self._json(self.admin.post("__admin/reset", json=body))

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge fault settings; returns the full faults object."""
        result: dict[str, Any] = self._json(self.admin.put("__admin/faults", json=faults))
        return result

    def orders(self, **filters: str) -> list[dict[str, Any]]:
        """Orders as the admin API lists them (filters: account=, status=)."""
        result: list[dict[str, Any]] = self._json(self.admin.get("__admin/orders", params=filters))
        return result

    def cancel_requests(self) -> list[dict[str, Any]]:
        """Every cancel POST the portal received, in arrival order."""
        result: list[dict[str, Any]] = self._json(self.admin.get("__admin/cancel-requests"))
        return result

    def review(self, order_no: str, decision: str, comment: str = "") -> dict[str, Any]:
        """Approve or reject a pending cancel request, as the platform's reviewers would."""
        response = self.admin.post(
            f"__admin/reviews/{order_no}", json={"decision": decision, "comment": comment}
        )
        result: dict[str, Any] = self._json(response)
        return result

    def messages(self) -> list[dict[str, Any]]:
        """Every message sent to a buyer."""
        result: list[dict[str, Any]] = self._json(self.admin.get("__admin/messages"))
        return result

    def stats(self) -> dict[str, Any]:
        """Request counters and concurrency high-water marks."""
        result: dict[str, Any] = self._json(self.admin.get("__admin/stats"))
        return result
