"""Job files: what an operator sees for every kind of bad input, and what good input becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import JobError
from bot.job import MAX_JOB_BYTES, Job, load_csv_job, load_job, parse_job, single_order_job
from flows.profile import Profile, load_profile

OK_ORDER = "  - {order_no: 1455953150, reason: out_of_stock}\n"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile("mock")


def parse(text: str, profile: Profile) -> Job:
    return parse_job(text, profile, source="job.yaml")


def problems(text: str, profile: Profile) -> list[str]:
    """The problem lines of the rejection, without the heading."""
    with pytest.raises(JobError) as info:
        parse(text, profile)
    head, *lines = str(info.value).splitlines()
    assert head.startswith("job rejected (") and head.endswith("nothing was done:")
    assert f"({len(lines)} problem" in head
    return [line.strip() for line in lines]


def only_problem(text: str, profile: Profile) -> str:
    found = problems(text, profile)
    assert len(found) == 1, found
    return found[0]


# -- YAML structure ------------------------------------------------------------------------


def test_bad_yaml_names_the_line_of_the_syntax_error(profile: Profile) -> None:
    text = "defaults:\n  reason: out_of_stock\norders:\n  - order_no: 1455953150\n   note: x\n"
    problem = only_problem(text, profile)
    assert problem.startswith("job.yaml:5: not valid YAML")


def test_unclosed_bracket(profile: Profile) -> None:
    problem = only_problem("orders: [\n  {order_no: 1455953150, reason: out_of_stock}\n", profile)
    assert problem.startswith("job.yaml:3: not valid YAML")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file(profile: Profile, text: str) -> None:
    assert only_problem(text, profile) == (
        "job.yaml:1: the job file is empty; it needs an `orders:` list")


def test_top_level_not_a_mapping(profile: Profile) -> None:
    assert only_problem("- 1455953150\n- 1455953151\n", profile) == (
        "job.yaml:1: the job file must be a mapping of keys to values")


def test_unknown_top_level_key(profile: Profile) -> None:
    problem = only_problem("orders:\n" + OK_ORDER + "dafaults:\n  reason: other\n", profile)
    assert problem == ("job.yaml:3: unknown key 'dafaults'; expected one of account, defaults, "
                       "name, orders")


def test_unknown_order_key(profile: Profile) -> None:
    text = "orders:\n  - order_no: 1455953150\n    reason: out_of_stock\n    nots: x\n"
    problem = only_problem(text, profile)
    assert problem.startswith("job.yaml:4: unknown key 'nots' in an order; expected one of")


def test_unknown_defaults_key(profile: Profile) -> None:
    text = "defaults:\n  reason: out_of_stock\n  reson: other\norders:\n" + OK_ORDER
    assert only_problem(text, profile) == (
        "job.yaml:3: defaults: unknown key 'reson'; expected one of message, note, reason")


def test_missing_orders(profile: Profile) -> None:
    problem = only_problem("defaults:\n  reason: out_of_stock\n", profile)
    assert problem.startswith("job.yaml:1: missing `orders:`")


@pytest.mark.parametrize("value", ["", " []", " {}"])
def test_empty_orders(profile: Profile, value: str) -> None:
    problem = only_problem(f"orders:{value}\n", profile)
    assert problem.endswith("`orders:` must be a non-empty list of orders")


def test_order_without_order_no(profile: Profile) -> None:
    text = "orders:\n" + OK_ORDER + "  - reason: out_of_stock\n"
    assert only_problem(text, profile) == "job.yaml:3: order without order_no"


@pytest.mark.parametrize("value", ["14559531x0", "'１４５５９５３１５０'", "12345", "1.4e9",
                                   "1_455_953_150", "0x1455953", "+1455953150", "1455953150.0"])
def test_order_no_not_digits(profile: Profile, value: str) -> None:
    problem = only_problem(f"orders:\n  - order_no: {value}\n    reason: out_of_stock\n",
                           profile)
    assert problem.startswith("job.yaml:2: order_no ")
    assert "is not an order number" in problem


@pytest.mark.parametrize("value", ["[1455953150]", "{a: 1}", "", "''"])
def test_order_no_not_a_scalar_or_empty(profile: Profile, value: str) -> None:
    problem = only_problem(f"orders:\n  - reason: out_of_stock\n    order_no: {value}\n",
                           profile)
    assert problem == 'job.yaml:3: order_no must be a number written as text, e.g. "1455953150"'


def test_duplicate_order_no_mentions_the_first_line(profile: Profile) -> None:
    text = ("defaults:\n  reason: out_of_stock\norders:\n  - order_no: 1455953150\n"
            "  - order_no: 1455953151\n  - order_no: '1455953150'\n")
    assert only_problem(text, profile) == (
        "job.yaml:6: order_no 1455953150 is listed twice (first at line 4)")


def test_duplicate_key_in_an_order(profile: Profile) -> None:
    text = "orders:\n  - order_no: 1455953150\n    reason: out_of_stock\n    reason: other\n"
    assert only_problem(text, profile) == "job.yaml:4: order at line 2: key 'reason' appears twice"


def test_duplicate_top_level_key(profile: Profile) -> None:
    text = "orders:\n" + OK_ORDER + "orders:\n  - {order_no: 1455953151, reason: other}\n"
    assert only_problem(text, profile) == "job.yaml:3: the job file: key 'orders' appears twice"


# -- reasons, notes, messages --------------------------------------------------------------


def test_unknown_reason_lists_the_known_ones(profile: Profile) -> None:
    text = "orders:\n  - order_no: 1455953150\n    reason: sold_out\n"
    problem = only_problem(text, profile)
    assert problem.startswith("job.yaml:3: unknown reason 'sold_out'")
    for code, label in profile.reasons.items():
        assert f"{code} ({label})" in problem


@pytest.mark.parametrize("given", ["缺货", " 缺货 ", "out_of_stock ", "\u3000缺货"])
def test_reason_as_the_portal_option_text_becomes_its_code(profile: Profile,
                                                           given: str) -> None:
    job = parse(f"orders:\n  - order_no: 1455953150\n    reason: '{given}'\n", profile)
    assert [o.reason for o in job.orders] == ["out_of_stock"]


def test_reason_label_in_defaults_becomes_its_code(profile: Profile) -> None:
    # 其他 needs a note: the rule is checked on the code the label names.
    text = ("defaults:\n  reason: 其他\norders:\n  - order_no: 1455953150\n    note: 见附件\n"
            "  - order_no: 1455953151\n    reason: 价格设置错误\n")
    job = parse(text, profile)
    assert [(o.reason, o.note) for o in job.orders] == [("other", "见附件"),
                                                        ("price_error", "")]
    assert only_problem("defaults:\n  reason: 其他\norders:\n  - order_no: 1455953150\n",
                        profile) == "job.yaml:4: order 1455953150: reason 'other' needs a note"


@pytest.mark.parametrize(("given", "meant"), [
    ("out_of_stok", "out_of_stock (缺货)"),
    ("价格错误", "price_error (价格设置错误)"),
    ("买家要求", "buyer_request (买家要求取消)"),
])
def test_near_miss_reason_suggests_the_code_meant(profile: Profile, given: str,
                                                  meant: str) -> None:
    problem = only_problem(f"orders:\n  - order_no: 1455953150\n    reason: {given}\n", profile)
    assert problem.startswith(f"job.yaml:3: unknown reason '{given}'; did you mean {meant}? "
                              "The portal profile knows: out_of_stock (缺货), ")


def test_far_off_reason_lists_the_codes_without_a_guess(profile: Profile) -> None:
    problem = only_problem("orders:\n  - order_no: 1455953150\n    reason: xyz\n", profile)
    assert problem == ("job.yaml:3: unknown reason 'xyz'; the portal profile knows: "
                       + ", ".join(f"{c} ({label})" for c, label in profile.reasons.items()))


def test_reason_for_one_order_may_be_the_option_text(profile: Profile) -> None:
    job = single_order_job("1455953156", "买家要求取消", "", profile)
    assert [o.reason for o in job.orders] == ["buyer_request"]


def test_unknown_reason_in_defaults(profile: Profile) -> None:
    problem = only_problem("defaults:\n  reason: sold_out\norders:\n  - order_no: 1455953150\n",
                           profile)
    assert problem.startswith("job.yaml:2: unknown reason 'sold_out'")


def test_order_with_no_reason_anywhere(profile: Profile) -> None:
    assert only_problem("orders:\n  - order_no: 1455953150\n", profile) == (
        "job.yaml:2: order 1455953150 has no reason and defaults give none")


@pytest.mark.parametrize("note", ["", "    note: ''\n", "    note: '   '\n"])
def test_reason_other_needs_a_note(profile: Profile, note: str) -> None:
    text = "orders:\n  - order_no: 1455953150\n    reason: other\n" + note
    assert only_problem(text, profile) == (
        "job.yaml:2: order 1455953150: reason 'other' needs a note")


def test_note_over_the_portal_limit(profile: Profile) -> None:
    text = f"orders:\n  - order_no: 1455953150\n    reason: other\n    note: {'x' * 501}\n"
    assert only_problem(text, profile) == (
        "job.yaml:4: note is 501 characters; the portal allows at most 500")


def test_note_at_the_limit_in_chinese_passes(profile: Profile) -> None:
    note = "缺" * 500
    job = parse(f"orders:\n  - order_no: 1455953150\n    reason: other\n    note: {note}\n",
                profile)
    assert job.orders[0].note == note


@pytest.mark.parametrize("escaped", ["\\x07", "\\r", "\\0", "\\u200b", "\\x1b[31m"])
def test_control_characters_in_a_note(profile: Profile, escaped: str) -> None:
    text = f'orders:\n  - order_no: 1455953150\n    reason: other\n    note: "a{escaped}b"\n'
    assert only_problem(text, profile) == (
        "job.yaml:4: note contains control characters; write plain text")


def test_tabs_and_newlines_are_allowed_in_a_note(profile: Profile) -> None:
    text = 'orders:\n  - order_no: 1455953150\n    reason: other\n    note: "a\\tb\\nc"\n'
    assert parse(text, profile).orders[0].note == "a\tb\nc"


@pytest.mark.parametrize("note", ["<script>alert(1)</script>", "<b>缺货</b>", "1 &lt; 2",
                                  "&#60;b&#62;", "< img src=x>"])
def test_html_in_a_note_is_refused(profile: Profile, note: str) -> None:
    text = f"orders:\n  - order_no: 1455953150\n    reason: other\n    note: '{note}'\n"
    problem = only_problem(text, profile)
    assert problem.startswith("job.yaml:4: note looks like HTML or script")
    assert "plain text" in problem


def test_a_lone_less_than_sign_is_plain_text(profile: Profile) -> None:
    text = "orders:\n  - order_no: 1455953150\n    reason: other\n    note: 'a < 3 days & more'\n"
    assert parse(text, profile).orders[0].note == "a < 3 days & more"


@pytest.mark.parametrize("value", ["[a, b]", "5", "true", "2024-01-01", "{a: 1}", "null"])
def test_note_of_the_wrong_type(profile: Profile, value: str) -> None:
    text = f"orders:\n  - order_no: 1455953150\n    reason: other\n    note: {value}\n"
    assert only_problem(text, profile) == "job.yaml:4: note must be text (put it in quotes)"


@pytest.mark.parametrize("template", ["{buyer} hello", "{0}", "{order_no!r}", "{note:>9}",
                                      "{}", "{order_no.real}"])
def test_message_with_an_unknown_placeholder(profile: Profile, template: str) -> None:
    text = ("orders:\n  - order_no: 1455953150\n    reason: out_of_stock\n"
            f"    message: '{template}'\n")
    problem = only_problem(text, profile)
    assert problem.startswith("job.yaml:4: message: unknown placeholder {")
    assert "known: {note}, {order_no}, {reason}, {reason_label}" in problem


@pytest.mark.parametrize("template",
                         ["订单 {order_no", "订单 }{order_no}", "a }{ b", "{{order_no}"])
def test_message_with_unbalanced_braces(profile: Profile, template: str) -> None:
    text = f"defaults:\n  message: '{template}'\norders:\n" + OK_ORDER
    assert only_problem(text, profile).startswith(
        "job.yaml:2: defaults.message: unbalanced braces")


def test_accepted_message_renders_as_the_runner_sends_it(profile: Profile) -> None:
    template = "您好，订单 {order_no} 因{reason_label}取消：{note} {{谢谢}}"
    job = parse(f"defaults:\n  message: '{template}'\n  note: 缺货\norders:\n" + OK_ORDER,
                profile)
    order = job.orders[0]
    assert order.message == template
    assert order.message.format(order_no=order.order_no, reason=order.reason,
                                reason_label=profile.reason_label(order.reason),
                                note=order.note) == (
        "您好，订单 1455953150 因缺货取消：缺货 {谢谢}")


def test_all_problems_are_listed_together_in_line_order(profile: Profile) -> None:
    text = ("bogus: 1\n"                                    # 1
            "defaults:\n"                                   # 2
            "  reason: out_of_stock\n"                      # 3
            "orders:\n"                                     # 4
            "  - order_no: 1455953150\n"                    # 5
            "    note: '<b>x</b>'\n"                        # 6
            "  - order_no: abc\n"                           # 7
            "  - order_no: 1455953151\n"                    # 8
            "    reason: nope\n"                            # 9
            "  - order_no: 1455953152\n"                    # 10
            "  - order_no: 1455953152\n"                    # 11
            "  - order_no: 1455953153\n"                    # 12
            "    reason: other\n")                          # 13
    found = problems(text, profile)
    assert [p.split(":")[1] for p in found] == ["1", "6", "7", "9", "11", "12"]
    assert "unknown key 'bogus'" in found[0]
    assert "HTML" in found[1]
    assert "'abc' is not an order number" in found[2]
    assert "unknown reason 'nope'" in found[3]
    assert "listed twice (first at line 10)" in found[4]
    assert "needs a note" in found[5]


# -- order numbers as written --------------------------------------------------------------


def test_unquoted_numbers_keep_every_digit_and_leading_zeros(profile: Profile) -> None:
    text = ("defaults:\n  reason: out_of_stock\norders:\n  - order_no: 0145595315\n"
            "  - order_no: 1455953150\n  - order_no: 00000000000000000000012\n"
            "  - order_no: '07770001'\n")
    job = parse(text, profile)
    assert [o.order_no for o in job.orders] == [
        "0145595315", "1455953150", "00000000000000000000012", "07770001"]
    assert all(isinstance(o.order_no, str) for o in job.orders)
    assert [o.line for o in job.orders] == [4, 5, 6, 7]


def test_float_looking_order_no_is_refused(profile: Profile) -> None:
    problem = only_problem("orders:\n  - order_no: 1.4e9\n    reason: out_of_stock\n", profile)
    assert problem.startswith("job.yaml:2: order_no '1.4e9' is not an order number")


# -- defaults ------------------------------------------------------------------------------


def test_per_order_values_override_defaults(profile: Profile) -> None:
    text = ("account: main\nname: 断货清单\n"
            "defaults:\n  reason: out_of_stock\n  note: 仓库断货，无法按时发货\n"
            "orders:\n"
            "  - order_no: 1455953150\n"
            "  - order_no: 1455953151\n    reason: price_error\n"
            "  - order_no: 1455953152\n    note: 买家同意取消，谢谢！😊\n"
            "  - order_no: 1455953153\n    reason: other\n    note: 其他原因：地址无法送达\n")
    job = parse(text, profile)
    assert job.account == "main" and job.name == "断货清单"
    assert [(o.order_no, o.reason, o.note) for o in job.orders] == [
        ("1455953150", "out_of_stock", "仓库断货，无法按时发货"),
        ("1455953151", "price_error", "仓库断货，无法按时发货"),
        ("1455953152", "out_of_stock", "买家同意取消，谢谢！😊"),
        ("1455953153", "other", "其他原因：地址无法送达"),
    ]


def test_defaults_reason_other_with_a_default_note(profile: Profile) -> None:
    job = parse("defaults:\n  reason: other\n  note: 见附件\norders:\n  - order_no: 1455953150\n",
                profile)
    assert (job.orders[0].reason, job.orders[0].note) == ("other", "见附件")


# -- files on disk -------------------------------------------------------------------------


def test_load_job_names_the_file(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("orders:\n  - order_no: 1455953150\n    reason: sold_out\n", encoding="utf-8")
    with pytest.raises(JobError) as info:
        load_job(path, profile)
    assert f"{path}:3: unknown reason 'sold_out'" in str(info.value)


def test_utf8_with_bom_is_accepted(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes("\ufeffdefaults:\n  reason: out_of_stock\n  note: 缺货\norders:\n"
                     "  - order_no: 0145595315\n".encode())
    job = load_job(path, profile)
    assert [(o.order_no, o.note, o.line) for o in job.orders] == [("0145595315", "缺货", 5)]


def test_non_utf8_file_names_the_line_of_the_bad_byte(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes("defaults:\n  reason: out_of_stock\norders:\n  - order_no: 1455953150\n"
                     "    note: 仓库断货\n".encode("gbk"))
    with pytest.raises(JobError) as info:
        load_job(path, profile)
    message = str(info.value)
    assert message.startswith(f"{path}:5: not UTF-8 text")
    assert "save the file as UTF-8" in message


def test_huge_file_is_refused_without_reading_it(tmp_path: Path, profile: Profile,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "job.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_JOB_BYTES + 1)  # sparse: cheap to make

    def no_reading(self: Path, *args: object, **kwargs: object) -> object:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    monkeypatch.setattr(Path, "read_text", no_reading)
    monkeypatch.setattr(Path, "open", no_reading)
    with pytest.raises(JobError) as info:
        load_job(path, profile)
    message = str(info.value)
    assert message.startswith(f"{path}: {MAX_JOB_BYTES + 1} bytes is too large")
    assert "at most 5 MB" in message and "split the job" in message


def test_missing_job_file(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(JobError) as info:
        load_job(path, profile)
    assert str(info.value).startswith(f"{path}: cannot read the job file")


# -- CSV -----------------------------------------------------------------------------------


def csv_file(tmp_path: Path, text: str, bom: bool = False) -> Path:
    path = tmp_path / "orders.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def csv_problems(path: Path, profile: Profile) -> list[str]:
    with pytest.raises(JobError) as info:
        load_csv_job(path, profile)
    return [line.strip() for line in str(info.value).splitlines()[1:]]


@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_and_without_bom(tmp_path: Path, profile: Profile, bom: bool) -> None:
    # Excel's "CSV UTF-8" puts a BOM before the first header and ends lines with CRLF.
    path = csv_file(tmp_path, "order_no,reason,note\r\n0145595315,out_of_stock,仓库断货\r\n"
                              "1455953150,price_error,\r\n", bom=bom)
    job = load_csv_job(path, profile)
    assert [(o.order_no, o.reason, o.note, o.line) for o in job.orders] == [
        ("0145595315", "out_of_stock", "仓库断货", 2),
        ("1455953150", "price_error", "", 3),
    ]
    assert job.source == str(path)


def test_csv_quoted_notes_with_commas_newlines_and_blank_lines(tmp_path: Path,
                                                               profile: Profile) -> None:
    path = csv_file(tmp_path, 'order_no,reason,note\n'
                              '1455953150,other,"缺货, 已通知买家\n第二行 ""引号"""\n'
                              '\n'
                              ',,\n'
                              '1455953151,out_of_stock,x\n', bom=True)
    job = load_csv_job(path, profile)
    assert [(o.order_no, o.note, o.line) for o in job.orders] == [
        ("1455953150", '缺货, 已通知买家\n第二行 "引号"', 2),
        ("1455953151", "x", 6),
    ]


