"""The locator grammar in Chromium, on small pages written the way legacy backends are:
each test sets a page's HTML and asks the page objects what they find."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import yaml
from playwright.async_api import Browser, Page, async_playwright

from bot.browser import find_chromium, launch_args
from bot.errors import LockLost, ProfileMismatch
from flows.base_page import PortalPage
from flows.cancel_dialog import CancelDialog
from flows.order_list_page import OrderListPage
from flows.profile import PROFILES_DIR, Profile

pytestmark = pytest.mark.browser

MOCK = yaml.safe_load((PROFILES_DIR / "mock.yaml").read_text(encoding="utf-8"))
BASE = "http://portal.invalid/"
T = TypeVar("T")


def profile(**sections: dict[str, Any]) -> Profile:
    """The mock profile with some keys changed."""
    data = copy.deepcopy(MOCK)
    for name, values in sections.items():
        data[name].update(values)
    return Profile.model_validate(data)


class Chromium:
    """One browser for the module, driven from an event loop in a thread of its own (the
    sync pytest-playwright fixtures of other modules keep a loop running in this one)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.browser: Browser | None = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the browser's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def run(self, html: str, test: Callable[[Page], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            assert self.browser is not None
            page = await self.browser.new_page()
            try:
                await page.set_content(html)
                return await test(page)
            finally:
                await page.close()

        return self.call(go())


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    box = Chromium()

    async def start() -> Any:
        pw = await async_playwright().start()
        box.browser = await pw.chromium.launch(executable_path=find_chromium(),
                                               args=launch_args())
        return pw

    pw = box.call(start())
    yield box
    assert box.browser is not None
    box.call(box.browser.close())
    box.call(pw.stop())
    box.loop.call_soon_threadsafe(box.loop.stop)
    box.thread.join(timeout=10)
    box.loop.close()


def portal_page(page: Page, prof: Profile, cls: type[PortalPage] = PortalPage) -> Any:
    return cls(page, prof, BASE, element_timeout_ms=1_500)


async def text_of(prof: Profile, page: Page, key: str) -> str:
    found = await portal_page(page, prof).require(key, "test")
    return str(await found.evaluate("el => el.outerHTML"))


def test_plain_button_text_matches_link_buttons_inputs_and_spaced_text(
        chromium: Chromium) -> None:
    html = """<a href="/">我的订单</a>
    <td>订单号：<input type="hidden" name="order_no"><input type="text" name="order_no"></td>
    <a href="javascript:;" class="btn" id="s">搜 索</a>
    <input type="button" value="提 交" id="t">
    <a href="/login">登录</a> <input type="submit" value="登 录" id="l">"""
    prof = profile(list={"search_label": {"near": "订单号："}})

    async def test(page: Page) -> list[str]:
        return [await text_of(prof, page, key) for key in
                ("list.search_button", "dialog.submit_button", "login.submit_button",
                 "list.search_label")]

    search, submit, login, box = chromium.run(html, test)
    assert 'id="s"' in search  # 搜索 in the profile, 搜 索 on the page
    assert 'id="t"' in submit  # an <input type=button value="提 交">
    assert 'id="l"' in login  # the form's button wins over the 登录 link at the top
    assert 'type="text"' in box  # near skips the hidden field of the same name


def test_within_nth_css_xpath_placeholder_and_role_name_regex(chromium: Chromium) -> None:
    html = """<div class="a"><a class="btn" href="#">下一页</a></div>
    <div class="b"><a class="btn" id="want" href="#">下一页</a></div>
    <ul><li><a href="#" id="first">1</a></li><li><a href="#" id="second">2</a></li></ul>
    <input placeholder="请输入订单号" id="ph">
    <span class="x" id="xp">详情</span>
    <button id="rx">提交申请 (3)</button>"""
    prof = profile(list={
        "next_page": {"text": "下一页", "within": {"css": "div.b"}},
        "search_label": {"placeholder": "请输入订单号"},
        "search_button": {"css": "ul a", "nth": -1},
        "empty_text": {"xpath": "//span[@class='x']"},
    }, dialog={"submit_button": {"role": "button", "name_regex": "^提交申请"}})

    async def test(page: Page) -> list[str]:
        return [await text_of(prof, page, key) for key in
                ("list.next_page", "list.search_label", "list.search_button",
                 "list.empty_text", "dialog.submit_button")]

    found = chromium.run(html, test)
    for html_of, wanted in zip(found, ("want", "ph", "second", "xp", "rx"), strict=True):
        assert f'id="{wanted}"' in html_of


