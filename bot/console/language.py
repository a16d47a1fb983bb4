"""The console's words: Chinese first (the ops staff's language and the portal's), English
when a user picks it. Outcomes use the reports' labels (bot.outcomes.LABELS_ZH)."""

from __future__ import annotations

from typing import Literal

from bot.outcomes import LABELS_ZH, Outcome

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

WORDS: dict[str, tuple[str, str]] = {
    "title": ("dhbot 取消订单控制台", "dhbot cancellation console"),
    "runs": ("运行记录", "Runs"),
    "new_job": ("新建任务", "New job"),
    "attention": ("待人工处理", "Needs a person"),
    "orders": ("订单查询", "Orders"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "user_name": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "throttled": ("登录失败次数过多，请稍后再试", "Too many failed sign-ins; try again later"),
    "signed_out": ("请先登录", "Please sign in"),
    "job": ("任务", "Job"),
    "account": ("账号", "Account"),
    "uploaded_by": ("上传人", "Uploaded by"),
    "uploaded_at": ("上传时间", "Uploaded at"),
    "approved_by": ("审批人", "Approved by"),
    "state": ("状态", "State"),
    "order_count": ("订单数", "Orders"),
    "result": ("结果", "Result"),
    "exit": ("退出码", "Exit"),
    "started": ("开始时间", "Started"),
    "run_id": ("运行编号", "Run"),
    "source": ("来源", "Source"),
    "upload": ("上传文件", "Upload a file"),
    "upload_help": ("YAML 任务文件，或订单表（.csv：UTF-8 或 GB18030；.xlsx），列为 order_no, "
                    "reason, note", "A YAML job file, or an order list (.csv in UTF-8 or "
                    "GB18030, or .xlsx) with columns order_no, reason, note"),
    "or_paste": ("或粘贴订单号", "Or paste order numbers"),
    "paste_help": ("每行一个订单号", "One order number per line"),
    "reason": ("取消原因", "Reason"),
    "note": ("详细说明", "Note"),
    "job_name": ("任务名称（可选）", "Job name (optional)"),
    "check_and_preview": ("检查并预览", "Check and preview"),
    "problems": ("发现问题，未创建任务", "Problems found; no job was created"),
    "line": ("行", "Line"),
    "whole_file": ("整个文件", "whole file"),
    "preview": ("预览（演练，不提交）", "Preview (dry run, nothing submitted)"),
    "previewing": ("正在预览……", "Previewing…"),
    "order_no": ("订单号", "Order"),
    "portal_status": ("门户状态", "Portal status"),
    "would": ("将会", "Would"),
    "buyer_message": ("买家留言", "Buyer message"),
    "fine": ("罚金", "Fine"),
    "screenshot": ("截图", "Screenshot"),
    "approval": ("审批", "Approval"),
    "needs_approval": ("订单数超过 {n} 个，需要另一位审批人批准后才会执行",
                       "More than {n} orders: another person with the approver role must "
                       "approve before it runs"),
    "own_job": ("不能审批自己上传的任务", "You cannot approve a job you uploaded"),
    "not_approver": ("只有审批人可以审批", "Only approvers can approve"),
    "approve": ("批准并执行", "Approve and run"),
    "reject": ("驳回", "Reject"),
    "comment": ("审批意见", "Comment"),
    "start": ("开始执行", "Run it"),
    "start_again": ("重新执行（已完成的订单不会重复提交）",
                    "Run again (orders already done are never redone)"),
    "already_decided": ("该任务已被处理，本次操作无效", "This job was already decided; "
                        "nothing was done"),
    "audit": ("操作记录", "Audit trail"),
    "when": ("时间", "When"),
    "who": ("操作人", "Who"),
    "what": ("操作", "What"),
    "progress": ("进度", "Progress"),
    "report": ("报告", "Report"),
    "open_report": ("打开 report.html", "Open report.html"),
    "evidence": ("证据", "Evidence"),
    "error": ("错误", "Error"),
    "detail": ("说明", "Detail"),
    "login_needed": ("门户登录需要人工处理（验证码）。请在 dhbot 所在机器上运行：",
                     "The portal's login needs a person (captcha). On the dhbot machine run:"),
    "what_to_do": ("怎么处理", "What to do"),
    "search": ("搜索", "Search"),
    "outcome": ("结果", "Outcome"),
    "all": ("全部", "All"),
    "updated": ("更新时间", "Updated"),
    "nothing": ("没有记录", "Nothing here"),
    "by_console": ("控制台任务", "Console jobs"),
    "other_runs": ("其他运行（命令行、定时任务）", "Other runs (command line, schedules)"),
    "no_permission": ("没有权限", "Not allowed"),
    "not_found": ("找不到", "Not found"),
    "too_large": ("文件太大", "The file is too large"),
    "done_count": ("已完成 {done} / {total}", "{done} of {total} done"),
}


# What a person does about an order in each outcome that waits for one.
WHAT_TO_DO: dict[Outcome, tuple[str, str]] = {
    Outcome.FAILED: ("打开该运行的报告查看截图和错误；修正原因（网络、门户、配置）后"
                     "重新执行同一任务，已完成的订单不会重复提交。",
                     "Open the run's report for the screenshot and error; fix the cause "
                     "(network, portal, configuration), then run the same job again: finished "
                     "orders are never redone."),
    Outcome.NEEDS_REVIEW: ("提交后无法确认结果：请在门户中手动查看该订单，确认是否已申请取消，"
                           "然后运行 dhbot sync。不要手动再提交一次。",
                           "The result after the submit could not be read: look at the order "
                           "in the portal, see whether the request went in, then run `dhbot "
                           "sync`. Do not submit it again by hand."),
    Outcome.REJECTED: ("平台驳回了取消申请（见审核意见）：与买家或平台沟通；"
                       "dhbot 不会自动重新提交。",
                       "The platform refused the request (see its comment): talk to the buyer "
                       "or the platform; dhbot never resubmits it automatically."),
}


def word(key: str, lang: Lang, **values: object) -> str:
    """A word or sentence of the pages in `lang`."""
    zh, en = WORDS[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


def outcome_word(code: str | None, lang: Lang) -> str:
    """An outcome as the reports show it: 已提交 submitted (or the code in English)."""
    if not code:
        return ""
    try:
        outcome = Outcome(code)
    except ValueError:
        return code
    return f"{LABELS_ZH[outcome]} {code}" if lang == "zh" else code.replace("_", " ")
