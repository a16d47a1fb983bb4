"""`dhbot run` with bad input: exit 2, say why on stderr, and leave the portal untouched."""

from __future__ import annotations

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


@pytest.mark.parametrize("bad_input", [broken_yaml, gbk_job, unknown_reason, bad_env_value,
                                       unknown_config_key, order_without_reason,
                                       csv_unclosed_quote, two_accounts_for_run,
                                       bad_ledger_url, submit_unreachable_broker,
                                       submit_unknown_account])
def test_bad_input_exits_2_before_touching_the_portal(workspace: Workspace,
                                                      bad_input: BadInput) -> None:
    args, env, expected = bad_input(workspace)

    proc = workspace.dhbot(*args, extra_env=env, timeout=60, check_code=2)

    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
    assert not (workspace.root / "state" / "ledger.sqlite").exists()
    assert not list((workspace.root / "runs").glob("*/report.json"))


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
