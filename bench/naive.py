"""The baseline: the script a first-time Playwright user writes from the seed article.

For each order, one after the other: launch the browser, log in (landing page, 登录 at the
top right, 用户名/密码, 登录), 我的敦煌 → 订单管理, search the 订单号, open the order, 取消订单,
choose the 取消原因, fill 详细说明, 提交, 确定, wait for the result, close the browser.

It is meant to be an honest baseline, not a straw man: Playwright's sync API with its
auto-waiting locators, a `wait_for_url` where the next element already exists on the current
page (the header's 我的敦煌, an order link on the unfiltered list), and no sleeps.

Run by bench/run.py as a subprocess so that its CPU and memory are measured apart:
    python bench/naive.py --base-url URL --orders orders.json --out times.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

from playwright.sync_api import BrowserType, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.browser import launch_args

USERNAME = "demo_seller"
CHROMIUM = "/usr/bin/chromium"


def cancel_one(chromium: BrowserType, base_url: str, order_no: str, password: str,
               reason_label: str, note: str, executable: str = CHROMIUM) -> str:
    """Cancel one order in a browser of its own; returns the notice the portal showed."""
    browser = chromium.launch(executable_path=executable, args=launch_args())
    try:
        page = browser.new_page()
        page.goto(base_url)
        page.get_by_role("link", name="登录").click()
        page.get_by_label("用户名").fill(USERNAME)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/mydh")
        page.get_by_role("link", name="我的敦煌").click()
        page.get_by_role("link", name="订单管理").click()
        page.wait_for_url("**/orders")
        page.get_by_label("订单号").fill(order_no)
        page.get_by_role("button", name="搜索").click()
        page.wait_for_url(re.compile(r"order_no=" + re.escape(order_no)))
        page.get_by_role("link", name=order_no).click()
        page.get_by_role("button", name="取消订单").click()
        page.get_by_label("取消原因").select_option(label=reason_label)
        page.get_by_label("详细说明").fill(note)
        page.get_by_role("button", name="提交").click()
        page.get_by_role("button", name="确定").click()
        notice = page.get_by_role("status")
        expect(notice).to_be_visible()
        return notice.inner_text()
    finally:
        browser.close()


def main() -> int:
    """Cancel every order in the file, one at a time; write per-order times as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--orders", type=Path, required=True, help="JSON list of 订单号")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reason", default="缺货", help="option text of 取消原因")
    parser.add_argument("--note", default="仓库断货，无法按时发货")
    parser.add_argument("--chromium", default=CHROMIUM,
                        help="the browser to launch (default: Debian's full Chromium)")
    args = parser.parse_args()
    orders: list[str] = json.loads(args.orders.read_text(encoding="utf-8"))
    password = os.environ.get("DHBOT_PASSWORD_MAIN", "demo-pass")
    times: list[float] = []
    errors: dict[str, str] = {}
    with sync_playwright() as pw:
        for order_no in orders:
            started = time.perf_counter()
            try:
                cancel_one(pw.chromium, args.base_url, order_no, password, args.reason,
                           args.note, args.chromium)
            except Exception as exc:  # record it and go on, as a person re-running would
                errors[order_no] = "".join(traceback.format_exception_only(exc)).strip()
            times.append(time.perf_counter() - started)
    args.out.write_text(json.dumps({"per_order_s": times, "errors": errors},
                                   ensure_ascii=False), encoding="utf-8")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