def test_a_button_inside_an_iframe(chromium: Chromium) -> None:
    html = """<iframe name="work" srcdoc='<a class="btn" id="in" href="#">提 交</a>'></iframe>
    <a class="btn" id="out" href="#">返回</a>"""
    prof = profile(dialog={"submit_button": {"role": "link", "name": "提交",
                                             "frame": {"name": "work"}}})

    async def test(page: Page) -> str:
        await page.frame_locator("iframe").locator("#in").wait_for()
        return await text_of(prof, page, "dialog.submit_button")

    assert 'id="in"' in chromium.run(html, test)


def test_any_takes_the_first_visible_alternative_in_profile_order(chromium: Chromium) -> None:
    html = """<a class="btn" href="#" id="refund">申请退款</a>
    <a class="btn" href="#" id="cancel" style="display:none">取消订单</a>"""
    first_hidden = profile(detail={"cancel_button": {"any": ["取消订单", "申请退款"]}})
    both = """<a class="btn" href="#" id="refund">申请退款</a>
    <a class="btn" href="#" id="cancel">取消订单</a>"""

    async def test(page: Page) -> str:
        return await text_of(first_hidden, page, "detail.cancel_button")

    assert 'id="refund"' in chromium.run(html, test)
    # Both shown: the profile's order decides, not the page's.
    assert 'id="cancel"' in chromium.run(both, test)


def test_missing_and_ambiguous_elements_fail_naming_the_key(chromium: Chromium) -> None:
    prof = profile()

    async def missing(page: Page) -> str:
        with pytest.raises(ProfileMismatch) as info:
            await portal_page(page, prof).require("list.search_button", "search")
        return str(info.value)

    assert "profile key list.search_button (搜索) matched nothing visible" in chromium.run(
        "<a href='#'>搜 索 一 下</a>", missing)
    assert "is ambiguous: 2 visible matches" in chromium.run(
        "<button>搜索</button><button>搜 索</button>", missing)


def test_fields_read_dl_pairs_inline_values_and_table_cells(chromium: Chromium) -> None:
    html = """<dialog><dl><dt>订单状态：</dt><dd>hidden copy</dd></dl></dialog>
    <ul><li>订单号：<span>1455953150</span></li><li>订单 状态：<span>等待您发货</span></li></ul>
    <table><tr><th>审核结果：</th><td>审核未通过</td></tr><tr><td>审核意见：缺少凭证</td></tr></table>
    <dl><dt>交易取消日期：</dt><dd>2025-06-01 10:00:00</dd></dl>"""
    prof = profile()

    async def test(page: Page) -> dict[str, str]:
        return await portal_page(page, prof).fields()

    assert chromium.run(html, test) == {
        "order_no": "1455953150", "status": "等待您发货", "review_result": "审核未通过",
        "review_comment": "缺少凭证", "cancel_date": "2025-06-01 10:00:00"}


def test_fields_drawn_late_are_waited_for_and_never_read_early(chromium: Chromium) -> None:
    # The page's script draws the fields some time after it is asked to: only once the
    # early read is done (a timer started at load would race a loaded machine).
    html = """<ul id="info"></ul><script>window.drawLater = () => setTimeout(() => {
        document.getElementById('info').innerHTML = '<li>订单状态：<span>等待您发货</span></li>';
    }, 700);</script>"""
    prof = profile()

    async def test(page: Page) -> tuple[dict[str, str], dict[str, str]]:
        obj = portal_page(page, prof)
        early = await obj.fields()
        await page.evaluate("window.drawLater()")
        return early, await obj.fields(wait_for="status")

    early, late = chromium.run(html, test)
    assert early == {} and late == {"status": "等待您发货"}

    async def never(page: Page) -> str:
        with pytest.raises(ProfileMismatch) as info:
            await portal_page(page, prof).fields(wait_for="status")
        return str(info.value)

    assert "detail.fields.status (订单状态：) shows no value" in chromium.run("<p>…</p>", never)