def test_csv_duplicate_after_a_multiline_note_names_the_lines(tmp_path: Path,
                                                              profile: Profile) -> None:
    path = csv_file(tmp_path, 'order_no,reason,note\n'
                              '1455953150,other,"第一行\n第二行"\n'
                              '1455953150,out_of_stock,x\n')
    assert csv_problems(path, profile) == [
        f"{path}:4: order_no 1455953150 is listed twice (first at line 2)"]


def test_csv_unknown_column(tmp_path: Path, profile: Profile) -> None:
    path = csv_file(tmp_path, "order_no,reason,note,buyer\n1455953150,out_of_stock,x,张三\n")
    assert csv_problems(path, profile) == [
        f"{path}:1: unknown columns ['buyer']; expected order_no, reason, note"]


def test_csv_column_named_twice(tmp_path: Path, profile: Profile) -> None:
    path = csv_file(tmp_path, "order_no,reason,order_no\n1455953150,out_of_stock,1455953151\n")
    assert f"{path}:1: columns named twice: ['order_no']" in csv_problems(path, profile)[0]


@pytest.mark.parametrize("header", ["订单号,reason,note", "order;reason;note", ""])
def test_csv_missing_order_no_column(tmp_path: Path, profile: Profile, header: str) -> None:
    path = csv_file(tmp_path, f"{header}\n1455953150,out_of_stock,x\n")
    assert csv_problems(path, profile) == [
        f"{path}:1: the first line must name the columns order_no, reason, note"]


