"""The console's pages (Starlette + Jinja2, server-rendered, a little JavaScript to follow a
run). Every page but /login needs a signed-in user; every POST needs the form's CSRF token
(one per sign-in, kept in the signed session cookie); sign-ins are throttled per user name
and per address; approving needs the approver role and another person than the uploader.

Routes: /login (GET form, POST sign-in), /logout (POST), /runs, /jobs/new (GET, POST),
/jobs/{id} (preview and approval; POST /approve, /reject, /start), /jobs/{id}/state,
/runs/{id} (progress and report), /runs/{id}/progress, /runs/{id}/files/{path},
/attention, /orders, /lang/{zh|en}.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from loguru import logger
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import LoadedSettings
from bot.console.intake import Problem, Rejected, accept_pasted, accept_upload
from bot.console.language import LANGS, WHAT_TO_DO, Lang, outcome_word, word
from bot.console.store import STATE_LABELS, ConsoleJob, ConsoleStore, JobState, User, new_job_id
from bot.console.work import Conductor, job_folder, landed, report_of
from bot.display import preview_fine, shown_time
from bot.ledger import Ledger, is_run_id, new_run_id, now_iso, open_ledger
from bot.outcomes import PERSON_OUTCOMES, Outcome
from flows.profile import Profile

SESSION_COOKIE = "dhbot_console"
CSRF_FIELD = "csrf_token"
# Files of a run folder the console serves (to signed-in users): the reports and evidence.
EVIDENCE_SUFFIXES = {".html", ".png", ".jpg", ".json", ".csv", ".xml", ".zip", ".txt"}


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413, before anything reads it (by its
    Content-Length, or while it streams in when it gives none)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, "upload too large")
            return message

        await self.app(scope, counted, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = HTMLResponse("<h1>413 文件太大 / upload too large</h1>", status_code=413)
    await response(scope, receive, send)


class Console:
    """The console's state: settings, profile, ledger, store, background work, templates."""

    def __init__(self, loaded: LoadedSettings, profile: Profile, ledger: Ledger,
                 conductor: Conductor | None = None) -> None:
        self.loaded = loaded
        self.settings = loaded.settings
        self.profile = profile
        self.ledger = ledger
        self.store = ConsoleStore(ledger)
        self.conductor = conductor or Conductor(loaded, self.store)
        conf = self.settings.console
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.attempts = RateLimitItemPerSecond(conf.login_attempts,
                                               max(1, int(conf.login_window_min * 60)))
        self.templates = Environment(loader=PackageLoader("bot", "templates/console"),
                                     autoescape=select_autoescape(default=True))
        zone = self.settings.display.timezone
        self.templates.filters["time"] = lambda value: shown_time(value, zone)
        self.templates.filters["fine"] = preview_fine
        self.templates.filters["quote"] = lambda value: quote(str(value))

    # -- rendering ---------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200,
               **values: Any) -> HTMLResponse:
        lang = lang_of(request, self.settings.console.language)
        flash = request.session.pop("flash", None)
        page = self.templates.get_template(template).render(
            request=request, user=values.pop("user", None), lang=lang, flash=flash,
            t=lambda key, **kw: word(key, lang, **kw),
            outcome=lambda code: outcome_word(code, lang),
            state=lambda s: STATE_LABELS[JobState(s)][0 if lang == "zh" else 1],
            csrf_token=csrf_token(request), accounts=[a.name for a in
                                                      self.settings.portal.accounts],
            **values)
        return HTMLResponse(page, status_code=status)


def lang_of(request: Request, default: str) -> Lang:
    """The language the user picked, else the configured one."""
    value = request.session.get("lang", default)
    return value if value in LANGS else "zh"


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def flash(request: Request, key: str, **values: Any) -> None:
    """A message for the next page shown to this user."""
    request.session["flash"] = word(key, lang_of(request, "zh"), **values)


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token matches the session's (else 403)."""
    conf = console_of(request).settings.console
    limit = conf.max_upload_kb * 1024
    form = await request.form(max_files=2, max_fields=20, max_part_size=limit)
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")
    return form


