"""Faults, crashes and signals: dhbot keeps going where it can, stops cleanly where it
cannot, and never submits twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.bot.conftest import (
    Layout,
    Workspace,
    by_status,
    chromium_main,
    descendants,
    wait_gone,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _start(workspace: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], cwd=workspace.root,
                            env=workspace.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_faults_are_retried_and_counted(workspace: Workspace) -> None:
    portal = workspace.portal
    orders = by_status(portal, "待发货", 12)
    # Sessions of 40 pages: the bot has to log in again mid-run (however fast or loaded the
    # machine: a session measured in seconds may outlive a fast run, or be spent logging in).
    portal.set_faults(latency_ms=20, latency_jitter_ms=10, error_rates={"*": 0.15},
                      commit_then_fail=0.3, commit_then_fail_mode="status500",
                      session_max_pages=40)
    job = workspace.write_job([{"order_no": n} for n in orders])
    workspace.dhbot("run", str(job), timeout=240)
    report = workspace.last_report()
    outcomes = Counter(o["outcome"] for o in report["orders"])
    assert set(outcomes) <= {"submitted", "needs_review", "failed"}, outcomes
    assert report["retries"] > 0  # 15% of pages failed: retries happened and were counted
    # … by reason, like scrapy's retry stats: the 500s show as "server error".
    by_reason = report["retries_by_reason"]
    assert by_reason.get("server error", 0) > 0, by_reason
    assert sum(by_reason.values()) == report["retries"], (by_reason, report["retries"])
    assert sum(sum(o["retry_reasons"].values()) for o in report["orders"]) == report["retries"]
    html = (workspace.root / "runs" / report["run_id"] / "report.html").read_text()
    assert f"server error {by_reason['server error']}" in html
    # Whatever went wrong, never two requests for one order.
    counts = Counter(r["order_no"] for r in portal.cancel_requests())
    assert max(counts.values()) == 1
    assert set(counts) <= set(orders)
    # Session expiry made the bot log in again instead of failing orders.
    assert portal.stats()["logins"]["demo_seller"] >= 2
    # A second run finishes whatever is left, still exactly once.
    portal.set_faults(error_rates={}, commit_then_fail=0.0)
    workspace.dhbot("run", str(job), check_code=0, timeout=240)
    counts = Counter(r["order_no"] for r in portal.cancel_requests())
    assert counts == Counter({n: 1 for n in orders})


def test_commit_then_fail_is_read_back_not_resubmitted(workspace: Workspace,
                                                        layout: Layout) -> None:
    portal = workspace.portal
    orders = by_status(portal, layout.paid, 3) + by_status(portal, layout.unpaid, 1)
    portal.set_faults(commit_then_fail=1.0, commit_then_fail_mode="drop")
    job = workspace.write_job([{"order_no": n} for n in orders])
    workspace.dhbot("run", str(job), check_code=0)
    report = workspace.last_report()
    outcomes = {o["order_no"]: o["outcome"] for o in report["orders"]}
    paid = layout.paid_outcome
    assert outcomes == {orders[0]: paid, orders[1]: paid, orders[2]: paid,
                        orders[3]: "cancelled"}
    assert all(o["retries"] >= 1 for o in report["orders"])
    assert Counter(r["order_no"] for r in portal.cancel_requests()) == Counter(
        {n: 1 for n in orders})


def test_evidence_shows_the_tab_where_the_step_failed(workspace: Workspace) -> None:
    portal = workspace.portal
    paid = by_status(portal, "待发货", 2)
    workspace.write_config(browser={"headless": True, "timeout_s": 5, "evidence": "always"})
    workspace.dhbot("run", str(workspace.write_job([{"order_no": paid[0]}])), check_code=0)
    report = workspace.last_report()
    shots = report["orders"][0]["artifacts"]
    assert [Path(a).name for a in shots] == [f"{paid[0]}-submitted.png"]
    portal.set_faults(error_rates={"detail": 1.0})
    workspace.dhbot("run", str(workspace.write_job([{"order_no": paid[1]}], "b.yaml")),
                    check_code=1)
    report = workspace.last_report()
    row = report["orders"][0]
    assert row["outcome"] == "failed" and "HTTP 500" in row["error"]
    html = next(a for a in row["artifacts"] if a.endswith(".html"))
    page = (workspace.root / "runs" / report["run_id"] / html).read_text(encoding="utf-8")
    # The detail page's 500, not the order list the search showed before it.
    assert "系统繁忙" in page and "order-list" not in page


def _trace_through_relogins(workspace: Workspace, pages: int, latency_ms: int = 0) -> None:
    """One tab and sessions of a few pages: the bot logs in again while tracing."""
    workspace.portal.set_faults(session_max_pages=pages, latency_ms=latency_ms)
    workspace.write_config(browser={"headless": True, "timeout_s": 5,
                                    "navigation_timeout_s": 15, "trace": "always"},
                           concurrency={"pages_per_account": 1})


def test_no_password_or_cookie_on_disk_after_a_kill_under_tracing(workspace: Workspace) -> None:
    portal = workspace.portal
    _trace_through_relogins(workspace, pages=6, latency_ms=150)  # slow: killed mid-run
    job = workspace.write_job([{"order_no": n} for n in by_status(portal, "已发货", 30)])
    system_tmp = Path(tempfile.gettempdir())
    before = {p.name for p in system_tmp.glob("playwright*")}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", str(job)],
                            cwd=workspace.root, env=workspace.env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    # Kill the whole group (python, driver, Chromium) after a login again under tracing.
    while portal.stats()["logins"].get("demo_seller", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    family = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not wait_gone(family)
    assert portal.stats()["logins"]["demo_seller"] >= 3

    # Playwright's temporary files went to dhbot's own folder, none to the shared /tmp ...
    assert {p.name for p in system_tmp.glob("playwright*")} == before
    leftovers = list((workspace.root / "state" / "tmp").iterdir())
    assert leftovers  # the killed run's folder, 0700
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in leftovers)
    # ... and nothing anywhere holds the password, even what a kill left half-written: no
    # login POST (password=…), no typed value ("demo-pass" as a value; the mock's login
    # page itself shows the demo credentials as text, which a snapshot may hold).
    for path in workspace.root.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            data = path.read_bytes()
            assert b"password=demo-pass" not in data and b'"demo-pass"' not in data, path
    # The next start removes the dead run's temporary folder.
    workspace.write_config(browser={"headless": True, "timeout_s": 5})
    portal.set_faults(session_max_pages=0, latency_ms=0)
    workspace.dhbot("run", str(workspace.write_job([{"order_no": "9999999999"}], "b.yaml")),
                    check_code=0)
    assert list((workspace.root / "state" / "tmp").iterdir()) == []


def test_chromium_killed_mid_run_is_started_again_and_the_run_goes_on(
        workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(latency_ms=120)
    orders = by_status(portal, "待发货", 12)
    proc = _start(workspace, "run", str(workspace.write_job([{"order_no": n} for n in orders])))
    deadline = time.monotonic() + 60
    while len(portal.cancel_requests()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    browser = chromium_main(proc.pid)
    assert browser is not None
    if shutil.which("chromium-headless-shell"):  # a headless run prefers the lighter browser
        assert Path(f"/proc/{browser}/exe").resolve().name == "chromium-headless-shell"
    os.kill(browser, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "Chromium died" in err and "starting it again (1 of 2)" in err
    report = workspace.last_report()
    assert {o["outcome"] for o in report["orders"]} == {"submitted"}
    assert Counter(r["order_no"] for r in portal.cancel_requests()) == Counter(
        {n: 1 for n in orders})


def test_a_chromium_that_never_starts_fails_cleanly_and_soon(workspace: Workspace) -> None:
    stuck = workspace.root / "stuck-chromium"
    stuck.write_text("#!/bin/sh\nexec sleep 600\n", encoding="utf-8")
    stuck.chmod(0o700)
    workspace.write_config(browser={"headless": True, "executable_path": str(stuck)},
                           run={"launch_timeout_s": 2})
    job = workspace.write_job([{"order_no": by_status(workspace.portal, "已发货")[0]}])
    started = time.monotonic()
    proc = workspace.dhbot("run", str(job), check_code=2, timeout=60)
    assert time.monotonic() - started < 30
    assert "Chromium did not start" in proc.stderr and "trying once more" in proc.stderr
    assert "Chromium could not start" in proc.stderr and "Traceback" not in proc.stderr
    workspace.write_config(browser={"headless": True, "executable_path": "/nonexistent/chrome"})
    proc = workspace.dhbot("run", str(job), check_code=2, timeout=60)
    assert "/nonexistent/chrome does not exist" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0


def test_a_deadline_stops_the_run_like_sigterm(workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(latency_ms=300)
    workspace.write_config(concurrency={"pages_per_account": 1})
    orders = by_status(portal, "已发货", 25)
    job = workspace.write_job([{"order_no": n} for n in orders])
    started = time.monotonic()
    proc = workspace.dhbot("run", str(job), "--deadline", "0.1", check_code=1, timeout=120)
    assert time.monotonic() - started < 60
    report = workspace.last_report()
    assert "time limit (0.1 min) was reached" in report["stopped"], proc.stderr
    outcomes = Counter(o["outcome"] for o in report["orders"])
    assert outcomes["skipped"] > 0 and outcomes["not_cancellable"] > 0
    assert sum(outcomes.values()) == len(orders)  # every order has an outcome


def test_captcha_stops_the_account_with_exit_3(workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(captcha=True)
    job = workspace.write_job([{"order_no": n} for n in by_status(portal, "待发货", 2)])
    proc = workspace.dhbot("run", str(job), check_code=3)
    assert "dhbot login --account main --headed" in proc.stdout + proc.stderr
    report = workspace.last_report()
    assert {o["outcome"] for o in report["orders"]} == {"skipped"}
    assert "captcha" in report["stopped"]
    assert portal.cancel_requests() == []


def test_changed_portal_fails_fast_naming_the_profile_key(workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(layout="v2")
    orders = by_status(portal, "待发货", 6)
    job = workspace.write_job([{"order_no": n} for n in orders])
    workspace.dhbot("run", str(job), check_code=1)
    report = workspace.last_report()
    assert {o["outcome"] for o in report["orders"]} == {"failed"}
    first = [o for o in report["orders"] if "not attempted" not in o["error"]]
    assert first, report["orders"]
    for row in first:
        # v2 renames 订单管理 in the menu: the first step that meets the change names it.
        assert "nav.to_orders.1" in row["error"] and "订单管理" in row["error"]
        assert "page=home" in row["error"]
        assert row["attempts"] == 1  # not retried
        # Fast: one wait for the element (timeout_s 5), no retry round (a load-proof bound,
        # not wall time of the whole run).
        assert row["duration_s"] < 4 * 5, row
    assert report["retries"] == 0
    # After a few orders in a row the rest fail without touching the portal.
    assert any("not attempted" in o["error"] for o in report["orders"])
    assert portal.cancel_requests() == []


def test_a_renamed_reason_option_fails_fast_naming_reasons_code(workspace: Workspace) -> None:
    """The portal renamed 缺货: it used to time out as a raw Playwright error, be retried as
    transient, and never trip the three-in-a-row fuse."""
    import yaml

    from flows.profile import profile_path

    profile = yaml.safe_load(profile_path("mock").read_text(encoding="utf-8"))
    profile["reasons"]["out_of_stock"] = "库存不足"  # what the portal no longer offers
    path = workspace.root / "renamed.yaml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    workspace.write_config(portal={"profile": str(path)})
    orders = by_status(workspace.portal, "待发货", 8)
    job = workspace.write_job([{"order_no": n} for n in orders])
    workspace.dhbot("run", str(job), check_code=1)
    report = workspace.last_report()
    assert {o["outcome"] for o in report["orders"]} == {"failed"}
    tried = [o for o in report["orders"] if "not attempted" not in o["error"]]
    assert 3 <= len(tried) < len(orders), report["orders"]  # then the fuse trips
    for row in tried:
        assert "profile key reasons.out_of_stock (库存不足)" in row["error"], row["error"]
        assert "缺货" in row["error"]  # what the portal offers instead
        assert row["attempts"] == 1 and row["retries"] == 0, row
    assert workspace.portal.cancel_requests() == []


def test_rate_limit_slows_the_account_down(workspace: Workspace) -> None:
    portal = workspace.portal
    # 6 page loads per 5 s: about half of what the bot would do unchecked.
    portal.set_faults(rate_limit_per_minute=6, rate_limit_window_s=5)
    # Not cancellable: one page load each (the list shows the status); enough of them that
    # the steady pace, not the first burst of all tabs, decides the count of 429s.
    orders = by_status(portal, "已发货", 10)
    job = workspace.write_job([{"order_no": n} for n in orders])
    workspace.dhbot("run", str(job), check_code=0, timeout=240)
    report = workspace.last_report()
    assert {o["outcome"] for o in report["orders"]} == {"not_cancellable"}
    assert report["retries"] > 0
    # Backing off keeps the 429 answers few: the bot does not hammer.
    codes = portal.stats()["status_codes"]
    assert codes.get("429", 0) <= codes.get("200", 0) // 2, codes


def test_busy_account_exits_4_or_waits(workspace: Workspace) -> None:
    job = workspace.write_job([{"order_no": by_status(workspace.portal, "已发货")[0]}])
    lock = workspace.account_lock()
    lock.acquire()
    try:
        proc = workspace.dhbot("run", str(job), check_code=4)
        assert "in use by another dhbot run" in proc.stderr
        # Refused before anything was made: no empty run folder is left behind.
        assert not list((workspace.root / "runs").glob("*"))
        workspace.write_config(concurrency={"on_busy_account": "wait", "busy_wait_s": 1})
        workspace.dhbot("run", str(job), check_code=4)
    finally:
        lock.release()
    workspace.write_config(concurrency={"on_busy_account": "wait", "busy_wait_s": 30})
    lock.acquire()
    waiting = _start(workspace, "run", str(job))
    time.sleep(2)
    assert waiting.poll() is None  # still waiting for the account
    lock.release()
    assert waiting.wait(timeout=120) == 0
    assert workspace.portal.cancel_requests() == []


def test_one_seller_under_two_names_is_still_one_account(workspace: Workspace) -> None:
    """Locks are keyed by the portal identity (host + user name), not the configured name."""
    job = workspace.write_job([{"order_no": by_status(workspace.portal, "已发货")[0]}])
    other = workspace.root / "other.yaml"
    text = workspace.config.read_text(encoding="utf-8").replace("name: main", "name: shop-a")
    other.write_text(text.replace("DHBOT_PASSWORD_MAIN", "DHBOT_PASSWORD_SHOP"),
                     encoding="utf-8")
    lock = workspace.account_lock("main")
    lock.acquire()
    try:
        proc = workspace.dhbot("run", str(job), "--config", str(other), check_code=4,
                               extra_env={"DHBOT_PASSWORD_SHOP": "demo-pass"})
    finally:
        lock.release()
    assert "in use by another dhbot run" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0


def test_sigterm_writes_the_report_and_leaves_no_browser(workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(latency_ms=80)
    orders = by_status(portal, "待发货", 16)  # the run is stopped after 2 of them
    job = workspace.write_job([{"order_no": n} for n in orders])
    proc = _start(workspace, "run", str(job))
    deadline = time.monotonic() + 60
    while len(portal.cancel_requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    family = descendants(proc.pid)
    assert family, "the run started no browser"
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = workspace.last_report()
    outcomes = Counter(o["outcome"] for o in report["orders"])
    assert outcomes["skipped"] > 0 and outcomes["submitted"] >= 2
    assert "SIGTERM" in report["stopped"]
    assert not wait_gone(family), "browser processes outlived the run"
    # The rest is done by running the same job again, each order exactly once.
    portal.set_faults(latency_ms=0)
    workspace.dhbot("run", str(job), check_code=0, timeout=240)
    assert Counter(r["order_no"] for r in portal.cancel_requests()) == Counter(
        {n: 1 for n in orders})


def test_secrets_never_reach_files_or_output(workspace: Workspace) -> None:
    portal = workspace.portal
    # The run outlives a few sessions of 10 pages, so the bot logs in again while tracing.
    _trace_through_relogins(workspace, pages=10)
    orders = [*by_status(portal, "待发货", 6), "9999999999"]
    job = workspace.write_job([{"order_no": n} for n in orders])
    proc = workspace.dhbot("run", "-v", str(job))
    assert proc.returncode in (0, 1), proc.stderr
    assert portal.stats()["logins"]["demo_seller"] >= 2  # logged in again under tracing
    session_file = workspace.session_file()
    cookie = next(c["value"] for c in json.loads(session_file.read_text())["cookies"]
                  if c["name"] == "DHSESSID")
    secrets = [b"demo-pass", cookie.encode()]
    traces = list((workspace.root / "runs").glob("*/traces/*.zip"))
    assert traces, "trace: always kept no trace"
    import zipfile

    blobs: dict[str, bytes] = {"stdout": proc.stdout.encode(), "stderr": proc.stderr.encode()}
    for path in workspace.root.rglob("*"):
        if not path.is_file() or path == session_file or path.suffix == ".yaml":
            continue  # the saved session holds the cookie by design (0600, checked elsewhere)
        blobs[str(path)] = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    blobs[f"{path}!{name}"] = archive.read(name)
    leaks = [name for name, data in blobs.items() for s in secrets if s in data]
    assert leaks == []
    for path in traces:
        assert path.stat().st_mode & 0o777 == 0o600
