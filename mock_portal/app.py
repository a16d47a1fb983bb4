"""HTTP routes of the mock portal: server-rendered seller pages and the JSON admin API."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mock_portal.data import (
    AWAITING_SHIPMENT,
    CANCELLABLE,
    CANCELLED,
    NOTE_MAX_LENGTH,
    NOTE_REQUIRED_FOR,
    REASONS,
    REVIEW_REJECTED,
    STATUSES,
    UNDER_REVIEW,
    UNPAID,
    CancelRequest,
    Event,
    Order,
    apply_cancellation,
    cancellation_fine,
    format_usd,
)
from mock_portal.faults import FaultError
from mock_portal.layout import LAYOUTS, LEGACY, LEGACY_TABS, shown_status, status_matches
from mock_portal.state import CancelLogEntry, MessageEntry, PortalState, Session, now

SESSION_COOKIE = "DHSESSID"
ADMIN_TOKEN_HEADER = "X-Admin-Token"
CSRF_COOKIE = "dh_csrf"
CSRF_FIELD = "csrf_token"
PAGE_SIZE = 20
PACKAGE_DIR = Path(__file__).parent
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

NOTICE_CANCELLED = "订单已取消"
NOTICE_SUBMITTED = "取消申请已提交，等待平台审核"
ALERT_DUPLICATE = "该订单已提交取消申请，请勿重复提交"
ALERT_NOT_ALLOWED = "当前订单状态不允许取消"
ALERT_NO_REASON = "请选择取消原因"
ALERT_NOTE_REQUIRED = "请填写详细说明"
ALERT_NOTE_TOO_LONG = f"详细说明不能超过{NOTE_MAX_LENGTH}个字"
ALERT_LOGIN_FAILED = "用户名或密码错误"
ALERT_CAPTCHA = "请完成滑块验证"
NOTICE_MESSAGE_SENT = "发送成功"
ALERT_NO_FUNDS = "资金账户余额不足，无法支付违约金，取消失败"
# The legacy layout's words (DHgate's own): no review step, the fine is taken at once.
NOTICE_LEGACY_CLOSED = "交易已关闭"
NOTICE_LEGACY_CANCELLED = "订单已取消，已扣除违约金{fine}"
ALERT_LEGACY_NOT_ALLOWED = "该订单当前状态不可取消"
CONFIRM_LEGACY_PAID = "取消订单将扣除实付金额10%的违约金（最低US $5，最高US $20），确定要取消吗？"
CONFIRM_LEGACY_UNPAID = "该订单买家尚未付款，取消不扣除违约金，确定要取消吗？"
ALERT_MESSAGE_EMPTY = "请输入站内信内容"
ALERT_MESSAGE_RATE = "您发送站内信太频繁啦，请稍后发送！"

Handler = Callable[[Request, Session | None], Awaitable[Response]]


class DroppedResponse(Response):
    """Hangs up mid-answer: both browsers and HTTP clients see a network error, not a page."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send a head no browser accepts, promise a body, and return without it.

        ASGI has no "abort" message, so the failure is built from two halves:
        - Two different Content-Disposition headers make Chromium fail the request with
          ERR_RESPONSE_HEADERS_MULTIPLE_CONTENT_DISPOSITION before it commits a page.
          (A plain truncated body would not do: Chromium commits a blank page; and closing
          without any byte makes it silently resend the POST on a fresh connection.)
        - A Content-Length the body never reaches: uvicorn closes the connection when the app
          returns, so httpx and friends raise RemoteProtocolError.
        """
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", b"4096"),
                    (b"content-disposition", b'inline; filename="a.html"'),
                    (b"content-disposition", b'inline; filename="b.html"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": True})


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a local path (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def redirect(url: str) -> RedirectResponse:
    """A 303 See Other, the answer to every successful form and every bounce."""
    return RedirectResponse(url, status_code=303)


def format_time(value: Any) -> str:
    """Jinja filter: a datetime as the portal prints it, or — when missing."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def script_json(value: Any) -> Markup:
    """``value`` as JSON that is safe inside an inline <script> (no tag can end it early)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return Markup(text)


class Portal:
    """The web app: one instance per process, around one PortalState."""

    def __init__(self, state: PortalState, admin_token: str | None = None) -> None:
        self.state = state
        self.admin_token = admin_token
        self.env = Environment(
            loader=FileSystemLoader(PACKAGE_DIR / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["usd"] = format_usd
        self.env.filters["when"] = format_time
        self.static = {
            path.name: path.read_bytes()
            for path in (PACKAGE_DIR / "static").iterdir()
            if path.suffix in STATIC_TYPES
        }

    def build(self) -> Starlette:
        """The Starlette application with every route."""
        page = self._page
        routes = [
            Route("/", page("landing", self.landing)),
            Route("/login", page("login", self.login_form), methods=["GET"]),
            Route("/login", page("login_submit", self.login_submit), methods=["POST"]),
            Route("/logout", page("logout", self.logout)),
            Route("/mydh", page("home", self.home, auth=True)),
            Route("/orders", page("orders", self.order_list, auth=True)),
            Route("/orders/detail/{internal_id}", page("detail", self.detail, auth=True)),
            Route(
                "/orders/detail/{internal_id}/cancel",
                page("cancel", self.cancel, auth=True),
                methods=["POST"],
            ),
            Route(
                "/orders/detail/{internal_id}/message",
                page("message", self.message_form, auth=True),
                methods=["GET"],
            ),
            Route(
                "/orders/detail/{internal_id}/message",
                page("message_submit", self.message_submit, auth=True),
                methods=["POST"],
            ),
            Route("/static/{name}", page("static", self.static_file)),
            Route("/__admin/health", self._admin(self.admin_health)),
            Route("/__admin/reset", self._admin(self.admin_reset), methods=["POST"]),
            Route("/__admin/orders", self._admin(self.admin_orders)),
            Route("/__admin/cancel-requests", self._admin(self.admin_cancel_requests)),
            Route("/__admin/reviews/{order_no}", self._admin(self.admin_review),
                  methods=["POST"]),
            Route("/__admin/messages", self._admin(self.admin_messages)),
            Route("/__admin/faults", self._admin(self.admin_faults), methods=["GET", "PUT"]),
            Route("/__admin/stats", self._admin(self.admin_stats)),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={HTTPException: self.http_error, Exception: self.crash},
        )

    # -- the request pipeline ----------------------------------------------------------------

    def _admin(self, handler: Callable[[Request], Awaitable[Response]]) -> Any:
        """The admin API's gate: the token when one is set (header X-Admin-Token), and JSON
        bodies only, so that no web page can drive it with a plain form post."""

        async def endpoint(request: Request) -> Response:
            token = self.admin_token
            if token is not None:
                sent = request.headers.get(ADMIN_TOKEN_HEADER, "")
                if not secrets.compare_digest(sent.encode(), token.encode()):
                    return JSONResponse({"error": f"{ADMIN_TOKEN_HEADER} missing or wrong"},
                                        status_code=401)
            if request.method in ("POST", "PUT"):
                kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind != "application/json":
                    return JSONResponse({"error": "send the body as application/json"},
                                        status_code=415)
            return await handler(request)

        return endpoint

    def _page(self, route: str, handler: Handler, *, auth: bool = False) -> Any:
        async def endpoint(request: Request) -> Response:
            return await self._serve(route, handler, request, auth)

        return endpoint

    async def _serve(self, route: str, handler: Handler, request: Request, auth: bool) -> Response:
        """Count, delay, inject faults, check session and CSRF, then run ``handler``."""
        state = self.state
        state.stats.requests += 1
        state.stats.by_route[route] += 1
        csrf_cookie = request.cookies.get(CSRF_COOKIE)
        request.state.csrf = csrf_cookie or secrets.token_urlsafe(18)
        session = state.session_for(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            session.pages += 1
            state.stats.enter(session.account, session.token)
        try:
            response = await self._guarded(route, handler, request, session, auth, csrf_cookie)
        finally:
            if session is not None:
                state.stats.leave(session.account, session.token)
        if isinstance(response, DroppedResponse):
            return response
        state.stats.status_codes[str(response.status_code)] += 1
        if csrf_cookie is None and route != "static":
            response.set_cookie(CSRF_COOKIE, request.state.csrf, path="/", samesite="lax")
        return response

    async def _guarded(
        self,
        route: str,
        handler: Handler,
        request: Request,
        session: Session | None,
        auth: bool,
        csrf_cookie: str | None,
    ) -> Response:
        state = self.state
        delay = state.faults.delay_s(state.rng)
        if delay:
            await asyncio.sleep(delay)
        if state.roll(state.faults.error_rate(route)):
            return self.server_error(request, session)
        if auth and session is None:
            return self._to_login(request)
        if (
            session is not None
            and route != "static"
            and not state.allow_page_request(session.account)
        ):
            return self.error_page(request, session, 429, "操作太频繁", "请稍后再试。")
        if request.method == "POST":
            sent = (await request.form()).get(CSRF_FIELD)
            if not (
                csrf_cookie
                and isinstance(sent, str)
                and secrets.compare_digest(sent.encode(), csrf_cookie.encode())
            ):
                return self.error_page(
                    request, session, 403, "请求已失效", "请求已失效，请刷新页面后重试"
                )
        return await handler(request, session)

    def _to_login(self, request: Request) -> Response:
        target = request.url.path
        if request.method == "POST":
            # After signing in, come back to the page the form was on.
            target = target.removesuffix("/cancel")
        elif request.url.query:
            target += "?" + request.url.query
        return redirect("/login?next=" + quote(target, safe=""))

    # -- rendering ---------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        session: Session | None,
        template: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """Render a page with the header, layout labels, CSRF token and any pending notice."""
        flash = session.flashes.pop(request.url.path, None) if session else None
        layout = self.state.faults.layout
        if layout == LEGACY:
            template = f"legacy/{template}"
        html = self.env.get_template(template).render(
            user=session.account if session else None,
            labels=LAYOUTS[layout],
            csrf=getattr(request.state, "csrf", ""),
            csrf_field=CSRF_FIELD,
            flash=flash,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def error_page(
        self, request: Request, session: Session | None, status: int, heading: str, text: str
    ) -> HTMLResponse:
        """A plain error page: heading and one sentence."""
        return self.render(
            request, session, "error.html", status=status, heading=heading, text=text
        )

    def server_error(self, request: Request, session: Session | None) -> HTMLResponse:
        """The 500 page the real backend shows when it is overloaded."""
        return self.error_page(request, session, 500, "系统繁忙", "服务器内部错误，请稍后再试。")

    def not_found(self, request: Request, session: Session | None) -> HTMLResponse:
        """The 404 page."""
        return self.error_page(
            request, session, 404, "页面不存在", "页面不存在，请检查网址或返回我的敦煌。"
        )

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and wrong methods, rendered as portal pages."""
        session = self.state.session_for(request.cookies.get(SESSION_COOKIE))
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 404:
            return self.not_found(request, session)
        return self.error_page(request, session, code, "请求错误", "请求错误，请返回重试。")

    async def crash(self, request: Request, exc: Exception) -> Response:
        """Any bug in a handler still answers with the portal's 500 page."""
        return self.server_error(request, None)

    # -- public pages ------------------------------------------------------------------------

    async def landing(self, request: Request, session: Session | None) -> Response:
        """Welcome page; signed-in sellers go straight to 我的敦煌."""
        if session is not None:
            return redirect("/mydh")
        return self.render(request, session, "landing.html")

    async def static_file(self, request: Request, session: Session | None) -> Response:
        """portal.css and portal.js."""
        name = request.path_params["name"]
        body = self.static.get(name)
        if body is None:
            return self.not_found(request, session)
        return Response(
            body,
            media_type=STATIC_TYPES[Path(name).suffix],
            headers={"cache-control": "public, max-age=600"},
        )

    async def login_form(self, request: Request, session: Session | None) -> Response:
        """The sign-in form (with the slider captcha when the fault is on)."""
        next_path = safe_next(request.query_params.get("next"))
        if session is not None:
            return redirect(next_path or "/mydh")
        return self._login_page(request, "", next_path or "", alert=None)

    def _login_page(
        self, request: Request, username: str, next_path: str, alert: str | None
    ) -> Response:
        captcha = self.state.issue_captcha() if self.state.needs_captcha(username) else None
        return self.render(
            request,
            None,
            "login.html",
            username=username,
            next_path=next_path,
            captcha_token=captcha,
            alert=alert,
        )

    async def login_submit(self, request: Request, session: Session | None) -> Response:
        """Check captcha and password; on success open a session and go to ``next``."""
        form = await request.form()
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", ""))) or ""
        state = self.state
        if state.needs_captcha(username) and not state.redeem_captcha(
            str(form.get("captcha_token", ""))
        ):
            return self._login_page(request, username, next_path, alert=ALERT_CAPTCHA)
        if not state.check_password(username, password):
            state.login_failures[username] += 1
            return self._login_page(request, username, next_path, alert=ALERT_LOGIN_FAILED)
        new = state.login(username)
        response = redirect(next_path or "/mydh")
        response.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="lax", path="/")
        return response

    async def logout(self, request: Request, session: Session | None) -> Response:
        """Sign out and go back to the landing page."""
        self.state.logout(request.cookies.get(SESSION_COOKIE))
        response = redirect("/")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- seller pages ------------------------------------------------------------------------

    def _counts(self, account: str) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for order in self.state.by_account.get(account, []):
            counts[order.status] += 1
        return counts

    async def home(self, request: Request, session: Session | None) -> Response:
        """我的敦煌: order counters and the personal-centre menu."""
        assert session is not None
        counts = self._counts(session.account)
        return self.render(request, session, "home.html", counts=counts, tabs=LEGACY_TABS)

    async def order_list(self, request: Request, session: Session | None) -> Response:
        """订单管理: status tabs, search by 订单号, 20 rows a page, newest first."""
        assert session is not None
        if self.state.faults.layout == LEGACY:
            return await self.legacy_order_list(request, session)
        params = request.query_params
        status = params.get("status", "")
        if status not in STATUSES:
            status = ""
        order_no = params.get("order_no", "").strip()
        try:
            page_no = max(1, int(params.get("page", "1")))
        except ValueError:
            page_no = 1
        mine = self.state.by_account.get(session.account, [])
        counts = self._counts(session.account)
        matches = [
            o
            for o in mine
            if (not status or o.status == status) and (not order_no or order_no in o.order_no)
        ]
        pages = max(1, math.ceil(len(matches) / PAGE_SIZE))
        page_no = min(page_no, pages)
        rows = matches[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]

        def page_url(number: int) -> str:
            query = {"status": status, "order_no": order_no, "page": str(number)}
            return "/orders?" + urlencode({k: v for k, v in query.items() if v})

        window = range(max(1, page_no - 4), min(pages, page_no + 4) + 1)
        return self.render(
            request,
            session,
            "orders.html",
            current_status=status,
            order_no=order_no,
            counts=counts,
            total=len(mine),
            rows=rows,
            page_no=page_no,
            pages=pages,
            window=window,
            page_url=page_url,
            statuses=STATUSES,
        )

    async def legacy_order_list(self, request: Request, session: Session) -> Response:
        """我的订单 in the legacy layout: the rows travel as inline JSON that a script draws.

        Tabs filter by a code (``status=shipped``; an internal status name works too), the
        search form by 订单号 and 买家名称, and a hidden form carries the filters to other pages.
        """
        params = request.query_params
        code = params.get("status", "")
        tab = next((t for t in LEGACY_TABS if code and code in (t.code, t.status)), None)
        code = tab.code if tab is not None else ""
        order_no = params.get("order_no", "").strip()
        buyer_name = params.get("buyer_name", "").strip()
        try:
            page_no = max(1, int(params.get("page", "1")))
        except ValueError:
            page_no = 1
        matches = [
            o
            for o in self.state.by_account.get(session.account, [])
            if (tab is None or tab.status is None or o.status == tab.status)
            and (not order_no or order_no in o.order_no)
            and (not buyer_name or buyer_name.casefold() in o.buyer_name.casefold())
        ]
        pages = max(1, math.ceil(len(matches) / PAGE_SIZE))
        page_no = min(page_no, pages)
        rows = matches[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]
        data = {
            "rows": [
                {
                    "id": o.internal_id,
                    "order_no": o.order_no,
                    "time": format_time(o.created_at),
                    "buyer": o.buyer_name,
                    "country": o.buyer_country,
                    "product": o.products[0].name,
                    "items": len(o.products),
                    "amount": format_usd(o.amount_cents),
                    "status": shown_status(o, LEGACY),
                }
                for o in rows
            ],
            "page_no": page_no,
            "pages": pages,
            "total": len(matches),
            "delay_ms": self.state.faults.rows_delay_ms,
        }
        return self.render(
            request,
            session,
            "orders.html",
            tabs=LEGACY_TABS,
            current_status=code,
            order_no=order_no,
            buyer_name=buyer_name,
            order_data=script_json(data),
        )

    def _own_order(self, request: Request, session: Session | None) -> Order | None:
        order = self.state.by_id.get(request.path_params["internal_id"])
        if order is None or session is None or order.account != session.account:
            return None
        return order

    async def detail(self, request: Request, session: Session | None) -> Response:
        """订单详情: fields, products, timeline, review result and the cancel dialogs."""
        order = self._own_order(request, session)
        if order is None:
            return self.not_found(request, session)
        return self.render(
            request,
            session,
            "detail.html",
            order=order,
            can_cancel=order.status in CANCELLABLE,
            reasons=REASONS,
            note_max=NOTE_MAX_LENGTH,
            note_required_for=sorted(NOTE_REQUIRED_FOR),
            fine=format_usd(cancellation_fine(order.amount_cents)),
            status_shown=shown_status(order, self.state.faults.layout),
            unpaid=order.status == UNPAID,
            confirm_text=CONFIRM_LEGACY_UNPAID if order.status == UNPAID else CONFIRM_LEGACY_PAID,
        )

    async def cancel(self, request: Request, session: Session | None) -> Response:
        """The cancel form's POST: validate, change the order, log it, redirect with a notice."""
        assert session is not None
        order = self._own_order(request, session)
        if order is None:
            return self.not_found(request, session)
        form = await request.form()
        if self.state.faults.submit_delay_ms:
            await asyncio.sleep(self.state.faults.submit_delay_ms / 1000)
        code = str(form.get("reason", ""))
        # Browsers send textarea line breaks as CRLF; count them as one character, like maxlength.
        note = str(form.get("note", "")).replace("\r\n", "\n")
        detail_path = f"/orders/detail/{order.internal_id}"
        entry = CancelLogEntry(
            order_no=order.order_no,
            account=session.account,
            reason=REASONS.get(code, code),
            note=note,
            accepted=False,
            at=now(),
        )
        self.state.cancel_log.append(entry)
        faults = self.state.faults
        legacy = faults.layout == LEGACY
        refusal = None
        if order.status in (UNDER_REVIEW, CANCELLED):
            refusal = ALERT_DUPLICATE
        elif order.status not in CANCELLABLE:
            refusal = ALERT_LEGACY_NOT_ALLOWED if legacy else ALERT_NOT_ALLOWED
        elif code not in REASONS:
            refusal = ALERT_NO_REASON
        elif code in NOTE_REQUIRED_FOR and not note.strip():
            refusal = ALERT_NOTE_REQUIRED
        elif len(note) > NOTE_MAX_LENGTH:
            refusal = ALERT_NOTE_TOO_LONG
        elif faults.insufficient_funds and order.paid_at is not None:
            # The fine is charged to the funds account; an unpaid order costs no fine.
            refusal = ALERT_NO_FUNDS
        if refusal is not None:
            session.flashes[detail_path] = ("alert", refusal)
            return redirect(detail_path)

        entry.accepted = True
        label = REASONS[code]
        order.cancel_request = CancelRequest(label, note, entry.at)
        order.review_result = None
        order.review_comment = ""
        order.events.append(Event(entry.at, f"卖家提交取消申请（原因：{label}）"))
        if order.status == UNPAID:
            apply_cancellation(order, entry.at)
            notice = NOTICE_LEGACY_CLOSED if legacy else NOTICE_CANCELLED
        elif legacy:
            # The legacy backend has no review step: the order is cancelled and fined at once.
            apply_cancellation(order, entry.at)
            notice = NOTICE_LEGACY_CANCELLED.format(fine=format_usd(order.fine_cents or 0))
        else:
            order.status = UNDER_REVIEW
            notice = NOTICE_SUBMITTED
        if self.state.roll(faults.commit_then_fail):
            # The change is committed, but the seller never hears about it.
            if faults.commit_then_fail_mode == "drop":
                return DroppedResponse()
            return self.server_error(request, session)
        session.flashes[detail_path] = ("status", notice)
        return redirect(detail_path)

    async def message_form(self, request: Request, session: Session | None) -> Response:
        """联系买家: the message form and the messages sent for this order."""
        order = self._own_order(request, session)
        if order is None or self.state.faults.layout == LEGACY:
            return self.not_found(request, session)
        return self._message_page(request, session, order, alert=None, content="")

    def _message_page(
        self,
        request: Request,
        session: Session | None,
        order: Order,
        *,
        alert: str | None,
        content: str,
        status: int = 200,
    ) -> Response:
        sent = [m for m in self.state.messages if m.order_no == order.order_no]
        return self.render(
            request,
            session,
            "message.html",
            status=status,
            order=order,
            sent=sent,
            alert=alert,
            content=content,
        )

    async def message_submit(self, request: Request, session: Session | None) -> Response:
        """Send a message to the buyer, unless it is empty or the account sends too often."""
        assert session is not None
        order = self._own_order(request, session)
        # The legacy layout has no 联系买家 at all.
        if order is None or self.state.faults.layout == LEGACY:
            return self.not_found(request, session)
        content = str((await request.form()).get("content", "")).replace("\r\n", "\n")
        if not content.strip():
            return self._message_page(
                request, session, order, alert=ALERT_MESSAGE_EMPTY, content=content
            )
        if not self.state.allow_message(session.account):
            return self._message_page(
                request, session, order, alert=ALERT_MESSAGE_RATE, content=content
            )
        self.state.messages.append(MessageEntry(order.order_no, session.account, content, now()))
        session.flashes[request.url.path] = ("status", NOTICE_MESSAGE_SENT)
        return redirect(request.url.path)

    # -- admin API (no login, no faults, no latency) -----------------------------------------

    async def admin_health(self, request: Request) -> Response:
        """Liveness probe."""
        return JSONResponse({"ok": True})

    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    async def admin_reset(self, request: Request) -> Response:
        """Regenerate data and forget everything; body {"seed", "orders"} both optional."""
        try:
            body = await self._json_body(request)
        except ValueError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        seed, count = body.get("seed"), body.get("orders")
        for key, value in (("seed", seed), ("orders", count)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                message = f"{key} must be a non-negative integer"
                return JSONResponse({"ok": False, "error": message}, status_code=400)
        self.state.reset(seed, count)
        return JSONResponse({"ok": True})

    async def admin_orders(self, request: Request) -> Response:
        """Every order, optionally filtered by account= and status=.

        ``status`` is shown as the current layout's pages show it; the filter takes either the
        internal name or the legacy one, in any layout.
        """
        account = request.query_params.get("account")
        status = request.query_params.get("status")
        layout = self.state.faults.layout
        return JSONResponse(
            [
                {
                    "order_no": o.order_no,
                    "internal_id": o.internal_id,
                    "account": o.account,
                    "status": shown_status(o, layout),
                    "amount": format_usd(o.amount_cents),
                    # what cancelling it costs the seller (paid orders only)
                    "fine": format_usd(cancellation_fine(o.amount_cents)),
                }
                for o in self.state.orders
                if (not account or o.account == account)
                and (not status or status_matches(o, status))
            ]
        )

    async def admin_cancel_requests(self, request: Request) -> Response:
        """Every cancel POST that reached the handler, in arrival order."""
        return JSONResponse(
            [
                {
                    "order_no": e.order_no,
                    "account": e.account,
                    "reason": e.reason,
                    "note": e.note,
                    "accepted": e.accepted,
                    "at": e.at.isoformat(),
                }
                for e in self.state.cancel_log
            ]
        )

    async def admin_review(self, request: Request) -> Response:
        """The platform's decision on a pending cancel request: approve or reject."""
        order = self.state.by_no.get(request.path_params["order_no"])
        if order is None:
            return JSONResponse({"error": "no such order"}, status_code=404)
        try:
            body = await self._json_body(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        decision = body.get("decision")
        comment = body.get("comment", "")
        if decision not in ("approve", "reject") or not isinstance(comment, str):
            return JSONResponse(
                {"error": 'decision must be "approve" or "reject", comment a string'},
                status_code=400,
            )
        if order.status != UNDER_REVIEW:
            return JSONResponse(
                {"error": f"order is {order.status}, not {UNDER_REVIEW}", "status": order.status},
                status_code=409,
            )
        at = now()
        if decision == "approve":
            apply_cancellation(order, at)
            order.review_comment = comment
        else:
            order.status = AWAITING_SHIPMENT
            order.review_result = REVIEW_REJECTED
            order.review_comment = comment
            order.events.append(
                Event(at, f"平台审核未通过：{comment}" if comment else "平台审核未通过")
            )
        return JSONResponse(
            {
                "order_no": order.order_no,
                "status": shown_status(order, self.state.faults.layout),
                "review_result": order.review_result,
            }
        )

    async def admin_messages(self, request: Request) -> Response:
        """Every message sent to a buyer."""
        return JSONResponse(
            [
                {
                    "order_no": m.order_no,
                    "account": m.account,
                    "content": m.content,
                    "at": m.at.isoformat(),
                }
                for m in self.state.messages
            ]
        )

    async def admin_faults(self, request: Request) -> Response:
        """GET the faults object; PUT merges keys into it and returns the result."""
        if request.method == "PUT":
            try:
                body = await self._json_body(request)
                self.state.faults = self.state.faults.merged(body)
            except (ValueError, FaultError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.state.faults.to_dict())

    async def admin_stats(self, request: Request) -> Response:
        """Request counters and the concurrency high-water mark per account."""
        return JSONResponse(self.state.stats.to_dict())


def create_app(state: PortalState, admin_token: str | None = None) -> Starlette:
    """The ASGI app serving ``state``; with `admin_token`, admin calls must carry it."""
    return Portal(state, admin_token).build()
