#!/usr/bin/env bash
# Make sure redis-server and a PostgreSQL server (postgres + initdb) are installed for the
# distributed tests; missing ones are installed from Debian's packages with apt-get.
# The tests start their own private instances on free ports, so any system service the
# packages' postinst scripts start is stopped again. Quiet when nothing is needed.
set -euo pipefail

have_redis() { command -v redis-server >/dev/null 2>&1; }
have_postgres() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/postgres" ] && [ -x "$dir/initdb" ] && return 0
  done
  return 1
}

packages=()
services=()
have_redis || { packages+=(redis-server); services+=(redis-server); }
have_postgres || { packages+=(postgresql); services+=(postgresql); }
[ ${#packages[@]} -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "services: need ${packages[*]} but not root and no sudo; install them as root" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "services: need ${packages[*]} but apt-get is not available; install them by hand" >&2
  exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/ensure-services.XXXXXX")
trap 'rm -f "$log"' EXIT
install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${packages[@]}" >>"$log" 2>&1
}

# The package lists are refreshed only when the install fails without it.
updated=""
if ! install; then
  updated=" (after apt-get update)"
  if ! { "${SUDO[@]}" apt-get update -q >>"$log" 2>&1 && install; }; then
    echo "services: installing ${packages[*]} with apt-get failed:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
fi

# The services were not there before, so whatever runs now was started by the postinst.
stopped=()
if command -v service >/dev/null 2>&1; then
  for svc in "${services[@]}"; do
    if "${SUDO[@]}" service "$svc" status >/dev/null 2>&1; then
      stopped+=("$svc")
    fi
    "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
  done
fi

if ! have_redis || ! have_postgres; then
  echo "services: installed ${packages[*]} but redis-server or postgres/initdb is still missing" >&2
  exit 1
fi
msg="services: installed ${packages[*]}$updated"
[ ${#stopped[@]} -eq 0 ] || msg+="; stopped the system service(s) ${stopped[*]} it started"
echo "$msg"
