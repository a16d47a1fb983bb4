"""The portal's login page (登录)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.errors import FlowError
from flows.base_page import PortalPage


class LoginAnswer(StrEnum):
    """What the portal did with a sign-in: a fact; the engine decides what it means."""

    SIGNED_IN = "signed in"
    CAPTCHA = "captcha"  # a person must sign in (slider, SMS, …)
    REFUSED = "refused"  # the portal said the user name or password is wrong


@dataclass(frozen=True)
class LoginResult:
    answer: LoginAnswer
    said: str | None = None  # the portal's words, when it refused


class LoginPage(PortalPage):
    """Sign in with user name and password; never touches a captcha."""

    page_name = "login"

    async def open(self) -> bool:
        """Open the portal's entry page; go to the login form when signed out.

        Returns True when the saved session is still signed in (no login needed).
        """
        await self.goto("open portal", self.url_for(self.profile.paths.entry))
        if self.on_login_page():
            return False
        if await self.shown("login.signed_in_marker"):
            return True
        if self.profile.login.open_link is None:
            await self.goto("open login", self.url_for(self.profile.paths.login))
            return False
        open_link = await self.require("login.open_link", "open login")
        await self._navigate("open login", self.press(open_link))
        return False

    async def captcha_shown(self) -> bool:
        """True when the page asks for a captcha (请拖动滑块完成拼图)."""
        return await self.shown("login.captcha_text")

    async def login(self, username: str, password: str) -> LoginResult:
        """Fill user name and password, press 登录, and say what the portal did."""
        if await self.captcha_shown():
            return LoginResult(LoginAnswer.CAPTCHA)
        user = await self.require("login.username_label", "login")
        await user.fill(username)
        pw = await self.require("login.password_label", "login")
        await pw.fill(password)
        submit = await self.require("login.submit_button", "login")
        await self._navigate("login", self.press(submit))
        if self.on_login_page():
            if await self.captcha_shown():
                return LoginResult(LoginAnswer.CAPTCHA)
            if await self.shown("login.error_text"):
                return LoginResult(LoginAnswer.REFUSED, await self.texts_of("login.error_text"))
            raise FlowError("still on the login page after signing in", step="login",
                            page=self.page_name)
        return LoginResult(LoginAnswer.SIGNED_IN)
