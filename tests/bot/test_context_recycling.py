"""A long run's memory stays bounded: every browser.recycle_after_orders orders of an account
its browser context is replaced, between orders, by a fresh one with the same session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from bot.config import AccountConfig, load_settings
from bot.errors import ConfigError
from tests.bot.conftest import Workspace, by_status, chromium_main

RECYCLED = "replacing it with a fresh one"


# -- the setting ---------------------------------------------------------------------------


def test_recycling_is_on_by_default_and_zero_turns_it_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml: the default itself
    default = load_settings(None, {}, {})
    assert default.settings.browser.recycle_after_orders == 200
    path = tmp_path / "config.yaml"
    path.write_text("browser:\n  recycle_after_orders: 0\n", encoding="utf-8")
    off = load_settings(path, {}, {})
    assert off.settings.browser.recycle_after_orders == 0
    assert off.sources["browser.recycle_after_orders"] == f"file:{path}"
    env = load_settings(None, {}, {"DHBOT_BROWSER__RECYCLE_AFTER_ORDERS": "50"})
    assert env.settings.browser.recycle_after_orders == 50


@pytest.mark.parametrize(("value", "expected"), [
    ("-1", "greater than or equal to 0"),
    ("often", "valid integer"),
    ("2.5", "valid integer"),
])
def test_a_bad_recycle_count_is_refused_naming_the_key(tmp_path: Path, value: str,
                                                       expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"browser:\n  recycle_after_orders: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {}, {})
    assert f"file:{path}: browser.recycle_after_orders:" in str(info.value)
    assert expected in str(info.value)


# -- the renderer's garbage ---------------------------------------------------------------


@pytest.mark.browser
def test_collect_garbage_gives_back_what_old_pages_left(tmp_path: Path) -> None:
    from playwright.async_api import Page

    from bot.browser import BrowserHost
    from bot.session import AccountSession
    from flows.profile import load_profile

    path = tmp_path / "config.yaml"
    path.write_text("paths:\n  state_dir: state\n", encoding="utf-8")
    settings = load_settings(path, {}, {}).settings
    account = AccountConfig(name="main", username="demo_seller", password_env="PW")

    async def pacer() -> None:
        return None

    async def heap_used(session: AccountSession, page: Page) -> float:
        assert session.context is not None
        cdp = await session.context.new_cdp_session(page)
        usage = await cdp.send("Runtime.getHeapUsage")
        await cdp.detach()
        return float(usage["usedSize"]) / 2**20

    async def main() -> tuple[float, float]:
        async with BrowserHost(settings) as host:
            session = AccountSession(host, settings, account, load_profile("mock"), pacer)
            await session.open()
            page = await session.new_page()
            await page.set_content("<p>订单</p>")
            # Objects that outlive young collections (measured while still held: V8 may
            # collect on its own any time after they are dropped, e.g. on a loaded
            # machine), then dropped: garbage V8 leaves in the old generation until its
            # next full collection, as a left page's heap is.
            await page.evaluate("() => { window.junk = Array.from({length: 1500000}, "
                                "(_, i) => ({i, s: 'order ' + i})); return 0 }")
            before = await heap_used(session, page)
            await page.evaluate("() => { window.junk = null }")
            await session.collect_garbage(page)
            after = await heap_used(session, page)
            await session.close()
            return before, after

    before, after = asyncio.run(main())
    assert before > 40, f"the objects were not made ({before} MB)"
    assert after < before / 4, (before, after)


# -- runs ----------------------------------------------------------------------------------


def _recycles(stderr: str) -> int:
    return sum(RECYCLED in line for line in stderr.splitlines())


@pytest.mark.e2e
@pytest.mark.browser
def test_recycled_contexts_keep_the_session_and_every_order_once(workspace: Workspace) -> None:
    portal = workspace.portal
    paid = by_status(portal, "待发货", 8)
    unpaid = by_status(portal, "等待买家付款", 2)
    cancelled = by_status(portal, "已取消")[0]
    shipped = by_status(portal, "已发货")[0]
    completed = by_status(portal, "交易成功")[0]
    pending = by_status(portal, "取消审核中")[0]
    expected = {**{n: "submitted" for n in paid}, **{n: "cancelled" for n in unpaid},
                cancelled: "already_cancelled", shipped: "not_cancellable",
                completed: "not_cancellable", pending: "already_requested",
                "9999999999": "not_found"}
    # Uneven page times keep the two tabs out of step, so when one finishes the fifth order
    # the other is mid-order: a context replaced under it would show as a retry.
    portal.set_faults(latency_ms=50, latency_jitter_ms=50)
    workspace.write_config(browser={"headless": True, "timeout_s": 5,
                                    "navigation_timeout_s": 15, "recycle_after_orders": 5},
                           concurrency={"pages_per_account": 2})
    job = workspace.write_job([{"order_no": n} for n in expected])

    proc = workspace.dhbot("run", "-v", str(job), check_code=0)

    # Two fresh contexts in 15 orders (after 5 and 10; none after the last order).
    assert _recycles(proc.stderr) == 2, proc.stderr
    assert "the tab's renderer collected its garbage" in proc.stderr
    report = workspace.last_report()
    assert Counter(o["order_no"] for o in report["orders"]) == Counter(list(expected))
    assert {o["order_no"]: o["outcome"] for o in report["orders"]} == expected
    # The context is replaced only between orders: no order met a tab closed under it.
    assert [o["order_no"] for o in report["orders"]
            if "connection" in (o["retry_reasons"] or {})] == []
    # One cancel request per cancellable order, none lost or sent twice across the swaps.
    cancellable = [*paid, *unpaid]
    assert Counter(r["order_no"] for r in portal.cancel_requests()) == Counter(cancellable)
    # The fresh contexts carried the session: no second login.
    assert portal.stats()["logins"]["demo_seller"] == 1


@pytest.mark.e2e
@pytest.mark.browser
def test_zero_never_recycles(workspace: Workspace) -> None:
    orders = by_status(workspace.portal, "已发货", 6)
    workspace.write_config(browser={"headless": True, "timeout_s": 5,
                                    "recycle_after_orders": 0},
                           concurrency={"pages_per_account": 2})
    proc = workspace.dhbot("run", "-v", str(workspace.write_job(
        [{"order_no": n} for n in orders])), check_code=0)
    assert _recycles(proc.stderr) == 0
    assert {o["outcome"] for o in workspace.last_report()["orders"]} == {"not_cancellable"}


@pytest.mark.e2e
@pytest.mark.browser
def test_the_trace_goes_on_in_each_fresh_context(workspace: Workspace) -> None:
    orders = by_status(workspace.portal, "已发货", 7)
    workspace.write_config(browser={"headless": True, "timeout_s": 5, "trace": "always",
                                    "recycle_after_orders": 3},
                           concurrency={"pages_per_account": 1})
    proc = workspace.dhbot("run", "-v", str(workspace.write_job(
        [{"order_no": n} for n in orders])), check_code=0)
    assert _recycles(proc.stderr) == 2
    traces = sorted((workspace.root / "runs").glob("*/traces/*.zip"))
    assert len(traces) >= 3  # a chunk per context
    seen = b""
    for path in traces:
        with zipfile.ZipFile(path) as archive:
            seen += b"".join(archive.read(name) for name in archive.namelist())
    # Every order's search is in the trace, those of the last context too.
    assert [n for n in orders if n.encode() not in seen] == []


@pytest.mark.e2e
@pytest.mark.browser
def test_recycling_goes_on_after_chromium_is_restarted(workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(latency_ms=120)
    orders = by_status(portal, "待发货", 14)
    workspace.write_config(browser={"headless": True, "timeout_s": 5,
                                    "navigation_timeout_s": 15, "recycle_after_orders": 4},
                           concurrency={"pages_per_account": 2})
    job = workspace.write_job([{"order_no": n} for n in orders])
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "-v", str(job)],
                            cwd=workspace.root, env=workspace.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(portal.cancel_requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    browser = chromium_main(proc.pid)
    assert browser is not None
    os.kill(browser, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "Chromium died" in err
    after_restart = err.split("Chromium died", 1)[1]
    assert _recycles(after_restart) >= 2, err
    assert {o["outcome"] for o in workspace.last_report()["orders"]} == {"submitted"}
    assert Counter(r["order_no"] for r in portal.cancel_requests()) == Counter(orders)
