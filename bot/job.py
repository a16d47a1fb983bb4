"""Job files: which orders to cancel, why, and with what note, checked before any browser starts.

Errors name the file and the line. Order numbers are kept exactly as written: an unquoted
`0123456789` stays "0123456789", never the integer 123456789. Order lists (a CSV or an .xlsx
sheet) go through the same checks; a reason may be its code or the portal's option text.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
from typing import Any

import yaml
from loguru import logger

from bot.errors import JobError, first_line
from bot.inputs import decode_text, decode_text_as, read_regular, yaml_problem
from flows.profile import Profile

MAX_JOB_BYTES = 5 * 1024 * 1024
# Problems listed at most for one job file; the rest are counted.
MAX_PROBLEMS = 50
# Control characters other than tab and newline have no place in a note.
# C1 controls, zero-width and bidi controls (overrides, embeddings, isolates) hide or reorder
# what a person reads, so they are refused as well.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e"
                      r"\u2060-\u2064\u2066-\u2069\ufeff]")
# Markup: the portal receives notes as plain text, so anything that looks like a tag is refused.
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|&#?[A-Za-z0-9]+;")
_ORDER_KEYS = {"order_no", "reason", "note", "message", "account"}
_DEFAULT_KEYS = {"reason", "note", "message"}
_TOP_KEYS = {"account", "defaults", "orders", "name"}
MESSAGE_PLACEHOLDERS = {"order_no", "reason_label", "reason", "note"}


@dataclass(frozen=True)
class JobOrder:
    """One order to cancel, with its reason code and note resolved from the defaults."""

    order_no: str
    reason: str
    note: str
    message: str | None = None
    line: int = 0
    account: str | None = None  # this order's seller account, when not the job's


@dataclass(frozen=True)
class Job:
    """A validated job: the account to use and the orders, in file order."""

    source: str
    orders: list[JobOrder]
    account: str | None = None
    name: str | None = None
    problems: list[str] = field(default_factory=list)

    def accounts(self, default: str | None = None) -> list[str | None]:
        """The accounts the orders belong to, in first-seen order (None: not named)."""
        seen: dict[str | None, None] = {}
        for order in self.orders:
            seen.setdefault(order.account or self.account or default, None)
        return list(seen)

    def one_account(self, chosen: str | None, advice: str) -> str | None:
        """The one account the orders belong to (None: not named), after checking the
        operator's `chosen` account; a JobError naming them all when there are several,
        ending with `advice` (what to do instead)."""
        if chosen is not None:
            self.only_for(chosen)
        named = self.accounts(chosen)
        if len(named) > 1:
            raise JobError(f"{self.source}: the orders belong to {len(named)} accounts ("
                           + ", ".join(str(n) for n in named) + f"); {advice}")
        return named[0]

    def only_for(self, account: str) -> None:
        """Refuse the job if it names any account but `account` (the operator's choice,
        from --account or a schedule, is never overridden by the file)."""
        others = [order for order in self.orders
                  if (order.account or self.account or account) != account]
        if others:
            shown = [f"{self.source}:{o.line}: order {o.order_no} names account "
                     f"{o.account or self.account}" for o in others[:MAX_PROBLEMS]]
            more = len(others) - len(shown)
            raise JobError(f"--account {account} was chosen, but {len(others)} order"
                           f"{'s' if len(others) > 1 else ''} of the job name another account; "
                           "nothing was done:\n  " + "\n  ".join(shown)
                           + (f"\n  … and {more} more" if more > 0 else ""))

    def split(self, default: str | None = None) -> dict[str | None, list[JobOrder]]:
        """The orders grouped by account, each group in file order."""
        parts: dict[str | None, list[JobOrder]] = {}
        for order in self.orders:
            parts.setdefault(order.account or self.account or default, []).append(order)
        return parts


class _Errors:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, f"{self.source}:{line}: {message}"))

    def raise_if_any(self) -> None:
        if self.items:
            count = len(self.items)
            head = f"job rejected ({count} problem{'s' if count > 1 else ''}); nothing was done:"
            lines = [text for _, text in sorted(self.items, key=lambda item: item[0])]
            if count > MAX_PROBLEMS:
                lines = [*lines[:MAX_PROBLEMS], f"… and {count - MAX_PROBLEMS} more problems"]
            raise JobError(head + "\n  " + "\n  ".join(lines))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _BadValue(Exception):
    """A tagged scalar that its YAML constructor refuses (!!int abc, !!python/name:…)."""


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise _BadValue(first_line(exc)) from None


def _mapping(node: yaml.Node, what: str, errors: _Errors) -> dict[str, tuple[yaml.Node,
                                                                              yaml.Node]] | None:
    if not isinstance(node, yaml.MappingNode):
        errors.add(_line(node), f"{what} must be a mapping of keys to values")
        return None
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            errors.add(_line(key_node), f"{what}: keys must be plain words")
            continue
        if key in out:
            errors.add(_line(key_node), f"{what}: key {key!r} appears twice")
            continue
        out[key] = (key_node, value_node)
    return out


def check_text(value: str, what: str, max_length: int | None = None) -> str | None:
    """Why a free-text value is refused, or None when it is fine."""
    if _CONTROL.search(value):
        return f"{what} contains control characters; write plain text"
    markup = _MARKUP.search(value)
    if markup:
        return (f"{what} looks like HTML or script ({markup.group(0)!r}...); "
                "notes are sent as plain text, write it without tags")
    if max_length is not None and len(value) > max_length:
        return f"{what} is {len(value)} characters; the portal allows at most {max_length}"
    return None


def _text(node: yaml.Node, loader: yaml.SafeLoader, what: str, errors: _Errors,
          max_length: int | None = None) -> str | None:
    try:
        value = _scalar(node, loader) if isinstance(node, yaml.ScalarNode) else None
    except _BadValue as exc:
        errors.add(_line(node), f"not valid YAML: {what}: {exc}")
        return None
    if not isinstance(value, str):
        errors.add(_line(node), f"{what} must be text (put it in quotes)")
        return None
    problem = check_text(value, what, max_length)
    if problem:
        errors.add(_line(node), problem)
        return None
    return value


def _check_message(template: str, line: int, what: str, errors: _Errors) -> None:
    # Parsed exactly as str.format reads it when the message is sent: counting braces let
    # "}{" through, and str.format then failed only after the order had been cancelled.
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(template)
                  if name is not None]
    except ValueError:
        errors.add(line, f"{what}: unbalanced braces; write {{{{ or }}}} for a brace itself")
        return
    for name, spec, conv in fields:
        if name not in MESSAGE_PLACEHOLDERS or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            errors.add(line, f"{what}: unknown placeholder {shown}; known: "
                       + ", ".join("{" + p + "}" for p in sorted(MESSAGE_PLACEHOLDERS)))


def parse_job(text: str, profile: Profile, source: str = "<job>") -> Job:
    """Validate job YAML text against the profile; raise JobError listing every problem."""
    errors = _Errors(source)
    problem = yaml_problem(text)
    if problem is not None:
        errors.add(*problem)
        errors.raise_if_any()
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        errors.add(line, f"not valid YAML: {exc.problem or exc}")
        errors.raise_if_any()
        raise AssertionError("unreachable") from exc
    except yaml.YAMLError as exc:
        errors.add(0, f"not valid YAML: {exc}")
        errors.raise_if_any()
        raise AssertionError("unreachable") from exc
    finally:
        loader.dispose()
    if root is None:
        errors.add(1, "the job file is empty; it needs an `orders:` list")
        errors.raise_if_any()
    assert root is not None
    top = _mapping(root, "the job file", errors)
    errors.raise_if_any()
    assert top is not None

    for key, (key_node, _) in top.items():
        if key not in _TOP_KEYS:
            errors.add(_line(key_node), f"unknown key {key!r}; expected one of "
                       + ", ".join(sorted(_TOP_KEYS)))

    account: str | None = None
    if "account" in top:
        account = _text(top["account"][1], loader, "account", errors)
    name = _text(top["name"][1], loader, "name", errors) if "name" in top else None

    defaults: dict[str, str] = {}
    if "defaults" in top:
        dmap = _mapping(top["defaults"][1], "defaults", errors) or {}
        for key, (key_node, value_node) in dmap.items():
            if key not in _DEFAULT_KEYS:
                errors.add(_line(key_node), f"defaults: unknown key {key!r}; expected one of "
                           + ", ".join(sorted(_DEFAULT_KEYS)))
                continue
            limit = profile.note_max_length if key == "note" else 2000
            value = _text(value_node, loader, f"defaults.{key}", errors, limit)
            if value is not None:
                defaults[key] = value
                if key == "reason":
                    code = reason_code(value, profile)
                    if code is None:
                        errors.add(_line(value_node), _unknown_reason(value, profile))
                    else:
                        defaults[key] = code
                if key == "message":
                    _check_message(value, _line(value_node), "defaults.message", errors)

    if "orders" not in top:
        errors.add(_line(root), "missing `orders:` (a list of orders with order_no)")
        errors.raise_if_any()
    orders_node = top["orders"][1]
    if not isinstance(orders_node, yaml.SequenceNode) or not orders_node.value:
        errors.add(_line(orders_node), "`orders:` must be a non-empty list of orders")
        errors.raise_if_any()
    assert isinstance(orders_node, yaml.SequenceNode)

    checker = _OrderChecker(profile, defaults, errors)
    for item in orders_node.value:
        line = _line(item)
        omap = _mapping(item, f"order at line {line}", errors)
        if omap is None:
            continue
        for key, (key_node, _) in omap.items():
            if key not in _ORDER_KEYS:
                errors.add(_line(key_node), f"unknown key {key!r} in an order; expected one of "
                           + ", ".join(sorted(_ORDER_KEYS)))
        if "order_no" not in omap:
            errors.add(line, "order without order_no")
            continue
        no_node = omap["order_no"][1]
        if not isinstance(no_node, yaml.ScalarNode) or not no_node.value:
            errors.add(_line(no_node), "order_no must be a number written as text, "
                       'e.g. "1455953150"')
            continue
        given: dict[str, tuple[str, int]] = {}
        for key in ("reason", "note", "message", "account"):
            if key in omap:
                limit = profile.note_max_length if key == "note" else 2000
                value = _text(omap[key][1], loader, key, errors, limit)
                if value is None:
                    given = {}
                    break
                given[key] = (value, _line(omap[key][1]))
        else:
            # The raw text as written: unquoted numbers keep every digit and leading zero.
            checker.add(no_node.value.strip(), _line(no_node), line, given)
    errors.raise_if_any()
    return Job(source=source, orders=checker.orders, account=account, name=name)


class _OrderChecker:
    """The checks every order gets, whichever file format it came from."""

    def __init__(self, profile: Profile, defaults: dict[str, str], errors: _Errors) -> None:
        self.profile = profile
        self.defaults = defaults
        self.errors = errors
        self.pattern = re.compile(profile.order_no_pattern)
        self.seen: dict[str, int] = {}
        self.orders: list[JobOrder] = []

    def add(self, order_no: str, no_line: int, line: int,
            given: dict[str, tuple[str, int]]) -> None:
        """Check one order (values already checked as text) and keep it when it is fine."""
        profile, errors = self.profile, self.errors
        if not self.pattern.match(order_no):
            errors.add(no_line, f"order_no {order_no!r} is not an order number "
                       f"(expected {profile.order_no_pattern})")
            return
        if order_no in self.seen:
            errors.add(no_line, f"order_no {order_no} is listed twice (first at line "
                       f"{self.seen[order_no]})")
            return
        self.seen[order_no] = no_line
        values = {k: given[k][0] if k in given else self.defaults.get(k)
                  for k in ("reason", "note", "message")}
        if not values["reason"]:
            errors.add(line, f"order {order_no} has no reason and defaults give none")
            return
        reason = reason_code(values["reason"], profile)
        if reason is None:
            if "reason" in given:  # an unknown default was reported where it was read
                errors.add(given["reason"][1], _unknown_reason(values["reason"], profile))
            return
        note = values["note"] or ""
        if reason in profile.note_required_for and not note.strip():
            errors.add(line, f"order {order_no}: reason {reason!r} needs a note")
            return
        message = values["message"]
        if message is not None and not profile.can_message:
            errors.add(given["message"][1] if "message" in given else line,
                       f"order {order_no} asks for a buyer message, but the portal profile "
                       f"({profile.name}) has no 联系买家 (detail.contact_button: null)")
            return
        if message is not None and "message" in given:
            _check_message(message, given["message"][1], "message", errors)
        account = given["account"][0].strip() if "account" in given else None
        self.orders.append(JobOrder(order_no=order_no, reason=reason, note=note,
                                    message=message, line=line, account=account or None))


def reason_code(value: str, profile: Profile) -> str | None:
    """The reason code `value` names, as the code (out_of_stock) or as the profile's option
    text for it (缺货), surrounding whitespace ignored; None when it names no reason."""
    wanted = value.strip()
    if wanted in profile.reasons:
        return wanted
    # Two codes with one option text could not be told apart on the portal either; the
    # first one is taken.
    return next((code for code, label in profile.reasons.items() if label.strip() == wanted),
                None)


def _unknown_reason(value: str, profile: Profile) -> str:
    shown = {code: f"{code} ({label})" for code, label in profile.reasons.items()}
    # Codes and option texts alike, each leading to its code.
    names = {**{label.strip(): code for code, label in profile.reasons.items()},
             **{code: code for code in profile.reasons}}
    # 0.5, not difflib's 0.6: a two-character option text with one character wrong (缺活
    # for 缺货) scores 0.5, and the full list follows a poor guess anyway.
    close = difflib.get_close_matches(value.strip(), list(names), n=3, cutoff=0.5)
    near = list(dict.fromkeys(names[name] for name in close))
    hint = f"did you mean {' or '.join(shown[code] for code in near)}? The" if near else "the"
    return (f"unknown reason {value!r}; {hint} portal profile knows: "
            + ", ".join(shown.values()))


def load_job(path: Path, profile: Profile) -> Job:
    """Read and validate a YAML job file."""
    if path.suffix.lower() in ORDER_LIST_SUFFIXES:
        # Read as YAML, an order list would fail with a puzzling "not UTF-8 text" or
        # "must be a mapping".
        raise JobError(f"{path}: this is an order list, not a job file (.yaml/.yml); give it "
                       f"with --orders: dhbot run --orders {path}")
    return parse_job(_decode(path), profile, source=str(path))

def _decode(path: Path) -> str:
    data = read_regular(path, "job file", MAX_JOB_BYTES, JobError, "; split the job")
    return decode_text(data, path, JobError)


CSV_COLUMNS = ("order_no", "reason", "note")
ORDER_LIST_SUFFIXES = (".csv", ".xlsx")
ORDER_LIST_FORMATS = (".csv (UTF-8, with or without BOM, or GB18030/GBK) or .xlsx (the "
                      "first sheet); job files are .yaml/.yml, given without --orders")
# UTF-8 is tried first and strictly: GB18030 reads almost any bytes, UTF-8 text included
# (as nonsense), while GB18030 text is hardly ever valid UTF-8.
CSV_ENCODINGS = ("utf-8", "gb18030")
# An .xlsx is a zip: a small file may unpack to gigabytes. Far above any real order list.
MAX_XLSX_UNPACKED = 100 * 1024 * 1024
# Excel keeps 15 significant digits of a number; a longer order number typed into a
# number cell has lost its last digits (Excel writes zeros in their place).
EXCEL_DIGITS = 15
_AS_TEXT = "format the order_no column as text (设置单元格格式 → 文本) and enter the numbers again"


@dataclass(frozen=True)
class _Table:
    """What differs between the formats of an order list: the words for where a problem is."""

    row: str  # "line" in a CSV, "row" in a sheet
    extra_cells: str


_CSV = _Table("line", "more cells than columns; put notes with commas in quotes")
_SHEET = _Table("row", "a cell right of the named columns holds a value; name its column in "
                       "the first row or clear it")


def load_csv_job(path: Path, profile: Profile, defaults: dict[str, str] | None = None) -> Job:
    """Read an order list with columns order_no, reason, note: a CSV in UTF-8 (BOM or not)
    or GB18030/GBK, or the first sheet of an .xlsx workbook. Any other file is refused,
    naming the formats that are read."""
    data = read_regular(path, "order list", MAX_JOB_BYTES, JobError, "; split the list")
    suffix = path.suffix.lower()
    errors = _Errors(str(path))
    if suffix == ".csv":
        text, encoding = decode_text_as(data, path, JobError, CSV_ENCODINGS)
        logger.info("{}: order list read as {} text", path, encoding)
        return _table_job(path, _csv_rows(text, errors), _CSV, profile, defaults, errors)
    if suffix == ".xlsx":
        return _table_job(path, _sheet_rows(data, path), _SHEET, profile, defaults, errors)
    what = f"a {suffix} file" if suffix else "a file without an extension"
    hint = "; save it in Excel as .xlsx (Excel 工作簿)" if suffix == ".xls" else ""
    raise JobError(f"{path}: {what} is not read as an order list{hint}. Order lists are "
                   + ORDER_LIST_FORMATS)


def _table_job(path: Path, rows: Iterator[tuple[int, Sequence[object]]], table: _Table,
               profile: Profile, defaults: dict[str, str] | None, errors: _Errors) -> Job:
    """The job of an order list read as rows of cells (the first names the columns),
    each with its line or row number."""
    first = next(rows, None)
    errors.raise_if_any()  # the first line could not be read
    header = [_cell_text(cell).strip() for cell in first[1]] if first else []
    if "order_no" not in header:
        errors.add(1, f"the first {table.row} must name the columns order_no, reason, note")
        errors.raise_if_any()
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        errors.add(1, f"unknown columns {unknown}; expected order_no, reason, note")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        errors.add(1, f"columns named twice: {repeated}; name each column once")
    checker = _OrderChecker(profile, dict(defaults or {}), errors)
    for line, cells in rows:
        if len(cells) > len(header):
            errors.add(line, table.extra_cells)
            continue
        if all(_blank(cell) for cell in cells):
            continue  # blank line, as spreadsheets leave them
        row = dict(zip(header, cells, strict=False))
        order_no, problem = _order_no_cell(row.get("order_no"))
        if problem:
            errors.add(line, problem)
            continue
        given: dict[str, tuple[str, int]] = {}
        ok = True
        for key in ("reason", "note"):
            value = _cell_text(row.get(key)).strip()
            if not value:
                continue
            limit = profile.note_max_length if key == "note" else 2000
            problem = check_text(value, key, limit)
            if problem:
                errors.add(line, problem)
                ok = False
            given[key] = (value, line)
        if ok:
            checker.add(order_no, line, line, given)
    if not checker.orders and not errors.items:
        errors.add(1, "no orders in the file")
    errors.raise_if_any()
    return Job(source=str(path), orders=checker.orders)


def _csv_rows(text: str, errors: _Errors) -> Iterator[tuple[int, Sequence[object]]]:
    """The records of CSV text, each with the line it starts on; a broken record is added
    to `errors` and ends the reading."""
    # strict: an unclosed quote is an error, not a note that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        # The line a record starts on (a quoted note may span lines; the reader's line_num
        # is the line it ends on).
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.add(line, _csv_problem(exc))
            return
        yield line, cells


def _csv_problem(exc: csv.Error) -> str:
    return (f"not valid CSV ({exc}); put a note with commas, quotes or line breaks in double "
            'quotes and write a quote inside it as ""')


def _sheet_rows(data: bytes, path: Path) -> Iterator[tuple[int, Sequence[object]]]:
    """The rows of the first sheet of an .xlsx workbook, each with its row number, without
    the empty cells at their ends."""
    import zipfile

    from openpyxl import load_workbook  # only when a workbook is read: it is slow to import

    not_xlsx = (f"{path}: not an .xlsx workbook that can be read; save it in Excel as "
                "Excel 工作簿 (*.xlsx), without a password")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except zipfile.BadZipFile:
        # An old .xls renamed, or a workbook with a password: neither is a zip.
        raise JobError(not_xlsx) from None
    if unpacked > MAX_XLSX_UNPACKED:
        raise JobError(f"{path}: the workbook unpacks to {unpacked // (1024 * 1024)} MB, more "
                       f"than an order list needs (at most {MAX_XLSX_UNPACKED // (1024 * 1024)}"
                       " MB); split the list")
    try:
        # openpyxl raises whatever its zip and XML layers raise for a damaged file.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise JobError(f"{not_xlsx} ({first_line(exc)})") from None
    try:
        if not workbook.worksheets:
            raise JobError(f"{path}: the workbook has no sheet")
        sheet = workbook.worksheets[0]
        logger.info("{}: order list read from the sheet {!r}", path, sheet.title)
        # The size the file states may be stale (written by other tools): rows past it
        # would be left out without a word, so every row the sheet holds is read.
        sheet.reset_dimensions()
        number = 0
        try:
            # Rows the file leaves out come as empty ones, so counting gives the row number.
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = list(values)
                while cells and _blank(cells[-1]):
                    cells.pop()
                yield number, cells
        except Exception as exc:
            raise JobError(f"{path}:{number + 1}: the sheet cannot be read ({first_line(exc)}); "
                           "save it again in Excel as .xlsx") from None
    finally:
        workbook.close()


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _cell_text(cell: object) -> str:
    """The text of a cell (a CSV's cells are text already; a sheet's may be numbers)."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _order_no_cell(cell: object) -> tuple[str, str | None]:
    """The order number in a cell, kept exactly, or why a number cell cannot be trusted."""
    if isinstance(cell, bool) or not isinstance(cell, int | float):
        return _cell_text(cell).strip(), None
    if isinstance(cell, float) and not cell.is_integer():
        return "", f"order_no {cell!r} is stored as a number that is not whole; {_AS_TEXT}"
    digits = str(int(cell))
    if len(digits.lstrip("-")) > EXCEL_DIGITS:
        return "", (f"order_no {digits} is stored as a number of {len(digits.lstrip('-'))} "
                    f"digits, more than the {EXCEL_DIGITS} Excel keeps exactly; {_AS_TEXT}")
    return digits, None


def single_order_job(order_no: str, reason: str, note: str, profile: Profile) -> Job:
    """A job of one order given on the command line."""
    errors = _Errors("--order")
    given: dict[str, tuple[str, int]] = {"reason": (reason, 0)}
    for key, value in (("reason", reason), ("note", note)):
        problem = check_text(value, key, profile.note_max_length if key == "note" else 2000)
        if problem:
            errors.add(0, problem)
    if note:
        given["note"] = (note, 0)
    checker = _OrderChecker(profile, {}, errors)
    if not errors.items:
        checker.add(order_no.strip(), 0, 0, given)
    errors.raise_if_any()
    return Job(source=f"--order {order_no}", orders=checker.orders)