Handler = Callable[[Request, User], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The page needs a signed-in user: others go to /login (a POST is refused)."""

    async def page(request: Request) -> Response:
        console = console_of(request)
        name = request.session.get("user")
        user = console.store.user(name) if isinstance(name, str) else None
        if user is None:  # never signed in, signed out, or removed since
            if request.method == "POST":
                await checked_form(request)  # a forged POST is a 403, not a redirect
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return await handler(request, user)

    return page


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never another host) to go to after signing in."""
    if not value:
        return "/runs"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/runs"
    return value


# -- sign-in -------------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    console = console_of(request)
    return console.render(request, "login.html", next=_safe_next(request.query_params.get(
        "next")))


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await checked_form(request)
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    keys = (("name", name.lower()), ("address", client_address(request)))
    item = console.attempts
    if not all(console.limiter.test(item, *key) for key in keys):
        logger.warning("console: sign-in for {!r} from {} refused: too many failures", name,
                       client_address(request))
        return console.render(request, "login.html", status=429, error="throttled",
                              next=target, name=name)
    user = console.store.verify(name, password) if name and password else None
    if user is None:
        for key in keys:
            console.limiter.hit(item, *key)
        logger.info("console: failed sign-in for {!r} from {}", name, client_address(request))
        return console.render(request, "login.html", status=401, error="bad_login",
                              next=target, name=name)
    for key in keys:
        console.limiter.clear(item, *key)
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session.update({"user": user.name, "csrf": secrets.token_urlsafe(32)})
    if lang:
        request.session["lang"] = lang
    console.store.audit(None, user.name, "signed_in", {"address": client_address(request)})
    return RedirectResponse(target, status_code=303)


@signed_in
async def logout(request: Request, user: User) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def set_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang in LANGS:
        request.session["lang"] = lang
    return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)


async def home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=303)


# -- jobs ----------------------------------------------------------------------------------


@signed_in
async def new_job_form(request: Request, user: User) -> Response:
    console = console_of(request)
    return console.render(request, "job_new.html", user=user, reasons=console.profile.reasons,
                          problems=None, values={})


@signed_in
async def new_job(request: Request, user: User) -> Response:
    console = console_of(request)
    form = await checked_form(request)
    values = {k: str(form.get(k) or "") for k in ("account", "name", "pasted", "reason",
                                                  "note")}
    account = values["account"] or None
    names = [a.name for a in console.settings.portal.accounts]
    job_id = new_job_id()
    folder = job_folder(console.loaded, job_id)
    upload = form.get("file")
    limit = console.settings.console.max_upload_kb * 1024
    try:
        if account is not None and account not in names:
            raise Rejected([Problem(0, f"unknown account {account!r}; one of: "
                                       + ", ".join(names))])
        if account is None and len(names) == 1:
            account = names[0]
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise HTTPException(413, f"{upload.filename}: larger than "
                                         f"{console.settings.console.max_upload_kb} KB")
            job, path = accept_upload(upload.filename, data, folder, console.profile, account)
            upload_name = Path(upload.filename).name
        elif values["pasted"].strip():
            job, path = accept_pasted(values["pasted"], values["reason"], values["note"],
                                      folder, console.profile, account)
            upload_name = "(pasted)"
        else:
            raise Rejected([Problem(0, "choose a file to upload, or paste order numbers")])
        chosen = account or job.account or (job.accounts()[0] if job.accounts() else None)
        if chosen is None or chosen not in names:
            raise Rejected([Problem(0, "choose the account the orders belong to")])
    except Rejected as exc:
        return console.render(request, "job_new.html", status=400, user=user,
                              reasons=console.profile.reasons, problems=exc.problems,
                              values=values)
    record = console.store.add_job(job_id, name=values["name"].strip() or job.name,
                                   account=chosen, upload_name=upload_name,
                                   job_file=str(path), orders=len(job.orders),
                                   uploaded_by=user.name)
    preview_run = new_run_id()
    console.store.move(job_id, [JobState.PREVIEWING], JobState.PREVIEWING,
                       preview_run=preview_run)
    console.conductor.preview(record, preview_run)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


