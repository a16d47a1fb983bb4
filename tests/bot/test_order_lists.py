"""Order lists as people have them: CSV saved by Excel on Chinese Windows (GB18030/GBK) or
as "CSV UTF-8", .xlsx workbooks, and anything else refused with the formats that are read."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from openpyxl import Workbook

import bot.job
from bot.errors import JobError
from bot.job import load_csv_job, load_job
from flows.profile import Profile, load_profile
from tests.bot.conftest import Workspace, by_status


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("mock")


@pytest.fixture
def logged() -> Iterator[list[tuple[str, str]]]:
    """What loguru logs during the test, as (level, message)."""
    seen: list[tuple[str, str]] = []
    sink = logger.add(lambda m: seen.append((m.record["level"].name, m.record["message"])),
                      level="DEBUG", format="{message}")
    yield seen
    logger.remove(sink)


def refusal(path: Path, profile: Profile) -> str:
    with pytest.raises(JobError) as info:
        load_csv_job(path, profile)
    return str(info.value)


def problems(path: Path, profile: Profile) -> list[str]:
    """The problem lines of a rejected list, without the heading."""
    head, *lines = refusal(path, profile).splitlines()
    assert head.startswith("job rejected (") and head.endswith("nothing was done:")
    return [line.strip() for line in lines]


def rows(job: Any) -> list[tuple[str, str, str, int]]:
    return [(o.order_no, o.reason, o.note, o.line) for o in job.orders]


# -- CSV: the encodings Excel saves ----------------------------------------------------------

CHINESE_CSV = ("order_no,reason,note\r\n"
               "1455953150,缺货,仓库断货，无法按时发货\r\n"
               "1455953151,其他,\"买家地址：吉林省𠮷林市, 无法配送\"\r\n"
               "1455953152,price_error,\r\n")


@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_csv_saved_by_excel_on_chinese_windows(tmp_path: Path, profile: Profile,
                                               logged: list[tuple[str, str]],
                                               encoding: str) -> None:
    path = tmp_path / "orders.csv"
    text = CHINESE_CSV if encoding == "gb18030" else CHINESE_CSV.replace("𠮷", "吉")
    path.write_bytes(text.encode(encoding))  # 𠮷 is in GB18030 only (four bytes)
    job = load_csv_job(path, profile)
    place = "𠮷" if encoding == "gb18030" else "吉"
    assert rows(job) == [
        ("1455953150", "out_of_stock", "仓库断货，无法按时发货", 2),
        ("1455953151", "other", f"买家地址：吉林省{place}林市, 无法配送", 3),
        ("1455953152", "price_error", "", 4),
    ]
    assert ("INFO", f"{path}: order list read as GB18030 text") in logged


@pytest.mark.parametrize(("bom", "said"), [(True, "UTF-8 with BOM"), (False, "UTF-8")])
def test_csv_in_utf8_with_and_without_bom(tmp_path: Path, profile: Profile,
                                          logged: list[tuple[str, str]], bom: bool,
                                          said: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + CHINESE_CSV.encode())
    job = load_csv_job(path, profile)
    assert [o.note for o in job.orders] == ["仓库断货，无法按时发货",
                                            "买家地址：吉林省𠮷林市, 无法配送", ""]
    assert [o.reason for o in job.orders] == ["out_of_stock", "other", "price_error"]
    assert ("INFO", f"{path}: order list read as {said} text") in logged


def test_csv_in_utf16_names_the_accepted_encodings(tmp_path: Path, profile: Profile) -> None:
    # Excel's "Unicode text" is UTF-16.
    path = tmp_path / "orders.csv"
    path.write_bytes(CHINESE_CSV.encode("utf-16"))
    assert refusal(path, profile) == (f"{path}: the file looks like UTF-16 text; save the file "
                                      "as UTF-8 or GB18030")


def test_gb18030_csv_with_a_near_miss_reason(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes("order_no,reason,note\n1455953150,缺活,x\n1455953151, 缺货 ,y\n"
                     .encode("gb18030"))
    assert problems(path, profile) == [
        f"{path}:2: unknown reason '缺活'; did you mean out_of_stock (缺货)? The portal profile "
        "knows: out_of_stock (缺货), price_error (价格设置错误), buyer_request (买家要求取消), "
        "undeliverable (无法配送至买家地址), other (其他)"]


# -- .xlsx -------------------------------------------------------------------------------------


def workbook(path: Path, lines: list[list[Any]], title: str = "订单") -> Workbook:
    """A workbook whose first sheet holds `lines` from row 1, saved to `path`."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for values in lines:
        sheet.append(values)
    book.save(path)
    return book


