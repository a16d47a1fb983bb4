"""`dhbot run` with bad input: exit 2, say why on stderr, and leave the portal untouched."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bot.conftest import Workspace, by_status

BadInput = Callable[[Workspace], tuple[list[str], dict[str, str], list[str]]]


def broken_yaml(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    path = ws.root / "job.yaml"
    path.write_text("orders:\n  - order_no: 1455953150\n   reason: out_of_stock\n",
                    encoding="utf-8")
    return ["run", "job.yaml"], {}, ["job.yaml:3: not valid YAML"]


def gbk_job(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    path = ws.root / "job.yaml"
    path.write_bytes("defaults:\n  reason: out_of_stock\norders:\n"
                     "  - order_no: 1455953150\n    note: 仓库断货\n".encode("gbk"))
    return ["run", "job.yaml"], {}, ["job.yaml:5: not UTF-8 text", "save the file as UTF-8"]


def unknown_reason(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150", "reason": "sold_out"}])
    return ["run", "job.yaml"], {}, ["unknown reason 'sold_out'", "out_of_stock (缺货)"]


def bad_env_value(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    return (["run", "job.yaml"], {"DHBOT_BROWSER__TIMEOUT_S": "abc"},
            ["env:DHBOT_BROWSER__TIMEOUT_S: browser.timeout_s:", "valid number"])


def unknown_config_key(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_config(browser={"headles": False})
    ws.write_job([{"order_no": "1455953150"}])
    return ["run", "job.yaml"], {}, [f"file:{Path('config.yaml')}: browser.headles: unknown key"]


def order_without_reason(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    return ["run", "--order", "1455953156"], {}, ["--order needs --reason", "out_of_stock"]


def csv_unclosed_quote(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    (ws.root / "orders.csv").write_text(
        'order_no,reason,note\n1455953150,out_of_stock,"缺货\n1455953151,out_of_stock,x\n',
        encoding="utf-8")
    return ["run", "--orders", "orders.csv"], {}, ["orders.csv:2: not valid CSV"]


def two_accounts_for_run(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150", "account": "main"},
                  {"order_no": "1455953151", "account": "other"}])
    return ["run", "job.yaml"], {}, ["belong to 2 accounts (main, other)", "dhbot submit"]


def bad_ledger_url(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    return (["run", "job.yaml"], {"DHBOT_LEDGER": "mysql://db/x"},
            ["env:DHBOT_LEDGER: ledger:", "expected sqlite:///PATH or postgresql://"])


def submit_unreachable_broker(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}], account="main")
    return (["submit", "job.yaml"], {"DHBOT_DISTRIBUTED__BROKER_URL": "redis://127.0.0.1:1/0"},
            ["cannot reach the broker redis://127.0.0.1:1/0", "nothing was queued"])


def submit_unknown_account(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150", "account": "zzz"}])
    return ["submit", "job.yaml"], {}, ["unknown account 'zzz'"]


def raw_job(body: bytes, *expected: str) -> BadInput:
    """A job file written byte for byte."""

    def make(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
        (ws.root / "job.yaml").write_bytes(body)
        return ["run", "job.yaml"], {}, list(expected)

    make.__name__ = f"raw_job_{expected[0][:20]}"
    return make


GOOD = b'defaults: {reason: out_of_stock}\norders:\n  - order_no: "1455953156"\n'
BAD_FILES = [
    raw_job(GOOD.replace(b"out_of_stock", b"out\x00of"), "job.yaml:1:",
            "control character U+0000"),
    raw_job(GOOD.replace(b"reason", b"rea\x07son"), "job.yaml:1:", "control character U+0007"),
    raw_job(GOOD + b"# \x1b[31m\n", "job.yaml:4:", "control character U+001B"),
    raw_job(GOOD.replace(b"orders", b"ord\x7fers"), "job.yaml:2:", "control character U+007F"),
    raw_job(GOOD.decode().encode("utf-16-be"), "UTF-16", "save the file as UTF-8"),
    raw_job(b'orders:\n  - order_no: "1455953156"\n    reason: !!int abc\n', "job.yaml:3:",
            "not valid YAML"),
    raw_job(b'name: !!timestamp 2001-13-45\n' + GOOD, "job.yaml:1:", "not valid YAML"),
    raw_job(b'name: !!python/name:os.system\n' + GOOD, "job.yaml:1:", "not valid YAML"),
    raw_job(b"name: " + b"[" * 500 + b"]" * 500 + b"\n" + GOOD, "job.yaml:1:",
            "nested more than"),
    raw_job(b"orders:\n" + b"".join(b'  - order_no: "x%d"\n' % i for i in range(80))
            + b"defaults: {reason: out_of_stock}\n", "and 30 more problems"),
]


def fifo_job(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    os.mkfifo(ws.root / "job.yaml")
    return ["run", "job.yaml"], {}, ["job.yaml: cannot read the job file: not a regular file"]


def dev_zero_job(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    return ["run", "/dev/zero"], {}, ["/dev/zero: cannot read the job file: not a regular file"]


def dev_zero_csv(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    return ["run", "--orders", "/dev/zero"], {}, ["/dev/zero: cannot read", "not a regular file"]


def fifo_config(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    os.mkfifo(ws.root / "fifo.yaml")
    return (["run", "job.yaml", "--config", "fifo.yaml"], {},
            ["fifo.yaml: cannot read the config file: not a regular file"])


def alias_bomb_config(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    config = ws.root / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "extra:\n"
                      + "".join(f"  {line}\n" for line in lines), encoding="utf-8")
    return ["run", "job.yaml"], {}, ["config.yaml:", "anchors and aliases"]


def deep_config(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    (ws.root / "config.yaml").write_text("a: " + "[" * 2000 + "]" * 2000 + "\n",
                                         encoding="utf-8")
    return ["run", "job.yaml"], {}, ["config.yaml:1:", "nested more than"]


def userinfo_base_url(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    return (["run", "job.yaml", "--base-url", "http://seller.dhgate.com\\@127.0.0.1/"], {},
            ["portal.base_url", "backslash"])


def unwritable_report(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}])
    return (["run", "job.yaml", "--report", "/etc/passwd/r.json"], {},
            ["--report /etc/passwd/r.json: cannot be written"])


def account_not_chosen(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150"}], account="other")
    return (["run", "job.yaml", "--account", "main"], {},
            ["--account main was chosen", "order 1455953150 names account other"])


def bidi_note(ws: Workspace) -> tuple[list[str], dict[str, str], list[str]]:
    ws.write_job([{"order_no": "1455953150", "note": "退款\u202e说明"}])
    return ["run", "job.yaml"], {}, ["note contains control characters"]


@pytest.mark.parametrize("bad_input", [broken_yaml, gbk_job, unknown_reason, bad_env_value,
                                       unknown_config_key, order_without_reason,
                                       csv_unclosed_quote, two_accounts_for_run,
                                       bad_ledger_url, submit_unreachable_broker,
                                       submit_unknown_account, *BAD_FILES, fifo_job,
                                       dev_zero_job, dev_zero_csv, fifo_config,
                                       alias_bomb_config, deep_config, userinfo_base_url,
                                       unwritable_report, account_not_chosen, bidi_note])
def test_bad_input_exits_2_before_touching_the_portal(workspace: Workspace,
                                                      bad_input: BadInput) -> None:
    args, env, expected = bad_input(workspace)

    proc = workspace.cli(*args, extra_env=env, check_code=2)

    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
    assert not (workspace.root / "state" / "ledger.sqlite").exists()
    assert not list((workspace.root / "runs").glob("*/report.json"))


@pytest.mark.e2e
@pytest.mark.browser
def test_csv_with_bom_header_runs_end_to_end(workspace: Workspace) -> None:
    shipped = by_status(workspace.portal, "已发货")[0]
    # As Excel saves "CSV UTF-8": a BOM before the header, CRLF line ends, a quoted note.
    (workspace.root / "orders.csv").write_bytes(
        ("\ufefforder_no,reason,note\r\n"
         f'{shipped},out_of_stock,"仓库断货, 无法发货"\r\n').encode())

    workspace.dhbot("run", "--orders", "orders.csv", check_code=0)

    report = workspace.last_report()
    assert [(o["order_no"], o["outcome"]) for o in report["orders"]] == [
        (shipped, "not_cancellable")]
    assert workspace.portal.cancel_requests() == []
    assert workspace.portal.stats()["requests"] > 0  # the bad-input tests' 0 is meaningful
    assert (workspace.root / "state" / "ledger.sqlite").exists()