def _job_or_404(console: Console, job_id: str) -> ConsoleJob:
    job = console.store.job(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job


@signed_in
async def job_page(request: Request, user: User) -> Response:
    console = console_of(request)
    job = _job_or_404(console, request.path_params["job_id"])
    preview = report_of(console.loaded, job.preview_run)
    threshold = console.settings.console.approval_threshold
    return console.render(
        request, "job.html", user=user, job=job, preview=preview,
        needs_approval=job.needs_approval(threshold), threshold=threshold,
        may_decide=_may_decide(user, job, threshold), trail=console.store.trail(job.job_id),
        log_tail=_log_tail(console, job))


def _may_decide(user: User, job: ConsoleJob, threshold: int) -> str | None:
    """Why `user` may not approve or start `job` (a word key), None when they may."""
    if job.needs_approval(threshold) and job.state is JobState.AWAITING_APPROVAL:
        if not user.approves:
            return "not_approver"
        if user.name == job.uploaded_by:
            return "own_job"
        return None
    if job.state in (JobState.READY, JobState.INTERRUPTED):
        return None if user.approves or user.name == job.uploaded_by else "no_permission"
    return "already_decided"


def _log_tail(console: Console, job: ConsoleJob) -> str | None:
    if job.state not in (JobState.PREVIEW_FAILED, JobState.INTERRUPTED, JobState.DONE):
        return None
    name = "preview.log" if job.state is JobState.PREVIEW_FAILED else "run.log"
    path = job_folder(console.loaded, job.job_id) / name
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return "\n".join(lines[-15:])


@signed_in
async def job_state(request: Request, user: User) -> Response:
    console = console_of(request)
    job = _job_or_404(console, request.path_params["job_id"])
    run = job.run_id if job.state in (JobState.QUEUED, JobState.RUNNING) else job.preview_run
    done = len(landed(console.loaded, console.ledger, run)) if run else 0
    return JSONResponse({"state": job.state.value, "done": done, "total": job.orders})


async def _decide(request: Request, user: User, decision: str) -> Response:
    """Approve, reject or start a job: the move is one guarded UPDATE, so a second click
    (or a second approver at the same moment) changes nothing."""
    console = console_of(request)
    form = await checked_form(request)
    job = _job_or_404(console, request.path_params["job_id"])
    threshold = console.settings.console.approval_threshold
    why = _may_decide(user, job, threshold)
    if why == "already_decided":
        flash(request, why)
        return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)
    if why is not None:
        raise HTTPException(403, word(why, lang_of(request, "zh")))
    comment = str(form.get("comment") or "").strip()[:2000]
    if decision == "approved" and job.state is not JobState.AWAITING_APPROVAL:
        decision = "started"
    if decision == "started" and job.state is JobState.AWAITING_APPROVAL:
        raise HTTPException(403, word("needs_approval", lang_of(request, "zh"), n=threshold))
    allowed = [job.state] if job.state in (JobState.AWAITING_APPROVAL, JobState.READY,
                                           JobState.INTERRUPTED) else []
    if decision == "rejected":
        moved = console.store.move(job.job_id, allowed, JobState.REJECTED,
                                   decided_by=user.name, decided_at=now_iso(),
                                   decision="rejected", comment=comment)
        run_id = None
    else:
        run_id = new_run_id()
        values: dict[str, Any] = {"run_id": run_id}
        if job.state is not JobState.INTERRUPTED:  # the first decision is the one kept
            values.update(decided_by=user.name, decided_at=now_iso(), decision=decision,
                          comment=comment)
        moved = console.store.move(job.job_id, allowed, JobState.QUEUED, **values)
    if not moved:
        flash(request, "already_decided")
        return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)
    action = {"approved": "approved", "rejected": "rejected", "started": "started"}[decision]
    if job.state is JobState.INTERRUPTED and decision != "rejected":
        action = "started_again"
    console.store.audit(job.job_id, user.name, action, {"comment": comment, "run_id": run_id})
    if run_id is not None:
        updated = console.store.job(job.job_id)
        assert updated is not None
        console.conductor.run(updated, run_id)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)
    return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)


@signed_in
async def approve(request: Request, user: User) -> Response:
    return await _decide(request, user, "approved")


@signed_in
async def reject(request: Request, user: User) -> Response:
    return await _decide(request, user, "rejected")


@signed_in
async def start(request: Request, user: User) -> Response:
    return await _decide(request, user, "started")


# -- runs ----------------------------------------------------------------------------------


@signed_in
async def runs_page(request: Request, user: User) -> Response:
    console = console_of(request)
    jobs = console.store.jobs(limit=200)
    mine = {j.run_id for j in jobs} | {j.preview_run for j in jobs}
    summaries = {}
    for job in jobs:
        report = report_of(console.loaded, job.run_id)
        summaries[job.job_id] = report.get("summary") if report else None
    others = [r for r in console.ledger.runs(limit=50) if r.run_id not in mine]
    return console.render(request, "runs.html", user=user, jobs=jobs, summaries=summaries,
                          others=others)


def _run_dir(console: Console, run_id: str) -> Path:
    if not is_run_id(run_id):
        raise HTTPException(404, "no such run")
    return console.settings.paths.runs_dir / run_id


@signed_in
async def run_page(request: Request, user: User) -> Response:
    console = console_of(request)
    run_id = request.path_params["run_id"]
    folder = _run_dir(console, run_id)
    row = console.ledger.run(run_id)
    job = console.store.job_for_run(run_id)
    if row is None and job is None:
        raise HTTPException(404, "no such run")
    report = report_of(console.loaded, run_id)
    waiting = job is not None and job.state in (JobState.QUEUED, JobState.RUNNING) \
        and job.run_id == run_id
    return console.render(request, "run.html", user=user, run_id=run_id, row=row, job=job,
                          report=report, waiting=waiting, has_html=(folder /
                                                                    "report.html").exists())


