"""The floor: the portal requests a cancellation needs, sent by httpx with no browser at all.

Log in once (GET /login for the CSRF token, POST /login), then per order: GET
/orders?order_no=… (the search), parse the detail link, GET the detail page, parse the cancel
form's CSRF token, POST /orders/detail/{id}/cancel with reason and note, follow the redirect to
the detail page and read its notice. That is the server work one order costs, with nothing on
the client but parsing: the lower bound for any tool that goes through the pages.

`--connections c` runs c order workers at once on the one signed-in client (one session, up
to c connections), each taking the next order when it is done: the same concurrency as dhbot
with c tabs, which also share one signed-in session.

Run by bench/run.py as a subprocess:
    python bench/floor.py --base-url URL --orders orders.json --out times.json [--connections c]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

import httpx

USERNAME = "demo_seller"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NOTICE = re.compile(r'role="status"[^>]*>([^<]+)<')


class FloorError(Exception):
    """The portal did not answer the way the cancel flow expects."""


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    if not found:
        raise FloorError("no csrf_token in the page")
    return found.group(1)


async def log_in(client: httpx.AsyncClient, password: str) -> None:
    """GET the form for its token, POST the credentials, land on 我的敦煌."""
    form = await client.get("/login")
    answer = await client.post("/login", data={"csrf_token": _csrf(form.text), "next": "",
                                               "username": USERNAME, "password": password})
    if answer.url.path != "/mydh":
        raise FloorError(f"login ended on {answer.url.path}")


async def cancel_one(client: httpx.AsyncClient, order_no: str, reason: str, note: str) -> str:
    """Search, open, submit the cancel form; returns the notice shown afterwards."""
    listing = await client.get("/orders", params={"order_no": order_no})
    link = re.search(r'href="(/orders/detail/[^"]+)">' + re.escape(order_no) + "<", listing.text)
    if not link:
        raise FloorError(f"{order_no}: not in the search result")
    detail = await client.get(link.group(1))
    answer = await client.post(link.group(1) + "/cancel",
                               data={"csrf_token": _csrf(detail.text), "reason": reason,
                                     "note": note})
    notice = NOTICE.search(answer.text)
    if answer.status_code != 200 or not notice:
        raise FloorError(f"{order_no}: HTTP {answer.status_code}, no notice after the submit")
    return notice.group(1)


async def cancel_all(base_url: str, orders: list[str], connections: int, password: str,
                     reason: str, note: str) -> tuple[list[float], dict[str, str]]:
    """Log in once, then cancel with `connections` workers at once; per-order times, errors."""
    times: list[float] = []
    errors: dict[str, str] = {}
    todo = iter(orders)  # shared: each worker takes the next order when it is free

    async def worker(client: httpx.AsyncClient) -> None:
        for order_no in todo:
            started = time.perf_counter()
            try:
                await cancel_one(client, order_no, reason, note)
            except (FloorError, httpx.HTTPError) as exc:
                errors[order_no] = str(exc)
            times.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=True, trust_env=False,
                                 timeout=30.0, limits=limits) as client:
        await log_in(client, password)
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return times, errors


def main() -> int:
    """Cancel every order in the file; write per-order times as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--orders", type=Path, required=True, help="JSON list of 订单号")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reason", default="out_of_stock", help="value of 取消原因's option")
    parser.add_argument("--note", default="仓库断货，无法按时发货")
    parser.add_argument("--connections", type=int, default=1,
                        help="orders in flight at once (as dhbot's --pages)")
    args = parser.parse_args()
    orders: list[str] = json.loads(args.orders.read_text(encoding="utf-8"))
    password = os.environ.get("DHBOT_PASSWORD_MAIN", "demo-pass")
    times, errors = asyncio.run(cancel_all(args.base_url, orders, max(1, args.connections),
                                           password, args.reason, args.note))
    args.out.write_text(json.dumps({"per_order_s": times, "errors": errors},
                                   ensure_ascii=False), encoding="utf-8")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