def test_csv_extra_cells(tmp_path: Path, profile: Profile) -> None:
    path = csv_file(tmp_path, "order_no,reason,note\n1455953150,out_of_stock,x\n"
                              "1455953151,out_of_stock,缺货, 已通知\n")
    assert csv_problems(path, profile) == [
        f"{path}:3: more cells than columns; put notes with commas in quotes"]


def test_csv_unclosed_quote_does_not_swallow_later_orders(tmp_path: Path,
                                                          profile: Profile) -> None:
    path = csv_file(tmp_path, 'order_no,reason,note\n1455953150,out_of_stock,"缺货\n'
                              "1455953151,out_of_stock,x\n1455953152,out_of_stock,y\n")
    found = csv_problems(path, profile)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:2: not valid CSV")


def test_csv_lists_every_problem_with_its_line(tmp_path: Path, profile: Profile) -> None:
    path = csv_file(tmp_path, "order_no,reason,note\n"
                              "1455953150,out_of_stock,x\n"
                              "1455953151,sold_out,x\n"
                              "1455953150,out_of_stock,x\n"
                              "1.45595315E+09,out_of_stock,x\n"
                              "1455953152,other,\n"
                              "1455953153,out_of_stock,<b>x</b>\n")
    found = csv_problems(path, profile)
    assert [p.removeprefix(f"{path}:").split(":")[0] for p in found] == [
        "3", "4", "5", "6", "7"]
    assert "unknown reason 'sold_out'" in found[0]
    assert "listed twice (first at line 2)" in found[1]
    assert "'1.45595315E+09' is not an order number" in found[2]
    assert "reason 'other' needs a note" in found[3]
    assert "looks like HTML" in found[4]


