"""What a person sees while `dhbot run` works: on a terminal, the progress bar and the log
share one console (warnings print above the bar, never into it) and the run ends with a
link to report.html; off a terminal, one line per order. Real runs against the mock portal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from bot.display import seconds_between
from tests.bot.conftest import Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Escape sequences: CSI (colours, cursor moves, line erase) and OSC (hyperlinks, titles).
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# What rich's progress bar is drawn with (BarColumn, MofNCompleteColumn, TimeElapsedColumn).
BAR = re.compile(r"[━╸╺]|\d+/\d+\s+\d:\d\d:\d\d")
# A log line as the console shows it: time of day, level, message.
LOG_PREFIX = re.compile(r"^\d\d:\d\d:\d\d (WARNING|INFO   |ERROR  ) ")


def screen_lines(raw: bytes) -> list[str]:
    """The terminal output as the lines it was drawn in: split where the cursor returns or
    moves down, escape sequences removed."""
    text = raw.decode("utf-8", errors="replace")
    return [ANSI.sub("", part) for part in re.split(r"\r\n|\r|\n", text)]


def run_on_a_terminal(workspace: Workspace, *args: str, timeout: float = 240
                      ) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as its stdout and stderr, as in a shell window;
    its exit code and every byte it drew."""
    master, slave = pty.openpty()
    env = {**workspace.env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], cwd=workspace.root,
                            env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child's side is closed, everything was read
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks)


def test_warnings_print_above_the_progress_bar_on_a_terminal(workspace: Workspace) -> None:
    portal = workspace.portal
    orders = by_status(portal, "待发货", 10)
    job = workspace.write_job([{"order_no": n} for n in orders], name="nightly.yaml")
    job.write_text("name: 夜间取消\n" + job.read_text(encoding="utf-8"), encoding="utf-8")
    workspace.write_config(retry={"attempts": 6, "backoff_s": 0.1, "backoff_max_s": 0.3})
    # Order pages fail often: the runner logs a retry warning while the bar is drawn.
    portal.set_faults(error_rates={"detail": 0.3})

    code, raw = run_on_a_terminal(workspace, "run", str(job))

    lines = screen_lines(raw)
    assert code in (0, 1), "\n".join(lines[-40:])
    assert any(BAR.search(line) for line in lines), "no progress bar was drawn"
    retries = [line for line in lines if "retry" in line]
    assert retries, "the faults caused no retry warning:\n" + "\n".join(lines[-40:])
    for line in retries:
        assert LOG_PREFIX.match(line), f"a warning does not start its own line: {line!r}"
        assert not BAR.search(line), f"a warning was written into the bar: {line!r}"
    # The job's name is in the start line and in the summary's title.
    assert any(LOG_PREFIX.match(line) and "(夜间取消)" in line for line in lines)
    report = workspace.last_report()
    assert report["name"] == "夜间取消"
    assert any(f"run {report['run_id']} · 夜间取消" in line for line in lines)
    # Outcomes with their Chinese label, and the run ends with a link to report.html.
    assert any("已提交 submitted" in line for line in lines)
    html = workspace.root / "runs" / report["run_id"] / "report.html"
    assert b"\x1b]8;" in raw and html.resolve().as_uri().encode() in raw
    assert [line for line in lines if line.strip()][-1] == f"report: {html}"


def test_off_a_terminal_one_line_per_order_and_failures_keep_their_time(
        workspace: Workspace) -> None:
    portal = workspace.portal
    paid = by_status(portal, "待发货", 2)
    unknown = "9999999999"
    job = workspace.write_job([{"order_no": n} for n in [*paid, unknown]])
    workspace.write_config(retry={"attempts": 2, "backoff_s": 0.2, "backoff_max_s": 0.2})
    portal.set_faults(error_rates={"detail": 1.0})  # every order page fails: retries spent

    proc = workspace.dhbot("run", str(job), check_code=1)

    report = workspace.last_report()
    outcomes = {o["order_no"]: o["outcome"] for o in report["orders"]}
    assert outcomes == {paid[0]: "failed", paid[1]: "failed", unknown: "not_found"}
    output = proc.stdout.splitlines() + proc.stderr.splitlines()
    for order_no in outcomes:
        said = [line for line in proc.stderr.splitlines() if f"order {order_no} ->" in line]
        assert len(said) == 1, said
    assert not [line for line in output if re.match(r"\[\d+/\d+\]", line)], output
    # Off a terminal: plain text, no colour codes, and the path of report.html.
    run_dir = workspace.root / "runs" / report["run_id"]
    assert "\x1b" not in proc.stdout + proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == f"report: {run_dir / 'report.html'}"

    # A failed order carries the time it really took (two attempts and a back-off).
    failed = [o for o in report["orders"] if o["outcome"] == "failed"]
    assert all(o["duration_s"] >= 0.2 for o in failed), failed
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    for o in failed:
        assert cases[o["order_no"]].find("failure") is not None
        assert float(cases[o["order_no"]].get("time") or 0) == pytest.approx(
            o["duration_s"], abs=0.001)
        attached = [p.get("value") for p in cases[o["order_no"]].iterfind(
            "properties/property[@name='attachment']")]
        assert attached == o["artifacts"] and attached
        assert all((run_dir / str(a)).is_file() for a in attached)
    wall = seconds_between(report["started_at"], report["finished_at"])
    assert wall is not None
    assert float(suite.get("time") or 0) == pytest.approx(wall, abs=0.001)
    assert json.loads((run_dir / "report.json").read_text())["name"] is None
