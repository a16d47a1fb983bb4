"""`make demo`: start the bundled mock portal, run the demo job against it, print the result."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
# The mock portal's published demo account; a real account's password never goes in a file.
DEMO_PASSWORD = "demo-pass"


def main() -> int:
    """Run the demo; returns dhbot's exit status."""
    shutil.rmtree(DEMO / ".state", ignore_errors=True)
    portal = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "--host", "127.0.0.1", "--port", "0",
         "--seed", "42", "--orders", "200"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert portal.stdout is not None
        url = ""
        for line in portal.stdout:
            print(line.rstrip())
            if line.startswith("mock portal running at "):
                url = line.split(" at ", 1)[1].strip()
            if line.startswith("demo credentials"):
                break
        if not url:
            print("the mock portal did not start", file=sys.stderr)
            return 1
        env = {**os.environ, "DHBOT_PASSWORD_MAIN": DEMO_PASSWORD}
        print(f"\n$ dhbot run demo/job.yaml --config demo/config.yaml --base-url {url}\n")
        code = subprocess.call(
            [sys.executable, "-m", "bot.cli", "run", str(DEMO / "job.yaml"),
             "--config", str(DEMO / "config.yaml"), "--base-url", url], cwd=ROOT, env=env)
        print(f"\ndhbot exited with {code}. The portal's cancellation log now holds:")
        import httpx

        for req in httpx.get(url + "__admin/cancel-requests").json():
            print(f"  {req['order_no']}  {req['reason']}  {req['note']}  "
                  f"accepted={req['accepted']}")
        print("\nReports are under demo/runs/. To explore the portal yourself:\n"
              "  .venv/bin/python -m mock_portal --port 8000   # then open "
              "http://127.0.0.1:8000/ (demo_seller / demo-pass)")
        return code
    finally:
        os.killpg(portal.pid, signal.SIGTERM)
        portal.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
