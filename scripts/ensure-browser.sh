#!/usr/bin/env bash
# Make sure a Chromium is there for Playwright: one already found (Playwright's own,
# /usr/bin/chromium, chromium, google-chrome) is kept; otherwise Debian's `chromium`
# through apt-get where apt is usable, else Playwright's own download. Where apt is usable,
# Debian's `chromium-headless-shell` goes beside it: headless runs prefer that lighter
# browser (headed runs, `dhbot login --headed`, keep the full one).
set -euo pipefail
PY=${1:-.venv/bin/python}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
apt_ok() { command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || $SUDO true 2>/dev/null; }; }

# Chinese text in screenshots and reports needs a CJK font (best effort).
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ] && apt_ok; then
  echo "fonts: installing a Chinese font (fonts-wqy-zenhei) for screenshots"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      $SUDO apt-get install -y -qq fonts-wqy-zenhei >/dev/null; } || echo "fonts: not installed"
fi

own=$("$PY" -c 'from bot.browser import playwright_chromium; print(playwright_chromium() or "")')
if [ -z "$own" ] && ! command -v chromium-headless-shell >/dev/null 2>&1 && apt_ok; then
  echo "browser: installing Debian's chromium-headless-shell for headless runs"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      $SUDO apt-get install -y -qq chromium-headless-shell >/dev/null; } \
    || echo "browser: chromium-headless-shell not installed; headless runs use chromium"
fi

# The full browser (headed runs need it); the headless one is said as well.
found=$("$PY" -c 'from bot.browser import find_chromium, playwright_chromium; print(find_chromium(headless=False) or playwright_chromium() or "")')
headless=$("$PY" -c 'from bot.browser import find_chromium, playwright_chromium; print(find_chromium() or playwright_chromium() or "")')
if [ -n "$found" ]; then
  echo "browser: $found (headless runs: $headless)"
  exit 0
fi

if apt_ok; then
  echo "browser: none found; installing Debian's chromium with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
else
  echo "browser: none found and apt-get is not usable; trying Playwright's own download"
  "$PY" -m playwright install chromium
fi

found=$("$PY" -c 'from bot.browser import find_chromium, playwright_chromium; print(find_chromium(headless=False) or playwright_chromium() or "")')
if [ -z "$found" ]; then
  echo "browser: still no Chromium. Install one (apt-get install chromium, or" >&2
  echo "  .venv/bin/python -m playwright install chromium) or set browser.executable_path." >&2
  exit 1
fi
echo "browser: $found"