def test_a_list_drawn_late_is_read_only_once_ready(chromium: Chromium) -> None:
    html = """<table id="t"><tbody></tbody></table><div id="e" style="display:none">暂无订单</div>
    <script>setTimeout(() => { document.querySelector('#t tbody').innerHTML =
        '<tr><td><a href="/d/1">1455953150</a></td></tr>'; }, 800);</script>"""
    prof = profile(list={"table": {"css": "#t"}, "empty_text": "暂无订单"})

    async def test(page: Page) -> tuple[int, int]:
        orders = portal_page(page, prof, OrderListPage)
        before = await orders.order_link("1455953150").count()
        await orders.wait_ready("search")
        return before, await orders.order_link("1455953150").count()

    assert chromium.run(html, test) == (0, 1)

    async def never(page: Page) -> str:
        with pytest.raises(ProfileMismatch) as info:
            await portal_page(page, prof, OrderListPage).wait_ready("search")
        return str(info.value)

    # Neither rows nor the empty text: an error, never "not found".
    assert "neither order rows nor its empty text" in chromium.run(
        "<table id='t'><tbody></tbody></table>", never)


CONFIRM_PAGE = """<div class="mask"><div class="pop">
      <div>取消原因：<div id="box"><span class="text">请选择</span>
        <ul class="list" style="display:none"><li>缺货</li><li>价格设置错误</li></ul></div></div>
      <div>详细说明：<textarea></textarea></div>
      <a class="btn" href="javascript:;" id="go">提 交</a></div></div>
    <script>
      const box = document.getElementById('box'), list = box.querySelector('.list');
      box.querySelector('.text').onclick = () => list.style.display = 'block';
      list.onclick = e => { box.querySelector('.text').textContent = e.target.textContent;
                            list.style.display = 'none'; };
      document.getElementById('go').onclick = () => {
        window.answer = confirm('确定要取消吗？') ? 'yes' : 'no'; };
    </script>"""


def test_custom_dropdown_and_native_confirm(chromium: Chromium) -> None:
    html = CONFIRM_PAGE
    prof = profile(dialog={"container": {"css": ".mask .pop"},
                           "reason_label": {"css": "#box .text"},
                           "reason_options": {"css": "#box .list"},
                           "note_label": {"near": "详细说明："},
                           "confirm": {"native": True}})

    async def test(page: Page) -> tuple[str, str, str]:
        dialog = portal_page(page, prof, CancelDialog)
        await dialog.fill("价格设置错误", "价格填错了")
        native = await dialog.press_submit_only()
        message = native.message  # type: ignore[union-attr]
        await native.dismiss()  # type: ignore[union-attr]
        await dialog.settle()
        return (await page.locator("#box .text").inner_text(), message,
                await page.evaluate("window.answer"))

    chosen, message, answer = chromium.run(html, test)
    assert chosen == "价格设置错误"
    assert message == "确定要取消吗？"
    assert answer == "no"


def test_fields_inside_an_iframe(chromium: Chromium) -> None:
    html = """<iframe name="main" srcdoc='<ul id="info"><li>订单号：<span>1455953150</span></li>
    </ul><script>setTimeout(() => document.getElementById("info").insertAdjacentHTML(
    "beforeend", "<li>订单状态：<span>等待您发货</span></li>"), 500);</script>'></iframe>"""
    prof = profile(detail={"fields": {**MOCK["detail"]["fields"],
                                      "within": {"css": "#info", "frame": {"name": "main"}}}})

    async def test(page: Page) -> dict[str, str]:
        return await portal_page(page, prof).fields(wait_for="status")

    assert chromium.run(html, test) == {"order_no": "1455953150", "status": "等待您发货"}


