"""The order list (订单管理 / 我的订单) with its search form and paging."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import ProfileMismatch
from flows.base_page import PortalPage
from flows.locators import Target, describe, text_pattern
from flows.order_detail_page import OrderDetailPage

# A javascript: or empty link opens its page by script: it must be clicked, not followed.
_SCRIPTED = re.compile(r"^\s*(javascript:|#|$)", re.IGNORECASE)


class OrderListPage(PortalPage):
    """Find an order by its number and open it."""

    page_name = "order list"
    list_url: str = ""
    # True while the tab shows a good order list (with its search form) from our last load.
    ready: bool = False

    async def back_to_list(self) -> None:
        """Return to the order list this tab reached through the navigation steps.

        After a search the tab already shows a list with the search form: stay there.
        """
        if not self.ready or urlsplit(self.page.url).path != urlsplit(self.list_url).path:
            self.ready = False
            await self.goto("back to the order list", self.list_url)
            self.ready = True

    async def search(self, order_no: str) -> None:
        """Type the order number into the search field and press the search button."""
        box = await self.require("list.search_label", "search")
        await box.fill(order_no)
        self.ready = False
        if self.profile.list.search_button is None:
            await self._navigate("search", lambda: box.press("Enter"))
        else:
            button = await self.require("list.search_button", "search")
            await self._navigate("search", self.press(button))
        self.ready = True

    def table(self) -> Target:
        """The container of the order rows."""
        table = self.target("list.table")
        assert table is not None  # required by the profile schema
        return table

    def order_link(self, order_no: str) -> Locator:
        """The link of an order number in the list."""
        return self.table().anything.get_by_role("link", name=text_pattern(order_no))

    def ready_marker(self) -> Locator:
        """Shown once the list has drawn its rows or its empty text."""
        custom = self.target("list.ready")
        if custom is not None:
            return custom.shown
        empty = self.target("list.empty_text")
        assert empty is not None
        rows = self.table().anything.get_by_role(
            "link", name=re.compile(self.profile.order_no_pattern))
        return rows.filter(visible=True).or_(empty.shown)

    async def wait_ready(self, step: str) -> None:
        """Wait until the list shows rows or its empty text; never read a list before that.

        A list that never gets there fails the order (no answer is better than a wrong
        `not_found`).
        """
        try:
            await self.ready_marker().first.wait_for(state="visible",
                                                     timeout=self.element_timeout_ms)
        except PlaywrightTimeoutError as exc:
            key = "list.ready" if self.profile.list.ready is not None else "list.table"
            raise ProfileMismatch(
                "the order list showed neither order rows nor its empty text "
                f"({self.profile.list.empty_text}) in time", step=step, page=self.page_name,
                key=key, looked_for="rows or list.empty_text") from exc

    async def find(self, order_no: str, max_pages: int = 50) -> bool:
        """Search for the order and walk the result pages; True when its link is shown.

        False only with proof: the empty text was shown, or every result page was read
        after it had drawn its rows.
        """
        await self.back_to_list()
        await self.search(order_no)
        for _ in range(max_pages):
            await self.wait_ready("search")
            if await self.order_link(order_no).filter(visible=True).count() > 0:
                return True
            if await self.shown("list.empty_text"):
                return False
            if not await self.shown("list.next_page"):
                return False
            next_link = await self.require("list.next_page", "next page")
            self.ready = False
            await self._navigate("next page", self.press(next_link))
            self.ready = True
        raise ProfileMismatch(f"order {order_no} not seen in {max_pages} result pages",
                              step="search", page=self.page_name, key="list.next_page",
                              looked_for="a last page")

    async def row_status(self, order_no: str) -> str | None:
        """The status the order's row shows under the `list.status_column` header; None when
        the profile names no such column (the detail page tells the status).

        Read only from a ready list that shows the order (after `find` returned True); a
        row that shows no status in time fails naming the key, it is never an answer.
        """
        if self.profile.list.status_column is None:
            return None
        await self.wait_ready("read status")
        header = await self.require("list.status_column", "read status",
                                    root=self.table().shown.first)
        link = self.order_link(order_no).filter(visible=True).first
        try:
            head = await header.element_handle(timeout=self.element_timeout_ms)
            anchor = await link.element_handle(timeout=self.element_timeout_ms)
            frame = await anchor.owner_frame() or self.page.main_frame
            found = await frame.wait_for_function(_ROW_CELL, arg=[head, anchor], polling=100,
                                                  timeout=self.element_timeout_ms)
        except PlaywrightTimeoutError as exc:
            looked_for = describe(self.profile.list.status_column)
            raise ProfileMismatch(
                f"the row of order {order_no} shows no status under the list.status_column "
                f"header ({looked_for})", step="read status", page=self.page_name,
                key="list.status_column", looked_for=looked_for) from exc
        status: str = await found.json_value()
        return status

    async def open_order(self, order_no: str, into: Page | None = None) -> OrderDetailPage:
        """Open the order number's link and land on its detail page.

        With `into`, the order opens in that second tab (as a ctrl-click would) and this
        tab stays on the list, ready for the next search. A link that opens its page by
        script is clicked; a new tab it opens becomes the detail page.
        """
        link = self.order_link(order_no).filter(visible=True).first
        href = await link.get_attribute("href") or ""
        if into is not None and not _SCRIPTED.match(href):
            opened = OrderDetailPage(into, self.profile, self.base_url, self.pacer,
                                     self.element_timeout_ms, self.retry)
            await opened.goto("open order", urljoin(self.page.url, href))
            return opened
        target = (await link.get_attribute("target") or "").lower()
        if (target and target != "_self") or _SCRIPTED.match(href):
            return await self._open_in_new_tab(link, order_no, into)
        self.ready = False
        await self._navigate("open order", self.press(link))
        detail: OrderDetailPage = self._sibling(OrderDetailPage)
        return detail

    async def _open_in_new_tab(self, link: Locator, order_no: str,
                               into: Page | None) -> OrderDetailPage:
        """Click a link that opens the detail page by script in a new tab.

        With `into`, the page is loaded there instead, so the runner's tabs stay its own.
        """
        try:
            async with self.page.context.expect_page(timeout=self.element_timeout_ms) as info:
                await self.press(link)()
            popup = await info.value
            await popup.wait_for_load_state("domcontentloaded")
        except PlaywrightTimeoutError as exc:
            raise ProfileMismatch(f"the link of order {order_no} opened no page",
                                  step="open order", page=self.page_name, key="list.table",
                                  looked_for=f"a link {order_no}") from exc
        if into is not None:
            url = popup.url
            await popup.close()
            opened = OrderDetailPage(into, self.profile, self.base_url, self.pacer,
                                     self.element_timeout_ms, self.retry)
            await opened.goto("open order", url)
            return opened
        detail = OrderDetailPage(popup, self.profile, self.base_url, self.pacer,
                                 self.element_timeout_ms, self.retry)
        await detail.check_loaded("open order")
        return detail


# The text of the order's row cell under the header cell (<th>订单状态</th>): the cell at the
# header's column in the link's <tr>, counting colspan. Falsy until that cell shows a text,
# so a row still being drawn is waited for, never read.
_ROW_CELL = r"""([header, link]) => {
    const head = header.closest('th, td');
    const row = link.closest('tr');
    if (!head || !row || !head.parentElement) return null;
    const cells = tr => Array.from(tr.cells || tr.children);
    let column = 0;
    for (const cell of cells(head.parentElement)) {
        if (cell === head) break;
        column += cell.colSpan || 1;
    }
    let at = 0;
    for (const cell of cells(row)) {
        const span = cell.colSpan || 1;
        if (column < at + span) return cell.innerText.trim() || null;
        at += span;
    }
    return null;
}"""
