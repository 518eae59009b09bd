#!/usr/bin/env bash
# Create .venv and install the hub (with test tools when given "test"), at the
# versions in deploy/constraints.txt (HUB_UNPINNED=1: the newest pyproject allows).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extra="[native]"
[ "${1:-}" = "test" ] && extra="[native,test]"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${HUB_UNPINNED:-}" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".${extra}"
elif ! .venv/bin/python -m pip install -q -c deploy/constraints.txt -e ".${extra}"; then
  # A Python newer than the pinned wheels support: the ranges still hold.
  echo "install.sh: the pinned versions do not install on $(.venv/bin/python -V);" \
       "installing the newest that pyproject.toml allows (untested)" >&2
  .venv/bin/python -m pip install -q -e ".${extra}"
fi
# The matching path compiled with mypyc (hub/native.py): about a quarter less CPU an
# update. Without a C compiler the hub runs as Python (HUB_NATIVE=0: do not compile).
if [ "${HUB_NATIVE:-1}" != 0 ]; then
  if ! .venv/bin/hub native check 2>/dev/null && [ "${HUB_INSTALL_COMPILER:-1}" = 1 ]; then
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq gcc python3-dev >/dev/null || true
  fi
  .venv/bin/hub native build || true
fi