def test_csv_with_only_a_header(tmp_path: Path, profile: Profile) -> None:
    path = csv_file(tmp_path, "order_no,reason,note\n\n")
    assert csv_problems(path, profile) == [f"{path}:1: no orders in the file"]


def test_csv_neither_utf8_nor_gb18030_names_the_line_and_the_encodings(
        tmp_path: Path, profile: Profile) -> None:
    # 0xFF starts no character in UTF-8 or GB18030 (a GBK CSV is read: test_order_lists.py).
    path = tmp_path / "orders.csv"
    path.write_bytes("order_no,reason,note\n1455953150,out_of_stock,缺货\n".encode("gbk")
                     + b"1455953151,out_of_stock,\xff\n")
    with pytest.raises(JobError) as info:
        load_csv_job(path, profile)
    assert str(info.value) == (f"{path}:3: not UTF-8 or GB18030 text (byte 74); save the file "
                               "as UTF-8 or GB18030")


def test_csv_with_a_utf8_bom_and_a_bad_byte_is_not_read_as_gb18030(tmp_path: Path,
                                                                   profile: Profile) -> None:
    # The BOM says UTF-8: read as GB18030 the header would turn into nonsense.
    path = tmp_path / "orders.csv"
    path.write_bytes(b"\xef\xbb\xbforder_no,reason,note\n1455953150,out_of_stock,\xb6\xcf\n")
    with pytest.raises(JobError) as info:
        load_csv_job(path, profile)
    assert str(info.value) == (f"{path}:2: not UTF-8 text (byte 48); save the file as UTF-8 "
                               "or GB18030")