def test_an_order_link_that_opens_a_new_tab_by_script(chromium: Chromium) -> None:
    html = """<table id="t"><tr><td><a href="javascript:;" id="o"
      onclick="window.open('about:blank#order-1455953150')">1455953150</a></td></tr></table>"""
    prof = profile(list={"table": {"css": "#t"}})

    async def test(page: Page) -> tuple[str, bool, int]:
        orders = portal_page(page, prof, OrderListPage)
        detail = await orders.open_order("1455953150")
        pages = len(page.context.pages)
        return detail.page.url, detail.page is page, pages

    url, same_tab, pages = chromium.run(html, test)
    assert url == "about:blank#order-1455953150"
    assert not same_tab and pages == 2


def test_nothing_is_sent_when_the_account_is_lost_right_before_the_click(
        chromium: Chromium) -> None:
    prof = profile(dialog={"container": {"css": ".mask .pop"},
                           "reason_label": {"css": "#box .text"},
                           "reason_options": {"css": "#box .list"},
                           "note_label": {"near": "详细说明："},
                           "confirm": {"native": True}})

    def taken_over() -> None:
        raise LockLost("account 'main': the lock expired or was taken over; not submitting")

    async def test(page: Page) -> str:
        dialog = portal_page(page, prof, CancelDialog)
        await dialog.fill("缺货", "仓库断货")
        with pytest.raises(LockLost):
            await dialog.submit_and_confirm(before_send=taken_over)
        return str(await page.evaluate("window.answer"))

    assert chromium.run(CONFIRM_PAGE, test) == "None"  # 提交 was never pressed


NATIVE_CONFIRM = {"container": {"css": ".mask .pop"}, "reason_label": {"css": "#box .text"},
                  "reason_options": {"css": "#box .list"}, "note_label": {"near": "详细说明："},
                  "confirm": {"native": True}}


def test_a_confirm_a_busy_page_opens_late_is_still_its_confirm(chromium: Chromium) -> None:
    """On a loaded machine the click on 提交 may be dispatched only after the element
    timeout; the confirm() it then opens is the portal's, not a changed page (it was
    reported as `dialog.submit_button opened no confirm()` and the order as needs_review)."""
    prof = profile(dialog=NATIVE_CONFIRM)

    async def test(page: Page) -> str:
        dialog = portal_page(page, prof, CancelDialog)  # element timeout 1.5 s
        await dialog.fill("缺货", "仓库断货")
        # The renderer is busy for 2.5 s once the mouse reaches 提交 (as under load): the
        # click's press and release wait for it.
        await page.evaluate("() => document.getElementById('go').addEventListener("
                            "'mouseover', () => { const end = Date.now() + 2500; "
                            "while (Date.now() < end) {} }, {once: true})")
        native = await dialog.press_submit_only()
        await native.accept()  # type: ignore[union-attr]
        await dialog.settle()
        return str(await page.evaluate("window.answer"))

    assert chromium.run(CONFIRM_PAGE, test) == "yes"


def test_a_submit_button_without_a_confirm_fails_naming_the_key(chromium: Chromium) -> None:
    prof = profile(dialog=NATIVE_CONFIRM)
    html = CONFIRM_PAGE.replace("window.answer = confirm('确定要取消吗？') ? 'yes' : 'no'",
                                "window.answer = 'sent'")

    async def test(page: Page) -> str:
        dialog = portal_page(page, prof, CancelDialog)
        await dialog.fill("缺货", "仓库断货")
        with pytest.raises(ProfileMismatch) as info:
            await dialog.press_submit_only()
        return str(info.value)

    assert "dialog.submit_button opened no confirm()" in chromium.run(html, test)



