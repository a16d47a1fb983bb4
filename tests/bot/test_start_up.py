"""The engine's boundaries hold: quick commands start without the browser library or the
database layer, and Playwright's errors reach the engine only as dhbot's."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import FlowError, TransientError
from flows.base_page import translate

REPO = Path(__file__).resolve().parents[2]

# Run a command in a fresh interpreter; print the heavy packages it imported.
PROBE = """
import json, sys
from click.testing import CliRunner
from bot.cli import cli
result = CliRunner().invoke(cli, sys.argv[1:])
heavy = {"playwright", "sqlalchemy", "celery"}
print(json.dumps({"code": result.exit_code,
                  "heavy": sorted({m.split('.')[0] for m in sys.modules} & heavy)}))
"""


@pytest.mark.parametrize(("args", "code"), [
    (["--help"], 0),
    (["config", "show"], 0),
    (["run", "no-such-job.yaml"], 2),
    (["submit", "no-such-job.yaml"], 2),
])
def test_quick_commands_start_without_the_browser_or_the_database(
        tmp_path: Path, args: list[str], code: int) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"code": code, "heavy": []}, seen


def test_the_runner_imports_nothing_from_playwright() -> None:
    tree = ast.parse((REPO / "bot" / "runner.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.split(".")[0] == "playwright"}, imported


@pytest.mark.parametrize(("error", "kind", "reason", "unsettled"), [
    (PlaywrightTimeoutError("Timeout 5000ms exceeded."), TransientError, "timeout", True),
    (PlaywrightError("net::ERR_CONNECTION_RESET at http://x/"), TransientError, "connection",
     True),
    (PlaywrightError("Target page, context or browser has been closed"), TransientError,
     "connection", True),
    (PlaywrightError("Element is not an <input>"), FlowError, "error", False),
])
def test_playwright_errors_become_dhbots_in_one_mapping(
        error: PlaywrightError, kind: type[FlowError], reason: str, unsettled: bool) -> None:
    mapped = translate(error, "search", "order list")
    assert type(mapped) is kind
    assert (mapped.reason, mapped.unsettled, mapped.step, mapped.page) == (
        reason, unsettled, "search", "order list")
    assert str(error).splitlines()[0] in str(mapped)
