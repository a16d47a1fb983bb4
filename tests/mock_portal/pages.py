"""Reading the mock portal's HTML in HTTP-level tests, and a cookie-keeping client."""

from __future__ import annotations

import html
import json
import re
from types import TracebackType
from typing import Any

import httpx

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
TAG_RE = re.compile(r"<[^>]+>")


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(TAG_RE.sub(" ", fragment)).split())


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on the page."""
    match = CSRF_RE.search(page)
    assert match, "page has no CSRF token"
    return match.group(1)


def by_role(page: str, role: str) -> list[str]:
    """Texts of the elements with ``role=...`` (status notices, alerts)."""
    return [
        text_of(m.group(1))
        for m in re.finditer(rf'<div role="{role}"[^>]*>(.*?)</div>', page, re.S)
    ]


def fields(page: str) -> dict[str, str]:
    """The detail page's <dt>label</dt><dd>value</dd> pairs."""
    return {
        text_of(dt): text_of(dd)
        for dt, dd in re.findall(r"<dt>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", page, re.S)
    }


def h1(page: str) -> str:
    """The page heading."""
    match = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert match, "page has no h1"
    return text_of(match.group(1))


def links(page: str) -> dict[str, str]:
    """Link text -> href (the last one wins when two share a text)."""
    return {
        text_of(body): html.unescape(href)
        for href, body in re.findall(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>', page, re.S)
    }


def buttons(page: str) -> list[str]:
    """Texts of every <button>."""
    return [text_of(b) for b in re.findall(r"<button[^>]*>(.*?)</button>", page, re.S)]


def order_rows(page: str) -> list[str]:
    """Order numbers in the order list table, top to bottom."""
    table = re.search(r'<table class="order-list">(.*?)</table>', page, re.S)
    if not table:
        return []
    return re.findall(r'<a href="/orders/detail/[0-9a-f]{32}">(\d{10})</a>', table.group(1))


class SellerClient:
    """An httpx client that keeps cookies, follows no redirects and knows the login form."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)

    def __enter__(self) -> SellerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        """GET without following redirects."""
        return self.http.get(path, **kwargs)  # type: ignore[arg-type]

    def post_form(
        self, path: str, data: dict[str, str], *, page: str | None = None
    ) -> httpx.Response:
        """POST a form with the CSRF token of ``page`` (or of a fresh GET of ``path``)."""
        if page is None:
            page = self.get(path.removesuffix("/cancel")).text
        # A page without a form (a shipped order's detail) still set the double-submit cookie.
        token = csrf_token(page) if CSRF_RE.search(page) else self.http.cookies["dh_csrf"]
        return self.http.post(path, data={"csrf_token": token, **data})

    def login(
        self, username: str, password: str, *, next_path: str = "", captcha: str = ""
    ) -> httpx.Response:
        """Submit the login form; returns the answer (303 on success)."""
        page = self.get("/login").text
        data = {"username": username, "password": password, "next": next_path}
        if captcha:
            data["captcha_token"] = captcha
        return self.http.post("/login", data={"csrf_token": csrf_token(page), **data})

    def page(self, path: str) -> str:
        """GET a page that must answer 200; its HTML."""
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response.text


# -- the legacy layout: no roles, no labels; text and value share one element ----------------

ORDER_DATA_RE = re.compile(r"<script[^>]*>\s*var ORDER_DATA = (.*?);\s*</script>", re.S)


def tips(page: str, kind: str) -> list[str]:
    """Texts of the legacy notices ``<div class="tip tip-{kind}">`` (success, error)."""
    return [
        text_of(m.group(1))
        for m in re.finditer(rf'<div class="tip tip-{kind}">(.*?)</div>', page, re.S)
    ]


def info(page: str) -> dict[str, str]:
    """The legacy detail page's ``<li>label：<span>value</span></li>`` pairs."""
    return {
        text_of(label): text_of(value)
        for label, value in re.findall(r"<li>([^<>]*：)<span[^>]*>(.*?)</span></li>", page, re.S)
    }


def order_data(page: str) -> dict[str, Any]:
    """The legacy order list's inline ``var ORDER_DATA = {...};``."""
    match = ORDER_DATA_RE.search(page)
    assert match, "page has no ORDER_DATA"
    data: dict[str, Any] = json.loads(match.group(1))
    return data