def test_xlsx_read_as_excel_keeps_it(tmp_path: Path, profile: Profile,
                                     logged: list[tuple[str, str]]) -> None:
    path = tmp_path / "orders.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "取消订单"
    sheet.append(["order_no", "reason", "note"])
    sheet.append([1455953156, "缺货", "仓库断货"])           # a number cell
    sheet.append(["0145595315", "out_of_stock", None])      # text: the leading zero stays
    sheet["A3"].number_format = "@"
    sheet.append([1455953157.0, " 其他 ", 20240101])        # a whole float, a number as note
    sheet.append([])                                        # a blank row in between
    sheet.append([" 1455953158 ", "买家要求取消", "买家要求"])
    sheet.cell(row=40, column=2).number_format = "@"        # formatted, empty rows below
    other = book.create_sheet("说明")
    other.append(["not", "an", "order"])
    book.save(path)

    job = load_csv_job(path, profile)

    assert rows(job) == [
        ("1455953156", "out_of_stock", "仓库断货", 2),
        ("0145595315", "out_of_stock", "", 3),
        ("1455953157", "other", "20240101", 4),
        ("1455953158", "buyer_request", "买家要求", 6),
    ]
    assert job.source == str(path)
    assert ("INFO", f"{path}: order list read from the sheet '取消订单'") in logged


