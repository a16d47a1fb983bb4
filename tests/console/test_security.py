"""The console's defences: CSRF on every POST, sign-in required, roles, two-person approval
done once, upload size, sign-in throttling, safe redirects and file paths, cookie flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Route

from bot.console.store import JobState
from tests.console.conftest import PASSWORD, ConsoleApp, csrf, upload_csv

ORDERS = "order_no,reason,note\n1455953157,out_of_stock,断货\n1455953158,out_of_stock,断货\n"


def _post_routes(app: ConsoleApp) -> list[str]:
    client = app.client()
    routes = [r for r in client.app.routes if isinstance(r, Route)  # type: ignore[attr-defined]
              and "POST" in (r.methods or set())]
    assert len(routes) >= 6  # login, logout, jobs/new, approve, reject, start
    return [r.path.replace("{job_id}", "J20261130-000000-abcd") for r in routes]


def _job(app: ConsoleApp, user: str = "olga", text: str = ORDERS) -> str:
    client = app.signed_in(user)
    response = upload_csv(client, text)
    assert response.status_code == 303, response.text
    job_id = response.headers["location"].rsplit("/", 1)[1]
    # The dry run finished: the state it leaves a job of 2 orders in (threshold 1).
    assert app.store.move(job_id, [JobState.PREVIEWING], JobState.AWAITING_APPROVAL)
    return job_id


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_every_post_without_the_csrf_token_is_refused(console_app: ConsoleApp,
                                                      signed_in: bool) -> None:
    job_id = _job(console_app)
    client = console_app.signed_in("amy") if signed_in else console_app.client()
    client.get("/login")  # the session has a token: the POST just does not send it
    for path in _post_routes(console_app):
        path = path.replace("J20261130-000000-abcd", job_id)
        for data in ({}, {"csrf_token": "forged"}):
            response = client.post(path, data={"name": "amy", "password": PASSWORD, **data})
            assert response.status_code == 403, (path, data, response.status_code)
    assert console_app.job(job_id).state is JobState.AWAITING_APPROVAL
    assert console_app.conductor.runs == []
    # A forged sign-in did not sign anyone in.
    assert client.get("/runs").status_code == (200 if signed_in else 303)


def test_a_signed_out_page_goes_to_the_sign_in_page(console_app: ConsoleApp) -> None:
    job_id = _job(console_app)
    client = console_app.client()
    for path in ("/runs", "/jobs/new", f"/jobs/{job_id}", f"/jobs/{job_id}/state",
                 "/attention", "/orders?q=1", "/runs/20261130-000000-abcd",
                 "/runs/20261130-000000-abcd/progress",
                 "/runs/20261130-000000-abcd/files/report.html"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
    page = client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text


def test_signing_in_goes_back_to_the_page_asked_for_never_to_another_site(
        console_app: ConsoleApp) -> None:
    for asked, lands in (("/orders?q=1", "/orders?q=1"), ("//evil.example/x", "/runs"),
                         ("https://evil.example/", "/runs"), ("runs", "/runs")):
        client = console_app.client()
        token = csrf(client, "/login")
        response = client.post("/login", data={"name": "olga", "password": PASSWORD,
                                               "csrf_token": token, "next": asked})
        assert response.status_code == 303
        assert response.headers["location"] == lands, asked


def test_an_operator_cannot_approve_and_the_uploader_cannot_approve_their_own_job(
        console_app: ConsoleApp) -> None:
    job_id = _job(console_app, user="olga")
    operator = console_app.signed_in("oscar")
    response = operator.post(f"/jobs/{job_id}/approve",
                             data={"csrf_token": csrf(operator, f"/jobs/{job_id}")})
    assert response.status_code == 403
    assert "只有审批人可以审批" in response.text
    page = operator.get(f"/jobs/{job_id}").text
    assert 'id="approve"' not in page and "只有审批人可以审批" in page

    own = _job(console_app, user="amy")  # an approver's own upload
    approver = console_app.signed_in("amy")
    response = approver.post(f"/jobs/{own}/approve",
                             data={"csrf_token": csrf(approver, f"/jobs/{own}")})
    assert response.status_code == 403
    assert "不能审批自己上传的任务" in response.text
    # Nor start it without approval, nor reject it.
    for action in ("start", "reject"):
        response = approver.post(f"/jobs/{own}/{action}",
                                 data={"csrf_token": csrf(approver, f"/jobs/{own}")})
        assert response.status_code == 403, action
    for job in (job_id, own):
        assert console_app.job(job).state is JobState.AWAITING_APPROVAL
        assert console_app.job(job).decided_by is None
    assert console_app.conductor.runs == []


def test_a_second_approval_of_the_same_job_does_nothing(console_app: ConsoleApp) -> None:
    job_id = _job(console_app, user="olga")
    first, second = console_app.signed_in("amy"), console_app.signed_in("ann")
    token_1 = csrf(first, f"/jobs/{job_id}")
    token_2 = csrf(second, f"/jobs/{job_id}")  # both saw the approve button
    answer = first.post(f"/jobs/{job_id}/approve", data={"csrf_token": token_1,
                                                         "comment": "同意"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/runs/")
    again = second.post(f"/jobs/{job_id}/approve", data={"csrf_token": token_2})
    assert again.status_code == 303 and again.headers["location"] == f"/jobs/{job_id}"
    assert "该任务已被处理" in second.get(f"/jobs/{job_id}").text
    repeat = first.post(f"/jobs/{job_id}/approve", data={"csrf_token": token_1})
    assert repeat.headers["location"] == f"/jobs/{job_id}"
    job = console_app.job(job_id)
    assert job.decided_by == "amy" and job.comment == "同意" and job.state is JobState.QUEUED
    assert console_app.conductor.runs == [(job_id, job.run_id)]
    approvals = [e for e in console_app.store.trail(job_id) if e.action == "approved"]
    assert [(e.user, e.detail["run_id"]) for e in approvals] == [("amy", job.run_id)]
    # Rejecting after the approval changes nothing either.
    late = second.post(f"/jobs/{job_id}/reject", data={"csrf_token": token_2})
    assert late.headers["location"] == f"/jobs/{job_id}"
    assert console_app.job(job_id).state is JobState.QUEUED


def test_an_upload_over_the_size_limit_is_refused_and_nothing_is_queued(
        console_app: ConsoleApp) -> None:
    client = console_app.signed_in("olga")
    # Just over console.max_upload_kb (64 in the fixture): refused after the form is read;
    # far over: refused by its Content-Length before anything reads the body.
    for size in (66_000, 400_000):
        big = "order_no,reason,note\n" + "1455953157,out_of_stock," + "x" * size + "\n"
        response = upload_csv(client, big)
        assert response.status_code == 413, size
        assert "文件太大" in response.text or "too large" in response.text
    assert console_app.store.jobs() == []
    assert console_app.conductor.previews == []
    assert not (console_app.root / "state" / "console" / "jobs").exists() or not any(
        (console_app.root / "state" / "console" / "jobs").iterdir())


def test_sign_ins_are_throttled_per_name_and_per_address(console_app: ConsoleApp) -> None:
    client = console_app.client()
    token = csrf(client, "/login")
    for _ in range(3):  # console.login_attempts: 3 in the fixture
        bad = client.post("/login", data={"name": "olga", "password": "wrong password",
                                          "csrf_token": token})
        assert bad.status_code == 401
        assert "用户名或密码错误" in bad.text
    right = client.post("/login", data={"name": "olga", "password": PASSWORD,
                                        "csrf_token": token})
    assert right.status_code == 429  # even the right password waits for the window
    assert "登录失败次数过多" in right.text
    # The address is throttled too: another name from it waits as well.
    other = client.post("/login", data={"name": "amy", "password": PASSWORD,
                                        "csrf_token": token})
    assert other.status_code == 429
    assert client.get("/runs").status_code == 303


def test_the_session_cookie_is_signed_http_only_and_same_site(console_app: ConsoleApp) -> None:
    client = console_app.client()
    token = csrf(client, "/login")
    response = client.post("/login", data={"name": "olga", "password": PASSWORD,
                                           "csrf_token": token})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dhbot_console=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert PASSWORD not in cookie
    # A tampered cookie is no sign-in.
    value = client.cookies["dhbot_console"]
    client.cookies.set("dhbot_console", value[:-4] + ("AAAA" if value[-4:] != "AAAA"
                                                      else "BBBB"))
    assert client.get("/runs").status_code == 303


def test_a_run_folder_serves_only_its_own_evidence(console_app: ConsoleApp) -> None:
    run_id = "20261130-101500-abcd"
    folder = console_app.root / "runs" / run_id
    (folder / "screens").mkdir(parents=True)
    (folder / "report.html").write_text("<h1>report</h1>", encoding="utf-8")
    (folder / "screens" / "x.png").write_bytes(b"\x89PNG\r\n")
    (console_app.root / "runs" / "secret.png").write_bytes(b"\x89PNG")
    client = console_app.signed_in("olga")
    assert client.get(f"/runs/{run_id}/files/report.html").text == "<h1>report</h1>"
    assert client.get(f"/runs/{run_id}/files/screens/x.png").status_code == 200
    for path in ("../secret.png", "..%2Fsecret.png", "../../state/ledger.sqlite",
                 "%2e%2e/secret.png", "log.jsonl", "nothing.png"):
        assert client.get(f"/runs/{run_id}/files/{path}").status_code == 404, path
    assert client.get("/runs/..%2F..%2Fstate/files/x.png").status_code == 404


def test_bad_order_lists_show_problems_by_line_and_queue_nothing(
        console_app: ConsoleApp) -> None:
    client = console_app.signed_in("olga")
    text = ("order_no,reason,note\n1455953157,out_of_stock,断货\nABC,out_of_stock,x\n"
            "1455953157,out_of_stock,断货\n1455953159,no_such_reason,x\n")
    response = upload_csv(client, text)
    assert response.status_code == 400
    rows = re.findall(r'<tr class="problem"><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>',
                      response.text)
    by_line = {int(line): (zh, en) for line, zh, en in rows}
    assert set(by_line) == {3, 4, 5}, rows
    assert "第 3 行" in by_line[3][0] and "不是有效的订单号" in by_line[3][0]
    assert "line 3:" in by_line[3][1] and "ABC" in by_line[3][1]
    assert "订单号重复" in by_line[4][0] and "twice" in by_line[4][1]
    assert "未知的取消原因" in by_line[5][0] and "no_such_reason" in by_line[5][1]
    assert console_app.store.jobs() == []
    assert console_app.conductor.previews == []
    jobs = console_app.root / "state" / "console" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir())
    # What was typed stays in the form.
    assert 'name="account"' in response.text


def test_pasted_order_numbers_name_the_pasted_line(console_app: ConsoleApp) -> None:
    client = console_app.signed_in("olga")
    token = csrf(client, "/jobs/new")
    response = client.post("/jobs/new", data={
        "csrf_token": token, "account": "main", "reason": "out_of_stock", "note": "断货",
        "pasted": "1455953157\n\n1455953158 12X\n"})
    assert response.status_code == 400
    assert "第 3 行" in response.text and "12X" in response.text
    assert console_app.store.jobs() == []
    ok = client.post("/jobs/new", data={
        "csrf_token": token, "account": "main", "reason": "out_of_stock", "note": "断货",
        "pasted": "1455953157\n1455953158，1455953159"})
    assert ok.status_code == 303
    job = console_app.store.jobs()[0]
    assert job.orders == 3 and job.uploaded_by == "olga" and job.state is JobState.PREVIEWING
    assert console_app.conductor.previews == [(job.job_id, job.preview_run)]
    assert Path(str(job.job_file)).name == "job.yaml"
    assert Path(str(job.job_file)).stat().st_mode & 0o777 == 0o600
