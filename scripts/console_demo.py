"""`make console`: the web console on the demo: start the mock portal, add two console users
(an operator and an approver, with new random passwords printed once), serve the console.

    .venv/bin/python scripts/console_demo.py [--port 8300] [--screenshots DIR]

With --screenshots, it walks through a job in a headless browser instead (upload, preview,
approval, run) and saves the main pages as PNGs into DIR (docs/ keeps them), then stops.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "demo" / ".console-state"
DEMO_PASSWORD = "demo-pass"  # the mock portal's published demo account
USERS = (("ops", "operator"), ("lead", "approver"))


def _start_portal() -> tuple[subprocess.Popen[str], str]:
    portal = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "--host", "127.0.0.1", "--port", "0",
         "--seed", "42", "--orders", "200"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert portal.stdout is not None
    for line in portal.stdout:
        if line.startswith("mock portal running at "):
            return portal, line.split(" at ", 1)[1].strip()
    raise SystemExit("the mock portal did not start")


def _dhbot(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "bot.cli", *args, "--config",
                    str(ROOT / "demo" / "config.yaml")], cwd=ROOT, env=env, input=stdin,
                   text=True, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--screenshots", type=Path, metavar="DIR")
    args = parser.parse_args()
    shutil.rmtree(STATE, ignore_errors=True)  # a fresh demo each time
    portal, url = _start_portal()
    env = {**os.environ, "DHBOT_PASSWORD_MAIN": DEMO_PASSWORD, "DHBOT_PORTAL__BASE_URL": url,
           "DHBOT_PATHS__STATE_DIR": str(STATE), "DHBOT_PATHS__RUNS_DIR": str(STATE / "runs")}
    passwords = {name: secrets.token_urlsafe(9) for name, _ in USERS}
    console: subprocess.Popen[bytes] | None = None
    try:
        for name, role in USERS:
            _dhbot(env, "user", "add", name, "--role", role, "--password-stdin",
                   stdin=passwords[name] + "\n")
        console = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(args.port), "--config",
             str(ROOT / "demo" / "config.yaml")], cwd=ROOT, env=env, start_new_session=True)
        site = f"http://127.0.0.1:{args.port}"
        _wait(site + "/login", console)
        if args.screenshots:
            return _screenshots(site, url, passwords, args.screenshots)
        print(f"\nmock portal: {url}\nweb console: {site}/\n")
        for name, role in USERS:
            print(f"  {name:5} ({role}): password {passwords[name]}")
        print("\nUpload demo/orders.csv as ops, approve it as lead. Ctrl-C stops both.")
        console.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in (console, portal):
            if child is not None and child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(timeout=90)


def _wait(url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit("dhbot serve stopped")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("dhbot serve did not start")


def _screenshots(site: str, portal: str, passwords: dict[str, str], folder: Path) -> int:
    """Walk a job through the console in a browser and keep the main pages."""
    from playwright.sync_api import FilePayload, sync_playwright

    from bot.browser import find_chromium, launch_args

    orders = httpx.get(portal + "__admin/orders", params={"account": "demo_seller",
                                                         "status": "待发货"}).json()
    shipped = httpx.get(portal + "__admin/orders", params={"account": "demo_seller",
                                                          "status": "已发货"}).json()
    rows = [o["order_no"] for o in orders[:3]] + [shipped[0]["order_no"]]
    csv = "order_no,reason,note\n" + "".join(f"{no},out_of_stock,仓库断货，无法按时发货\n"
                                             for no in rows)
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=launch_args())
        page = browser.new_page(viewport={"width": 1280, "height": 860})

        def sign_in(name: str) -> None:
            page.goto(site + "/login")
            page.fill("#name", name)
            page.fill("#password", passwords[name])
            page.click("button[type=submit]")
            page.wait_for_url(site + "/runs")

        sign_in("ops")
        page.goto(site + "/jobs/new")
        page.set_input_files("#file", files=FilePayload(name="orders.csv", mimeType="text/csv",
                                                        buffer=csv.encode("utf-8")))
        page.click("#submit")
        page.locator("tr.preview-order").nth(3).wait_for(timeout=120_000)
        job_url = page.url
        page.click("header form button")
        sign_in("lead")
        page.goto(job_url)
        page.screenshot(path=str(folder / "console-job.png"), full_page=True)
        page.fill("#comment", "已核对，同意取消")
        page.click("#approve")
        page.locator("tr.report-order").nth(3).wait_for(timeout=120_000)
        page.screenshot(path=str(folder / "console-run.png"), full_page=True)
        page.goto(site + "/runs")
        page.screenshot(path=str(folder / "console-runs.png"), full_page=True)
        browser.close()
    print(f"screenshots in {folder}: console-job.png, console-run.png, console-runs.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
