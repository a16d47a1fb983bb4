"""The admin API and every fault knob: what a bot sees when the portal misbehaves."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.mock_portal.conftest import OTHER_ACCOUNT
from tests.mock_portal.pages import SellerClient, buttons, by_role, h1, links
from tests.portal_server import PortalServer


def first(portal: PortalServer, status: str) -> dict[str, str]:
    return portal.orders(account="demo_seller", status=status)[0]


def test_health_and_order_filters(portal: PortalServer) -> None:
    assert portal.admin.get("__admin/health").json() == {"ok": True}
    everything = portal.orders()
    assert len(everything) == 200
    assert [o["order_no"] for o in everything[:2]] == ["1455953150", "1455953151"]
    # round-robin over accounts, demo_seller first
    assert [o["account"] for o in everything[:4]] == ["demo_seller", OTHER_ACCOUNT[0]] * 2
    pending = portal.orders(account="demo_seller", status="待发货")
    assert pending and all(
        o["account"] == "demo_seller" and o["status"] == "待发货" for o in pending
    )


def test_faults_get_put_and_validation(portal: PortalServer) -> None:
    faults = portal.admin.get("__admin/faults").json()
    assert faults == {
        "latency_ms": 0,
        "latency_jitter_ms": 0,
        "error_rates": {},
        "commit_then_fail": 0.0,
        "commit_then_fail_mode": "status500",
        "session_lifetime_s": 1800,
        "session_max_pages": 0,
        "captcha": False,
        "rate_limit_per_minute": 0,
        "message_rate_per_minute": 10,
        "rate_limit_window_s": 60,
        "layout": "v1",
        "rows_delay_ms": 300,
        "insufficient_funds": False,
        "submit_delay_ms": 0,
    }
    merged = portal.set_faults(latency_ms=5, error_rates={"detail": 0.5})
    assert merged == {**faults, "latency_ms": 5, "error_rates": {"detail": 0.5}}
    for bad in (
        {"no_such_knob": 1},
        {"latency_ms": "fast"},
        {"captcha": 1},
        {"layout": "v3"},
        {"error_rates": {"nowhere": 1.0}},
        {"commit_then_fail": 2},
    ):
        response = portal.admin.put("__admin/faults", json=bad)
        assert response.status_code == 400, bad
        assert next(iter(bad)) in response.json()["error"]
    assert portal.admin.get("__admin/faults").json() == merged


def test_reset_forgets_everything(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "等待买家付款")
    seller.post_form(f"/orders/detail/{order['internal_id']}/cancel", {"reason": "out_of_stock"})
    portal.set_faults(layout="v2")
    assert portal.cancel_requests() and portal.stats()["requests"] > 0
    portal.reset()
    assert portal.cancel_requests() == [] and portal.messages() == []
    assert portal.stats()["requests"] == 0
    assert portal.admin.get("__admin/faults").json()["layout"] == "v1"
    assert first(portal, "等待买家付款") == order
    assert seller.get("/mydh").status_code == 303  # sessions are gone too
    assert portal.admin.post("__admin/reset", json={"seed": "x"}).status_code == 400


def test_latency_is_added_to_pages_but_not_admin(
    portal: PortalServer, client: SellerClient
) -> None:
    start = time.perf_counter()
    client.get("/")
    fast = time.perf_counter() - start
    # A latency far above any scheduling hiccup of a loaded machine: the page waits for
    # it, the admin call does not.
    portal.set_faults(latency_ms=1200)
    start = time.perf_counter()
    assert client.get("/").status_code == 200
    assert time.perf_counter() - start >= 1.19
    start = time.perf_counter()
    portal.admin.get("__admin/health")
    assert time.perf_counter() - start < 0.8 + fast


def test_error_rate_one_gives_500_page(portal: PortalServer, seller: SellerClient) -> None:
    portal.set_faults(error_rates={"orders": 1.0})
    response = seller.get("/orders")
    assert response.status_code == 500
    assert h1(response.text) == "系统繁忙"
    assert "服务器内部错误，请稍后再试。" in response.text
    assert seller.get("/mydh").status_code == 200
    portal.set_faults(error_rates={"*": 1.0})
    assert seller.get("/mydh").status_code == 500
    assert portal.admin.get("__admin/health").status_code == 200


def test_error_rates_are_seeded(portal: PortalServer, seller: SellerClient) -> None:
    def run() -> list[int]:
        portal.reset()
        portal.set_faults(error_rates={"static": 0.5})
        return [seller.get("/static/portal.css").status_code for _ in range(30)]

    first_run = run()
    assert set(first_run) == {200, 500}
    assert run() == first_run


@pytest.mark.parametrize("status", ["等待买家付款", "待发货"])
def test_commit_then_fail_status500(
    portal: PortalServer, seller: SellerClient, status: str
) -> None:
    portal.set_faults(commit_then_fail=1.0)
    order = first(portal, status)
    response = seller.post_form(
        f"/orders/detail/{order['internal_id']}/cancel", {"reason": "out_of_stock"}
    )
    assert response.status_code == 500 and h1(response.text) == "系统繁忙"
    assert [r["accepted"] for r in portal.cancel_requests()] == [True]
    expected = "已取消" if status == "等待买家付款" else "取消审核中"
    assert any(o["order_no"] == order["order_no"] for o in portal.orders(status=expected))
    # no success notice is left waiting for the next visit
    page = seller.page(f"/orders/detail/{order['internal_id']}")
    assert by_role(page, "status") == []


def test_commit_then_fail_drop(portal: PortalServer, seller: SellerClient) -> None:
    portal.set_faults(commit_then_fail=1.0, commit_then_fail_mode="drop")
    order = first(portal, "待发货")
    with pytest.raises(httpx.TransportError):
        seller.post_form(
            f"/orders/detail/{order['internal_id']}/cancel", {"reason": "out_of_stock"}
        )
    assert [r["accepted"] for r in portal.cancel_requests()] == [True]
    assert any(o["order_no"] == order["order_no"] for o in portal.orders(status="取消审核中"))
    # refused submits never fail this way
    again = seller.post_form(
        f"/orders/detail/{order['internal_id']}/cancel", {"reason": "out_of_stock"}
    )
    assert again.status_code == 303


def test_rate_limit_gives_429_page(portal: PortalServer, seller: SellerClient) -> None:
    portal.set_faults(rate_limit_per_minute=3)
    codes = [seller.get("/mydh").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    page = seller.get("/orders").text
    assert h1(page) == "操作太频繁" and "请稍后再试。" in page


def test_layout_v2_renames_exactly_four_labels(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "待发货")
    detail = f"/orders/detail/{order['internal_id']}"
    pages = ("/mydh", "/orders", detail)
    v1 = {p: seller.page(p) for p in pages}
    portal.set_faults(layout="v2")
    v2 = {p: seller.page(p) for p in pages}
    assert "我的订单" in links(v2["/mydh"]) and "订单管理" not in links(v2["/mydh"])
    assert h1(v2["/orders"]) == "我的订单"
    assert "搜 索" in buttons(v2["/orders"]) and "搜索" not in buttons(v2["/orders"])
    assert "申请取消" in buttons(v2[detail]) and "取消订单" not in buttons(v2[detail])
    assert "提 交" in buttons(v2[detail]) and "提交" not in buttons(v2[detail])
    assert '<h2 id="cancel-title">取消订单</h2>' in v2[detail]
    renames = [
        ("订单管理", "我的订单"),
        ("搜索", "搜 索"),
        ("取消订单", "申请取消"),
        ("提交", "提 交"),
    ]
    for path in pages:
        old = v1[path]
        new = v2[path]
        for before, after in renames:
            # apply the rename only where v2 changed it, then the pages must be identical
            old = old.replace(f">{before}<", f">{after}<").replace(
                f"<title>{before} -", f"<title>{after} -"
            )
        old = old.replace(
            '<h2 id="cancel-title">申请取消</h2>', '<h2 id="cancel-title">取消订单</h2>'
        )
        assert new == old


def test_stats_count_requests_logins_and_codes(portal: PortalServer, seller: SellerClient) -> None:
    seller.get("/mydh")
    seller.get("/orders")
    seller.get("/nope")
    stats = portal.stats()
    assert stats["logins"] == {"demo_seller": 1}
    assert stats["by_route"]["login"] == 1 and stats["by_route"]["login_submit"] == 1
    assert stats["by_route"]["home"] == 1 and stats["by_route"]["orders"] == 1
    assert stats["requests"] == 4
    assert stats["status_codes"] == {"200": 3, "303": 1}
    assert stats["max_concurrent_sessions"] == {"demo_seller": 1}


def test_max_concurrent_sessions(portal: PortalServer) -> None:
    clients = [SellerClient(portal.url) for _ in range(3)]
    try:
        for c in clients[:2]:
            c.login("demo_seller", "demo-pass")
        clients[2].login(*OTHER_ACCOUNT)
        portal.set_faults(latency_ms=400)
        # two sessions of demo_seller in flight at once, one of them twice
        jobs = [clients[0], clients[0], clients[1], clients[2]]
        threads = [threading.Thread(target=c.get, args=("/mydh",)) for c in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for c in clients:
            c.http.close()
    assert portal.stats()["max_concurrent_sessions"] == {"demo_seller": 2, "other_seller": 1}
