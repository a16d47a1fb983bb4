"""`dhbot check`: every profile key resolves against the mock, and nothing in it changes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from bot.cli import cli
from flows.profile import profile_path
from tests.bot.conftest import Layout, Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# What the mock's layout v2 renames (mock_portal/layout.py), as profile keys: 订单管理 is both
# the menu link and the order list's heading, so it costs two keys. 搜 索 and 提 交 are only
# spaced differently: the profile's 搜索 and 提交 still match them.
V2_RENAMED = {"nav.to_orders.1", "list.heading", "detail.cancel_button"}
# Keys the walk must reach and find on each layout, with nothing but its profile.
MUST_FIND = {
    "v1": ("login.username_label", "login.signed_in_marker", "nav.to_orders.1",
           "list.empty_text", "list.next_page", "list.status_column", "detail.fields.status",
           "detail.cancel_button",
           "dialog.submit_button", "dialog.confirm.button", "reasons.other",
           "message.send_button"),
    "legacy": ("login.username_label", "login.submit_button", "login.signed_in_marker",
               "nav.to_orders.1", "nav.to_orders.2", "list.search_label",
               "list.search_button", "list.empty_text", "list.next_page", "list.ready",
               "list.status_column",
               "detail.fields.order_no", "detail.fields.status", "detail.cancel_button",
               "dialog.container", "dialog.reason_label", "dialog.reason_options",
               "dialog.note_label", "dialog.submit_button", "dialog.confirm.native",
               "reasons.other", "statuses.等待您发货"),
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


def test_check_finds_every_key_and_changes_nothing(workspace: Workspace,
                                                   layout: Layout) -> None:
    before = portal_snapshot(workspace)
    proc = run_check(workspace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = key_lines(proc.stdout)
    assert set(lines.values()) <= {"found", "skipped"}, proc.stdout
    # The walk got all the way: login form, list, cancel dialog and its confirmation, …
    for key in MUST_FIND[layout.name]:
        assert lines[key] == "found", (key, proc.stdout)
    assert lines["login.error_text"] == "skipped"
    assert lines["login.captcha_text"] == "skipped"
    # Every skipped key says why; none was skipped for want of reaching its page.
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("skipped")]
    assert all(" — " in line for line in skipped), skipped
    assert not [line for line in skipped if "not reached" in line or "needs " in line], skipped
    if layout.name == "legacy":
        for key in ("home.heading", "list.heading", "detail.contact_button"):
            assert f"{key}" in proc.stdout and lines[key] == "skipped"
        assert "declared absent in the profile (null)" in proc.stdout
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
        ("count", "key", "looked_for", "note", "page", "shown_as", "status")}
    assert {item["key"]: item["status"] for item in data} == key_lines(text.stdout)
    by_key = {item["key"]: item for item in data}
    # With a valid saved session the login form is still checked, in a fresh context.
    assert by_key["login.password_label"]["status"] == "found"
    assert by_key["dialog.confirm.container"] == {
        "key": "dialog.confirm.container", "status": "found", "looked_for": "确认取消",
        "page": by_key["dialog.confirm.container"]["page"], "count": 1, "note": "",
        "shown_as": ""}
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
    for key in ("list.empty_text", "detail.heading", "message.body_label"):
        assert statuses[key] == "found", key
    assert portal_snapshot(workspace) == before


def test_suggest_on_v2_proposes_the_new_words_and_writes_a_profile(workspace: Workspace) -> None:
    """v2 renames 订单管理→我的订单, 搜索→搜 索, 取消订单→申请取消, 提交→提 交."""
    workspace.portal.set_faults(layout="v2")
    before = portal_snapshot(workspace)
    suggested = workspace.root / "suggested.yaml"
    proc = run_check(workspace, "--suggest", "--write-profile", str(suggested))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    # The best candidate comes first, with its reason.
    assert re.search(r"missing\s+nav\.to_orders\.1 .*\n\s+maybe '我的订单'  \(0\.50 alike, "
                     r"shares '订单'; a link; leads to the order list\)", out), out
    assert re.search(r"missing\s+detail\.cancel_button .*\n\s+maybe '申请取消'  \(0\.50 alike, "
                     r"shares '取消'; looks like a button\)", out), out
    assert re.search(r"found\s+list\.search_button\s+搜索  \(shown as 搜 索\)", out), out
    assert re.search(r"found\s+dialog\.submit_button\s+提交  \(shown as 提 交\)", out), out
    text = suggested.read_text(encoding="utf-8")
    assert text.startswith("# SUGGESTED by `dhbot check --suggest`: review before use")
    for change in ("nav.to_orders.1: 订单管理 -> 我的订单",
                   "list.search_button: 搜索 -> 搜 索",
                   "detail.cancel_button: 取消订单 -> 申请取消",
                   "dialog.submit_button: 提交 -> 提 交"):
        assert change in text, text
    # Reviewed as is, the suggestion checks clean against v2, and nothing was ever sent.
    workspace.write_config(portal={"profile": str(suggested)})
    again = run_check(workspace)
    assert again.returncode == 0, again.stdout + again.stderr
    assert portal_snapshot(workspace) == before


def test_the_status_column_is_checked_against_the_rows(workspace: Workspace) -> None:
    """list.status_column is found with the status of a row it reads; a header the list does
    not have is reported missing, naming the key."""
    proc = run_check(workspace, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = {item["key"]: item for item in json.loads(proc.stdout)}["list.status_column"]
    assert found["status"] == "found" and found["looked_for"] == "订单状态"
    shown = found["note"].removeprefix("order ").split(" shows ")
    assert shown[1] == {o["order_no"]: o["status"] for o in workspace.portal.orders()}[shown[0]]

    data = yaml.safe_load(profile_path("mock").read_text(encoding="utf-8"))
    data["list"]["status_column"] = "订单状况"
    changed = workspace.root / "changed.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    workspace.write_config(portal={"profile": str(changed)})
    proc = run_check(workspace, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    statuses = {item["key"]: item["status"] for item in json.loads(proc.stdout)}
    assert [k for k, s in statuses.items() if s == "missing"] == ["list.status_column"]
    assert statuses["detail.cancel_button"] == "found"  # the walk went on