def test_tabs_pressing_submit_at_once_each_get_their_confirm() -> None:
    """Tabs of one context share a renderer; with the browser's confirm() dialog, three
    pressing 提交 within milliseconds lost a click in about one try of ten (no confirm(), the
    order needs_review; 24 tries here failed on that code). In a run the confirm() is
    answered in the page: no click is lost."""
    prof = profile(dialog=NATIVE_CONFIRM)
    html = CONFIRM_PAGE.replace("window.answer = confirm('确定要取消吗？') ? 'yes' : 'no'",
                                "window.answer = confirm('确定要取消吗？') ? 'yes' : 'no'; "
                                "location.hash = 'sent' + Date.now()")

    async def main() -> list[object]:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=find_chromium(),
                args=[*launch_args(), "--renderer-process-limit=1"])
            context = await browser.new_context()
            answers: list[object] = []
            for trial in range(10):
                dialogs = []
                pages = [await context.new_page() for _ in range(3)]  # as each order's
                for page in pages:
                    await page.set_content(html)
                    # Background tabs run animation frames about once a second: the
                    # dropdown's (unforced) click needs more than the other tests' 1.5 s.
                    dialog = CancelDialog(page, prof, BASE, element_timeout_ms=10_000)
                    await dialog.fill("缺货", "仓库断货")
                    dialogs.append(dialog)

                async def submit(dialog: CancelDialog, delay: float) -> None:
                    await asyncio.sleep(delay)
                    await dialog.submit_and_confirm()

                gap = (0.0, 0.001, 0.005)[trial % 3]
                await asyncio.gather(*(submit(d, i * gap) for i, d in enumerate(dialogs)))
                answers += [await page.evaluate("window.answer") for page in pages]
                for page in pages:
                    await page.close()
            await browser.close()
            return answers

    # A loop of its own in a thread of its own (other modules' sync fixtures keep one here).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, main()).result(timeout=300)
    assert answers == ["yes"] * 30, Counter(map(str, answers))


STATUS_LIST = """<table id="t"><thead><tr><th colspan="2">订单</th><th>买家</th>
      <th class="st">订单状态</th></tr></thead><tbody></tbody></table>
    <script>window.drawLater = (status) => setTimeout(() => {
        document.querySelector('#t tbody').innerHTML =
          '<tr><td><a href="/d/1">1455953150</a></td><td>06-01</td><td>Tom</td>' +
          '<td class="s"></td></tr>' +
          '<tr><td><a href="/d/2">1455953151</a></td><td>06-02</td><td>Ann</td>' +
          '<td class="s">已发货</td></tr>';
        if (status) setTimeout(() => {
          document.querySelector('#t tbody td.s').textContent = status; }, 500);
    }, 500);</script>"""


def test_the_row_status_is_read_under_its_header_once_drawn(chromium: Chromium) -> None:
    by_text = profile(list={"table": {"css": "#t"}, "status_column": "订单 状态"})
    by_css = profile(list={"table": {"css": "#t"}, "status_column": {"css": "th.st"}})

    async def test(page: Page) -> tuple[str | None, str | None, str | None]:
        # Rows, then the first row's status, are drawn after the read is asked for.
        await page.evaluate("window.drawLater('等待您发货')")
        first = await portal_page(page, by_text, OrderListPage).row_status("1455953150")
        second = await portal_page(page, by_css, OrderListPage).row_status("1455953151")
        unset = profile(list={"table": {"css": "#t"}, "status_column": None})
        without = await portal_page(page, unset, OrderListPage).row_status("1455953150")
        return first, second, without

    # The header's colspan is counted: 订单状态 is the fourth cell of each row.
    assert chromium.run(STATUS_LIST, test) == ("等待您发货", "已发货", None)


def test_a_row_that_never_shows_its_status_fails_naming_the_key(chromium: Chromium) -> None:
    prof = profile(list={"table": {"css": "#t"}, "status_column": "订单状态"})

    async def never(page: Page) -> str:
        await page.evaluate("window.drawLater(null)")
        with pytest.raises(ProfileMismatch) as info:
            await portal_page(page, prof, OrderListPage).row_status("1455953150")
        return str(info.value)

    # No answer (the detail page is never skipped on an empty cell), and the key is named.
    assert "order 1455953150 shows no status under the list.status_column header" in \
        chromium.run(STATUS_LIST, never)