# -- one order from the command line -------------------------------------------------------


def test_single_order_job(profile: Profile) -> None:
    job = single_order_job(" 0145595315 ", "other", "买家要求", profile)
    assert [(o.order_no, o.reason, o.note) for o in job.orders] == [
        ("0145595315", "other", "买家要求")]


@pytest.mark.parametrize(("order_no", "reason", "note", "expected"), [
    ("abc", "out_of_stock", "", "order_no 'abc' is not an order number"),
    ("1455953156", "sold_out", "", "unknown reason 'sold_out'"),
    ("1455953156", "other", "", "reason 'other' needs a note"),
    ("1455953156", "out_of_stock", "<script>x</script>", "looks like HTML"),
    ("1455953156", "out_of_stock", "x" * 501, "the portal allows at most 500"),
])
def test_single_order_job_refusals(profile: Profile, order_no: str, reason: str, note: str,
                                   expected: str) -> None:
    with pytest.raises(JobError) as info:
        single_order_job(order_no, reason, note, profile)
    assert expected in str(info.value)


def test_orders_may_name_their_accounts(profile: Profile) -> None:
    job = parse_job(
        "account: main\ndefaults:\n  reason: out_of_stock\norders:\n"
        "  - order_no: '1455953150'\n  - order_no: '1455953151'\n    account: b\n"
        "  - order_no: '1455953152'\n", profile)
    assert [o.account for o in job.orders] == [None, "b", None]
    assert job.accounts() == ["main", "b"]
    assert {k: [o.order_no for o in v] for k, v in job.split().items()} == {
        "main": ["1455953150", "1455953152"], "b": ["1455953151"]}


def test_order_account_must_be_text(profile: Profile) -> None:
    with pytest.raises(JobError, match=r":5: account must be text"):
        parse_job("defaults:\n  reason: out_of_stock\norders:\n"
                  "  - order_no: '1455953150'\n    account: [a]\n", profile)
