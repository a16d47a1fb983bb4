"""`dhbot check`: every profile key resolves against the mock, and nothing in it changes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bot.cli import cli
from tests.bot.conftest import Workspace

# What the mock's layout v2 renames (mock_portal/layout.py), as profile keys: 订单管理 is both
# the menu link and the order list's heading, so it costs two keys.
V2_RENAMED = {
    "nav.order_management",
    "list.heading",
    "list.search_button",
    "detail.cancel_button",
    "dialog.submit_button",
}
STATUSES = ("found", "missing", "ambiguous", "skipped")

# Until `check` is registered in bot/cli.py, run the same CLI with the command added.
_WITH_CHECK = ("from bot.cli import cli, main; from bot.check import check_command; "
               "cli.add_command(check_command); main()")


def run_check(workspace: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """`dhbot check ARGS` in the workspace, as a user runs it."""
    if "check" in cli.commands:
        return workspace.dhbot("check", *args)
    return subprocess.run([sys.executable, "-c", _WITH_CHECK, "check", *args],
                          cwd=workspace.root, env=workspace.env, capture_output=True,
                          text=True, timeout=180)


def key_lines(stdout: str) -> dict[str, str]:
    """Profile key -> status, from the text output's key lines."""
    lines = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in STATUSES:
            lines[parts[1]] = parts[0]
    return lines


def portal_snapshot(workspace: Workspace) -> tuple[Any, ...]:
    """Orders, cancel requests and messages as the portal's admin API shows them."""
    portal = workspace.portal
    return portal.orders(), portal.cancel_requests(), portal.messages()


def test_check_finds_every_key_and_changes_nothing(workspace: Workspace) -> None:
    before = portal_snapshot(workspace)
    proc = run_check(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = key_lines(proc.stdout)
    assert set(lines.values()) <= {"found", "skipped"}, proc.stdout
    # The walk got all the way: login form, list, cancel dialog and its confirmation, 联系买家.
    for key in ("login.username_label", "login.signed_in_marker", "list.empty_text",
                "list.next_page", "detail.cancel_button", "dialog.submit_button",
                "dialog.confirm.button", "reasons.other", "message.send_button"):
        assert lines[key] == "found", proc.stdout
    assert lines["login.error_text"] == "skipped"
    assert lines["login.captcha_text"] == "skipped"
    assert workspace.portal.cancel_requests() == []
    assert portal_snapshot(workspace) == before


def test_json_matches_text_and_reuses_the_session(workspace: Workspace) -> None:
    text = run_check(workspace)
    assert text.returncode == 0, text.stdout + text.stderr
    proc = run_check(workspace, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "reusing the saved session" in proc.stderr
    data = json.loads(proc.stdout)
    assert {tuple(sorted(item)) for item in data} == {
        ("count", "key", "looked_for", "note", "page", "status")}
    assert {item["key"]: item["status"] for item in data} == key_lines(text.stdout)
    by_key = {item["key"]: item for item in data}
    # With a valid saved session the login form is still checked, in a fresh context.
    assert by_key["login.password_label"]["status"] == "found"
    assert by_key["dialog.confirm_name"] == {
        "key": "dialog.confirm_name", "status": "found", "looked_for": "确认取消",
        "page": by_key["dialog.confirm_name"]["page"], "count": 1, "note": ""}
    assert workspace.portal.cancel_requests() == []


def test_layout_v2_reports_exactly_the_renamed_keys(workspace: Workspace) -> None:
    workspace.portal.set_faults(layout="v2")
    before = portal_snapshot(workspace)
    proc = run_check(workspace, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    missing = {item["key"] for item in data if item["status"] == "missing"}
    assert missing == V2_RENAMED
    assert not [item for item in data if item["status"] == "ambiguous"]
    # The walk went on past each missing key: later pages were still checked.
    statuses = {item["key"]: item["status"] for item in data}
    for key in ("list.empty_text", "detail.heading", "dialog.reason_label",
                "reasons.out_of_stock", "message.body_label"):
        assert statuses[key] == "found", key
    assert portal_snapshot(workspace) == before