@signed_in
async def run_progress(request: Request, user: User) -> Response:
    console = console_of(request)
    run_id = request.path_params["run_id"]
    _run_dir(console, run_id)
    job = console.store.job_for_run(run_id)
    lang = lang_of(request, console.settings.console.language)
    orders = [{"order_no": x.order_no, "outcome": x.outcome,
               "label": outcome_word(x.outcome, lang)}
              for x in landed(console.loaded, console.ledger, run_id)]
    finished = report_of(console.loaded, run_id) is not None
    if job is not None and job.run_id == run_id:
        finished = finished or job.state not in (JobState.QUEUED, JobState.RUNNING)
    return JSONResponse({"run_id": run_id, "finished": finished, "orders": orders,
                         "done": len(orders), "total": job.orders if job else None,
                         "state": job.state.value if job and job.run_id == run_id else None})


@signed_in
async def run_file(request: Request, user: User) -> Response:
    console = console_of(request)
    folder = _run_dir(console, request.path_params["run_id"]).resolve()
    path = (folder / request.path_params["path"]).resolve()
    if (not path.is_relative_to(folder) or not path.is_file()
            or path.suffix.lower() not in EVIDENCE_SUFFIXES):
        raise HTTPException(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "private, no-store"})


# -- orders --------------------------------------------------------------------------------


@signed_in
async def attention_page(request: Request, user: User) -> Response:
    console = console_of(request)
    names = {console.settings.portal.key(a.name): a.name
             for a in console.settings.portal.accounts}
    rows = console.ledger.rows(outcomes=PERSON_OUTCOMES)
    login_jobs = [j for j in console.store.jobs(limit=200)
                  if j.exit_code == 3 and j.state in (JobState.DONE, JobState.PREVIEW_FAILED,
                                                      JobState.INTERRUPTED)]
    lang = lang_of(request, console.settings.console.language)
    todo = {o.value: text[0 if lang == "zh" else 1] for o, text in WHAT_TO_DO.items()}
    return console.render(request, "attention.html", user=user, rows=rows, names=names,
                          login_jobs=login_jobs, todo=todo)


@signed_in
async def orders_page(request: Request, user: User) -> Response:
    console = console_of(request)
    portal = console.settings.portal
    names = {portal.key(a.name): a.name for a in portal.accounts}
    q = request.query_params.get("q", "").strip()
    account = request.query_params.get("account") or None
    outcome = request.query_params.get("outcome") or None
    try:
        outcomes = [Outcome(outcome)] if outcome else None
    except ValueError:
        outcomes = None
    key = portal.key(account) if account is not None and account in names.values() else None
    wanted = [n for n in q.replace(",", " ").split() if n] or None
    rows = console.ledger.rows(account=key, order_nos=wanted, outcomes=outcomes)[:1000]
    return console.render(request, "orders.html", user=user, rows=rows, names=names, q=q,
                          account=account, chosen_outcome=outcome,
                          all_outcomes=[o.value for o in Outcome])


# -- the app -------------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if "session" not in request.scope:  # refused before the session middleware ran
        return HTMLResponse(f"<h1>{exc.status_code}</h1><p>{exc.detail}</p>",
                            status_code=exc.status_code)
    console = console_of(request)
    name = request.session.get("user")
    user = console.store.user(name) if isinstance(name, str) else None
    return console.render(request, "message.html", status=exc.status_code, user=user,
                          code=exc.status_code, detail=exc.detail)


def create_app(loaded: LoadedSettings, profile: Profile, secret_key: str, *,
               https_only: bool = False, conductor: Conductor | None = None) -> Starlette:
    """The console as an ASGI app (uvicorn serves it: `dhbot serve`)."""
    conf = loaded.settings.console

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ledger = open_ledger(loaded.settings)
        console = Console(loaded, profile, ledger, conductor)
        moved = console.store.interrupt_busy()
        if moved:
            logger.warning("console: {} job(s) were at work when the console last stopped; "
                           "marked interrupted: {}", len(moved), ", ".join(moved))
        app.state.console = console
        try:
            yield
        finally:
            console.conductor.close()
            ledger.close()

    routes = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{lang}", set_language),
        Route("/runs", runs_page),
        Route("/jobs/new", new_job_form, methods=["GET"]),
        Route("/jobs/new", new_job, methods=["POST"]),
        Route("/jobs/{job_id}", job_page),
        Route("/jobs/{job_id}/state", job_state),
        Route("/jobs/{job_id}/approve", approve, methods=["POST"]),
        Route("/jobs/{job_id}/reject", reject, methods=["POST"]),
        Route("/jobs/{job_id}/start", start, methods=["POST"]),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/progress", run_progress),
        Route("/runs/{run_id}/files/{path:path}", run_file),
        Route("/attention", attention_page),
        Route("/orders", orders_page),
    ]
    middleware = [
        # The form's other fields and its multipart framing need a few KB beside the file.
        Middleware(BodyLimit, limit=conf.max_upload_kb * 1024 + 16 * 1024),
        Middleware(SessionMiddleware, secret_key=secret_key, session_cookie=SESSION_COOKIE,
                   max_age=int(conf.session_hours * 3600), same_site="strict",
                   https_only=https_only),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error})
