"""The signed-in start page (我的敦煌 / 我的摘要) and the way from it to the order list."""

from __future__ import annotations

from flows.base_page import PortalPage
from flows.order_list_page import OrderListPage

# Is a click on this element a page load (a link to another address) or an in-page action
# (a menu opening, a javascript: link)?
_LOADS_PAGE = """el => {
    const a = el.closest('a[href]');
    if (!a) return false;
    const href = a.getAttribute('href').trim();
    return !(href === '' || href.startsWith('#') || href.toLowerCase().startsWith('javascript:'));
}"""


class HomePage(PortalPage):
    """The personal centre with its menus; the way into the order list."""

    page_name = "home"

    async def open_order_list(self) -> OrderListPage:
        """Follow the profile's navigation steps (click or hover) to the order list."""
        for index in range(len(self.profile.nav.to_orders)):
            await self.take_step(index)
        orders: OrderListPage = self._sibling(OrderListPage)
        orders.list_url = self.page.url
        orders.ready = True
        return orders

    async def take_step(self, index: int) -> None:
        """One navigation step: hover, an in-page click (a menu opening), or a page load."""
        step = self.profile.nav.to_orders[index]
        name = f"{step.action} {step.target.describe()}"
        element = await self.require(f"nav.to_orders.{index}", name)
        if step.action == "hover":
            await element.hover()
        elif await element.evaluate(_LOADS_PAGE):
            await self._navigate(name, self.press(element))
        else:
            await self.press(element)()
