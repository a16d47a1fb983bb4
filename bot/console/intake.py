"""What ops staff upload or paste becomes a job file in the console's job folder, checked by
the same loaders `dhbot run` uses, or a list of problems by line, in Chinese and English.
Nothing is recorded or queued for input with a problem."""

from __future__ import annotations

import csv
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.errors import JobError
from bot.job import ORDER_LIST_SUFFIXES, Job, load_csv_job, load_job
from bot.log import write_private
from flows.profile import Profile

JOB_SUFFIXES = (".yaml", ".yml")
ACCEPTED = JOB_SUFFIXES + ORDER_LIST_SUFFIXES
PASTED_FILE = "orders.csv"
JOB_FILE = "job.yaml"  # what the console runs: the upload itself, or written from it

# The gist of the loaders' problems in Chinese (the English text is shown beside it).
_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in (
    (r"is not an order number", "不是有效的订单号"),
    (r"is listed twice", "订单号重复"),
    (r"has no reason", "缺少取消原因"),
    (r"unknown reason|is not a reason", "未知的取消原因"),
    (r"needs a note", "该原因需要填写详细说明"),
    (r"unknown columns?|must name the columns|columns named twice", "表头列名不正确"),
    (r"more cells than columns|right of the named columns", "单元格多于列数"),
    (r"no orders", "文件中没有订单"),
    (r"not valid YAML|must be a mapping|keys must be", "YAML 格式错误"),
    (r"unknown key", "未知字段"),
    (r"is empty", "文件为空"),
    (r"too long|at most \d+ characters", "内容过长"),
    (r"placeholder|braces", "买家留言模板有误"),
    (r"names account|account", "账号不符"),
    (r"not UTF-8|cannot be read as|encoding|GB18030", "文件编码无法识别"),
    (r"lost its last digits|as text", "订单号被 Excel 改成了数字，请设为文本格式"),
    (r"larger than|split the", "文件过大"),
)]


@dataclass(frozen=True)
class Problem:
    """One problem with the input, where it is (line 0: the whole file)."""

    line: int
    en: str

    @property
    def zh(self) -> str:
        """The problem's gist in Chinese."""
        for pattern, zh in _ZH:
            if pattern.search(self.en):
                return zh
        return "内容有误（见英文说明）"


class Rejected(Exception):
    """The input has problems; nothing was recorded."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.en for p in problems))
        self.problems = problems


def problems_of(error: JobError, source: str, line_offset: int = 0) -> list[Problem]:
    """A loader's JobError as problems by line (`source:LINE: text` lines; others line 0)."""
    found: list[Problem] = []
    lines = str(error).splitlines()
    body = [ln.strip() for ln in lines[1:]] if len(lines) > 1 else [lines[0] if lines else ""]
    for item in body:
        if item.startswith(source + ":"):
            rest = item[len(source) + 1:]
            match = re.match(r"(\d+): (.*)", rest, re.S)
            if match:
                found.append(Problem(max(int(match[1]) + line_offset, 0), match[2]))
                continue
            item = rest.strip()
        found.append(Problem(0, item.replace(source, "the file")))
    return found


def _load(path: Path, profile: Profile, account: str | None,
          line_offset: int = 0) -> Job:
    try:
        job = (load_job(path, profile) if path.suffix.lower() in JOB_SUFFIXES
               else load_csv_job(path, profile))
        job.one_account(account, "upload one job per account")
    except JobError as exc:
        raise Rejected(problems_of(exc, str(path), line_offset)) from None
    return job


def accept_upload(filename: str, data: bytes, folder: Path, profile: Profile,
                  account: str | None) -> tuple[Job, Path]:
    """Keep an uploaded job file or order list in `folder` (0600) and validate it as `dhbot
    run` would; the folder is removed again when it has problems."""
    suffix = Path(filename).suffix.lower()
    if suffix not in ACCEPTED:
        raise Rejected([Problem(0, f"{Path(filename).name or 'the file'}: not a job file "
                                   "(.yaml/.yml) or order list (.csv UTF-8 or GB18030, "
                                   ".xlsx)")])
    if not data.strip():
        raise Rejected([Problem(0, "the file is empty")])
    path = folder / ("upload" + suffix)
    write_private(path, data)
    return _checked(path, profile, account, folder)


def accept_pasted(order_numbers: str, reason: str, note: str, folder: Path,
                  profile: Profile, account: str | None) -> tuple[Job, Path]:
    """Pasted order numbers (one per line; commas or spaces also separate) with one reason
    and note, written as an order list and validated as `dhbot run --orders` would; problems
    name the pasted lines."""
    rows: list[tuple[str, str, str]] = []
    numbers: list[tuple[int, str]] = []
    for at, line in enumerate(order_numbers.splitlines(), start=1):
        numbers += [(at, item) for item in re.split(r"[\s,，;；]+", line) if item]
    if not numbers:
        raise Rejected([Problem(0, "no order numbers were pasted")])
    if not reason:
        raise Rejected([Problem(0, "choose a reason")])
    # One CSV line per pasted line would lose where a second number on a line came from; a
    # pasted line with several numbers is rare, so each number gets its own CSV line and
    # problems are mapped back through `lines`.
    lines: dict[int, int] = {}
    for csv_line, (pasted_line, order_no) in enumerate(numbers, start=2):
        rows.append((order_no, reason, note))
        lines[csv_line] = pasted_line
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("order_no", "reason", "note"))
    writer.writerows(rows)
    path = folder / PASTED_FILE
    write_private(path, buffer.getvalue().encode("utf-8"))
    try:
        return _checked(path, profile, account, folder)
    except Rejected as exc:
        raise Rejected([Problem(lines.get(p.line, p.line if p.line < 2 else 0), p.en)
                        for p in exc.problems]) from None


def _checked(path: Path, profile: Profile, account: str | None,
             folder: Path) -> tuple[Job, Path]:
    """The job and the YAML job file it runs from: an order list is written out as one
    (`dhbot submit` reads job files only), read back by the same loader."""
    try:
        job = _load(path, profile, account)
        if path.suffix.lower() in JOB_SUFFIXES:
            return job, path
        data = {"orders": [{"order_no": o.order_no, "reason": o.reason, "note": o.note}
                           for o in job.orders]}
        yaml_path = folder / JOB_FILE
        write_private(yaml_path, yaml.safe_dump(data, allow_unicode=True,
                                                sort_keys=False).encode("utf-8"))
        return _load(yaml_path, profile, account), yaml_path
    except Rejected:
        shutil.rmtree(folder, ignore_errors=True)
        raise
