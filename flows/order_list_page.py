"""订单管理: the order list with its search form and paging."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from playwright.async_api import Page

from bot.errors import ProfileMismatch
from flows.base_page import PortalPage
from flows.order_detail_page import OrderDetailPage


class OrderListPage(PortalPage):
    """Find an order by 订单号 and open it."""

    page_name = "order list"
    list_url: str = ""
    # True while the tab shows a good order list (with its search form) from our last load.
    ready: bool = False

    async def back_to_list(self) -> None:
        """Return to the order list this tab reached through 我的敦煌 → 订单管理.

        After a search the tab already shows a list with the search form: stay there.
        """
        if not self.ready or urlsplit(self.page.url).path != urlsplit(self.list_url).path:
            self.ready = False
            await self.goto("back to 订单管理", self.list_url)
            self.ready = True

    async def search(self, order_no: str) -> None:
        """Type the order number into 订单号 and press 搜索."""
        labels = self.profile.list
        box = await self.require(self.labelled(labels.search_label), "list.search_label",
                                 labels.search_label, "search")
        await box.fill(order_no)
        button = await self.require(self.button(labels.search_button), "list.search_button",
                                    labels.search_button, "search")
        self.ready = False
        await self._navigate("search", self.press(button))
        self.ready = True

    async def find(self, order_no: str, max_pages: int = 50) -> bool:
        """Search for the order and walk the result pages; True when its link is shown."""
        labels = self.profile.list
        await self.back_to_list()
        await self.search(order_no)
        for _ in range(max_pages):
            table = self.page.locator(labels.table_css)
            if await table.get_by_role("link", name=order_no, exact=True).count() > 0:
                return True
            if await self.text_visible(labels.empty_text):
                return False
            if await table.count() == 0:
                await self.require(table, "list.table_css", labels.table_css, "search")
            next_link = self.link(labels.next_page)
            if await next_link.count() == 0:
                return False
            self.ready = False
            await self._navigate("next page", self.press(next_link.first))
            self.ready = True
        return False

    async def open_order(self, order_no: str, into: Page | None = None) -> OrderDetailPage:
        """Open the order number's link and land on its detail page.

        With `into`, the order opens in that second tab (as a ctrl-click would) and this
        tab stays on the list, ready for the next search.
        """
        table = self.page.locator(self.profile.list.table_css)
        link = table.get_by_role("link", name=order_no, exact=True).first
        if into is None:
            self.ready = False
            await self._navigate("open order", self.press(link))
            detail: OrderDetailPage = self._sibling(OrderDetailPage)
            return detail
        href = await link.get_attribute("href")
        if not href:
            raise ProfileMismatch(f"the link of order {order_no} has no address",
                                  step="open order", page=self.page_name,
                                  key="list.table_css", looked_for=f"a[href] {order_no}")
        opened = OrderDetailPage(into, self.profile, self.base_url, self.pacer,
                                 self.element_timeout_ms, self.retry)
        await opened.goto("open order", urljoin(self.page.url, href))
        return opened