def test_xlsx_19_digit_number_is_refused_with_its_row(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "orders.xlsx"
    workbook(path, [["order_no", "reason", "note"],
                    ["1455953150", "out_of_stock", "x"],
                    [1234567890123456789, "out_of_stock", "x"],
                    [1455953151.5, "out_of_stock", "x"],
                    [123456789012345, "out_of_stock", "15 digits are kept"]])
    found = problems(path, profile)
    assert len(found) == 2, found
    assert re.fullmatch(rf"{re.escape(str(path))}:3: order_no \d{{19}} is stored as a number "
                        r"of 19 digits, more than the 15 Excel keeps exactly; format the "
                        r"order_no column as text \(设置单元格格式 → 文本\) and enter the "
                        r"numbers again", found[0]), found[0]
    assert found[1] == (f"{path}:4: order_no 1455953151.5 is stored as a number that is not "
                        "whole; format the order_no column as text (设置单元格格式 → 文本) "
                        "and enter the numbers again")


def test_xlsx_problems_carry_the_sheets_row_numbers(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "orders.xlsx"
    workbook(path, [["order_no", "reason", "note"],
                    [1455953150, "缺货", "x"],
                    [],
                    [1455953150, "缺货", "x"],
                    ["1455953151", "out_of_stok", "x"],
                    ["1455953152", "other"],
                    ["1455953153", "out_of_stock", "<b>x</b>"],
                    ["1455953154", "out_of_stock", "x", "多余"]])
    found = problems(path, profile)
    assert [p.removeprefix(f"{path}:").split(":")[0] for p in found] == [
        "4", "5", "6", "7", "8"]
    assert "listed twice (first at line 2)" in found[0]
    assert "did you mean out_of_stock (缺货)?" in found[1]
    assert "reason 'other' needs a note" in found[2]
    assert "looks like HTML" in found[3]
    assert "a cell right of the named columns holds a value" in found[4]


@pytest.mark.parametrize(("lines", "expected"), [
    ([["订单号", "原因"], [1455953150, "缺货"]],
     ":1: the first row must name the columns order_no, reason, note"),
    ([[], ["order_no", "reason"], [1455953150, "缺货"]],
     ":1: the first row must name the columns order_no, reason, note"),
    ([["order_no", "reason", "buyer"], [1455953150, "缺货", "张三"]],
     ":1: unknown columns ['buyer']; expected order_no, reason, note"),
    ([["order_no", "reason", "note"], [], [None, None, None]], ":1: no orders in the file"),
])
def test_xlsx_columns_are_checked_as_in_a_csv(tmp_path: Path, profile: Profile,
                                              lines: list[list[Any]], expected: str) -> None:
    path = tmp_path / "orders.xlsx"
    workbook(path, lines)
    assert problems(path, profile) == [f"{path}{expected}"]


def test_xlsx_with_a_stale_size_is_read_to_its_last_row(tmp_path: Path,
                                                         profile: Profile) -> None:
    # Some tools write a <dimension> that no longer fits the sheet; trusting it would drop
    # the orders below it without a word.
    source = tmp_path / "source.xlsx"
    workbook(source, [["order_no", "reason"], [1455953150, "缺货"], [1455953151, "缺货"],
                      [1455953152, "缺货"]])
    path = tmp_path / "orders.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:B2"', data)
                assert count == 1
            dst.writestr(item, data)
    assert [o.order_no for o in load_csv_job(path, profile).orders] == [
        "1455953150", "1455953151", "1455953152"]


@pytest.mark.parametrize("content", [b"order_no,reason\n1455953150,out_of_stock\n",
                                     b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600])
def test_a_file_named_xlsx_that_is_none(tmp_path: Path, profile: Profile,
                                        content: bytes) -> None:
    # A CSV renamed, or what Excel saves with a password (an OLE file, as .xls is).
    path = tmp_path / "orders.xlsx"
    path.write_bytes(content)
    assert refusal(path, profile) == (f"{path}: not an .xlsx workbook that can be read; save "
                                      "it in Excel as Excel 工作簿 (*.xlsx), without a password")


def test_a_zip_that_is_no_workbook(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "orders.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    message = refusal(path, profile)
    assert message.startswith(f"{path}: not an .xlsx workbook that can be read; save it in "
                              "Excel as Excel 工作簿 (*.xlsx), without a password (")


def test_xlsx_that_unpacks_past_the_bound_is_refused_before_parsing(
        tmp_path: Path, profile: Profile, monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl

    monkeypatch.setattr(bot.job, "MAX_XLSX_UNPACKED", 1024 * 1024)
    path = tmp_path / "orders.xlsx"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (3 * 1024 * 1024) + b"/>")
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < 100 * 1024  # small on disk

    def no_parsing(*args: object, **kwargs: object) -> object:
        raise AssertionError("the workbook was parsed")

    monkeypatch.setattr(openpyxl, "load_workbook", no_parsing)
    assert refusal(path, profile) == (f"{path}: the workbook unpacks to 3 MB, more than an "
                                      "order list needs (at most 1 MB); split the list")


# -- anything else -------------------------------------------------------------------------

FORMATS = ("Order lists are .csv (UTF-8, with or without BOM, or GB18030/GBK) or .xlsx (the "
           "first sheet); job files are .yaml/.yml, given without --orders")


@pytest.mark.parametrize(("name", "what"), [
    ("orders.xls", "a .xls file is not read as an order list; save it in Excel as .xlsx "
                   "(Excel 工作簿)."),
    ("orders.txt", "a .txt file is not read as an order list."),
    ("orders.json", "a .json file is not read as an order list."),
    ("orders.yaml", "a .yaml file is not read as an order list."),
    ("orders", "a file without an extension is not read as an order list."),
])
def test_other_files_are_refused_naming_the_formats(tmp_path: Path, profile: Profile,
                                                    name: str, what: str) -> None:
    path = tmp_path / name
    path.write_text("order_no,reason,note\n1455953150,out_of_stock,x\n", encoding="utf-8")
    assert refusal(path, profile) == f"{path}: {what} {FORMATS}"


@pytest.mark.parametrize("name", ["orders.csv", "orders.XLSX"])
def test_an_order_list_given_as_a_job_file_points_to_orders(tmp_path: Path, profile: Profile,
                                                           name: str) -> None:
    path = tmp_path / name
    path.write_text("order_no,reason,note\n1455953150,out_of_stock,x\n", encoding="utf-8")
    with pytest.raises(JobError) as info:
        load_job(path, profile)
    assert str(info.value) == (f"{path}: this is an order list, not a job file (.yaml/.yml); "
                               f"give it with --orders: dhbot run --orders {path}")


# -- through the command line --------------------------------------------------------------


def test_cli_refuses_a_text_file_as_orders_before_any_browser(workspace: Workspace) -> None:
    (workspace.root / "orders.txt").write_text("1455953150\n", encoding="utf-8")
    proc = workspace.cli("run", "--orders", "orders.txt", check_code=2)
    assert "orders.txt: a .txt file is not read as an order list" in proc.stderr
    assert ".csv (UTF-8, with or without BOM, or GB18030/GBK) or .xlsx" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0


def test_cli_refuses_an_xlsx_with_a_bad_row_before_any_browser(workspace: Workspace) -> None:
    workbook(workspace.root / "orders.xlsx", [["order_no", "reason"],
                                              [1455953150, "缺货"],
                                              [12345678901234567, "缺货"]])
    proc = workspace.cli("run", "--orders", "orders.xlsx", check_code=2)
    assert "orders.xlsx:3: order_no " in proc.stderr  # Excel rounds it: shown as stored
    assert "is stored as a number of 17 digits, more than the 15 Excel keeps" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
    assert not (workspace.root / "state" / "ledger.sqlite").exists()


@pytest.mark.e2e
@pytest.mark.browser
def test_xlsx_order_list_runs_end_to_end(workspace: Workspace) -> None:
    paid = by_status(workspace.portal, "待发货")[0]
    shipped = by_status(workspace.portal, "已发货")[0]
    workbook(workspace.root / "orders.xlsx", [["order_no", "reason", "note"],
                                              [int(paid), "缺货", "仓库断货，无法按时发货"],
                                              [shipped, "价格设置错误", None]])

    proc = workspace.dhbot("run", "--orders", "orders.xlsx", "--dry-run", check_code=0)

    assert "orders.xlsx: order list read from the sheet '订单'" in proc.stderr
    report = workspace.last_report()
    assert report["dry_run"] is True
    assert sorted((o["order_no"], o["reason"], o["note"], o["outcome"])
                  for o in report["orders"]) == sorted([
        (paid, "out_of_stock", "仓库断货，无法按时发货", "would_submit"),
        (shipped, "price_error", "", "not_cancellable")])
    assert workspace.portal.cancel_requests() == []
