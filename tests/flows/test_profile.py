"""Portal profiles: both bundled ones load, and a bad one is refused naming the key and what
is allowed (no browser)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.errors import ProfileError
from bot.job import load_job
from flows.locators import PlainText, squeeze, text_pattern
from flows.profile import PROFILES_DIR, Profile, element, load_profile

MOCK = yaml.safe_load((PROFILES_DIR / "mock.yaml").read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def changed(**sections: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(MOCK)
    for name, values in sections.items():
        data[name].update(values)
    return data


def refusal(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, data))
    return str(info.value)


def test_bundled_profiles_load_with_their_absent_keys() -> None:
    mock, legacy = load_profile("mock"), load_profile("legacy")
    assert mock.can_message and not legacy.can_message
    assert element(legacy, "home.heading") == (None, "heading")
    assert element(legacy, "detail.contact_button") == (None, "clickable")
    assert legacy.dialog.confirm is not None and legacy.dialog.confirm.native
    steps = [(s.action, s.target.describe()) for s in legacy.nav.to_orders]
    assert steps == [("click", "我的DHgate"), ("hover", "text=交易, css=.menu-title"),
                     ("click", "我的订单")]
    # Both lists show each order's status under 订单状态; a profile without the key reads
    # every status on the detail page.
    for prof in (mock, legacy):
        assert element(prof, "list.status_column") == (PlainText(text_plain="订单状态"), "text")
    without = copy.deepcopy(MOCK)
    del without["list"]["status_column"]
    assert element(Profile.model_validate(without), "list.status_column") == (None, "text")
    # legacy.yaml differs from mock.yaml only in the profile: same reasons, same paths.
    assert legacy.reasons == mock.reasons and legacy.paths == mock.paths


@pytest.mark.parametrize(("change", "expected"), [
    ({"list": {"search_button": {"css": "a.btn", "label": "x"}}},
     "list.search_button: give exactly one of role, label, text, placeholder, css, xpath, near"),
    ({"list": {"search_button": {"cs": "a.btn"}}},
     "list.search_button: cs: unknown locator key (known: role, label"),
    ({"list": {"search_button": {"name": "搜索"}}},
     "list.search_button: name and name_regex go with role"),
    ({"list": {"search_button": {"role": "button", "name_regex": "(("}}},
     "list.search_button: name_regex is not a regular expression"),
    ({"list": {"search_button": {"any": [{"css": "a"}], "nth": 1}}},
     "list.search_button: `any` lists whole alternatives"),
    ({"list": {"search_button": ""}}, "list.search_button: empty text"),
    ({"list": {"search_button": 5}}, "list.search_button: a locator is plain text or a mapping"),
    ({"list": {"status_column": {"css": "th", "label": "订单状态"}}},
     "list.status_column: give exactly one of role, label, text, placeholder, css, xpath"),
    ({"nav": {"to_orders": [{"click": "a", "hover": "b"}]}},
     "nav.to_orders.0: a step is either {click: <locator>} or {hover: <locator>}"),
    ({"nav": {"to_orders": []}}, "nav.to_orders: List should have at least 1 item"),
    ({"dialog": {"confirm": {"native": True, "button": "确定"}}},
     "dialog.confirm: a native confirm() has no container or button"),
    ({"dialog": {"confirm": {"container": "确认取消"}}},
     "dialog.confirm: an in-page confirmation needs container and button"),
    ({"list": {"search_button": {"css": "a", "frame": {"css": "x", "name": "y"}}}},
     "list.search_button: frame: a frame is found by exactly one of css, name or url"),
    ({"detail": {"contact_button": "联系买家"}, "message": None},
     "detail.contact_button is set but the message section is missing"),
])
def test_bad_profiles_name_the_key_and_what_is_allowed(tmp_path: Path, change: dict[str, Any],
                                                       expected: str) -> None:
    data = copy.deepcopy(MOCK)
    for section, values in change.items():
        if values is None or not isinstance(data.get(section), dict):
            data[section] = values
        else:
            data[section].update(values)
    assert expected in refusal(tmp_path, data)


def test_a_missing_key_says_to_write_null(tmp_path: Path) -> None:
    data = copy.deepcopy(MOCK)
    del data["home"]["heading"]
    assert "home.heading: missing (write null if the portal has no such element)" in \
        refusal(tmp_path, data)


def test_keys_of_the_old_profile_format_say_what_replaced_them(tmp_path: Path) -> None:
    data = changed(list={"table_css": "table.order-list"})
    assert "list.table_css is now list.table" in refusal(tmp_path, data)


def test_text_is_compared_without_whitespace() -> None:
    pattern = text_pattern("搜索")
    assert pattern.match("搜 索") and pattern.match(" 搜索 ") and pattern.match("搜\u3000索")
    assert not pattern.match("搜索框")
    label = text_pattern("订单号：", colon=True)
    assert label.match("订单号") and label.match("订单号:") and label.match("订 单 号：")
    assert squeeze(" 提 交\n") == "提交"


def test_status_and_notice_meanings_ignore_spacing_and_match_inside_longer_notices() -> None:
    legacy = load_profile("legacy")
    assert legacy.status_meaning(" 等待 您发货 ") == "cancellable"
    assert legacy.status_meaning("没有这个状态") == "not_cancellable"
    assert legacy.notice_meaning(None, "订单已取消，已扣除违约金US $5.00") == (
        "cancelled", "订单已取消")
    assert legacy.notice_meaning("资金账户余额不足，无法支付违约金，取消失败", None) == (
        "insufficient_funds", "资金账户余额不足")
    assert legacy.notice_meaning("该订单当前 状态不可取消", None) == (
        "refused", "该订单当前状态不可取消")
    assert legacy.notice_meaning("系统公告", None) is None


def test_a_buyer_message_on_a_portal_without_contact_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text('defaults: {reason: out_of_stock, message: "您好，订单{order_no}已取消"}\n'
                   'orders:\n  - order_no: "1455953156"\n', encoding="utf-8")
    load_job(job, load_profile("mock"))  # fine where 联系买家 exists
    with pytest.raises(Exception) as info:
        load_job(job, load_profile("legacy"))
    assert "job.yaml:3" in str(info.value)
    assert "has no 联系买家 (detail.contact_button: null)" in str(info.value)


@pytest.mark.parametrize(("status", "amount", "fine"), [
    ("待发货", "US $123.45", "US $12.34"),  # 10 %, down to the cent
    ("待发货", "US $12.00", "US $5.00"),  # at least US $5
    ("待发货", "US $1,000.00", "US $20.00"),  # at most US $20
    ("待 发货", "US $80", "US $8.00"),  # the status as the page spaces it
    ("等待买家付款", "US $80.00", "none"),  # unpaid: cancelled free
    ("待发货", None, None),  # no amount on the page: unknown, never a guess
    ("待发货", "面议", None),
])
def test_fine_is_a_share_of_what_the_buyer_paid_within_bounds(
        status: str, amount: str | None, fine: str | None) -> None:
    rule = load_profile("mock").fine
    assert rule is not None
    assert rule.estimate(status, amount) == fine
