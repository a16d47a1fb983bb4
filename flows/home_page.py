"""我的敦煌: the seller's personal centre."""

from __future__ import annotations

from flows.base_page import PortalPage
from flows.order_list_page import OrderListPage


class HomePage(PortalPage):
    """The personal centre with its menu; the way into 订单管理."""

    page_name = "home"

    async def open(self) -> HomePage:
        """Click 我的敦煌 in the top navigation."""
        nav = self.profile.nav
        link = await self.require(self.link(nav.my_dhgate), "nav.my_dhgate", nav.my_dhgate,
                                  "open 我的敦煌")
        await self._navigate("open 我的敦煌", self.press(link))
        return self

    async def open_order_management(self) -> OrderListPage:
        """Click 订单管理 in the personal-centre menu."""
        nav = self.profile.nav
        link = await self.require(self.link(nav.order_management).first,
                                  "nav.order_management", nav.order_management,
                                  "open 订单管理")
        await self._navigate("open 订单管理", self.press(link))
        orders: OrderListPage = self._sibling(OrderListPage)
        orders.list_url = self.page.url
        orders.ready = True
        return orders
