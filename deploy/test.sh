#!/usr/bin/env bash
# The test suite against real PostgreSQL and RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/services.sh
# The console's end-to-end test drives Debian's Chromium (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  echo "installing chromium from the distribution's packages (console tests)" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
deploy/install.sh test
# The suite runs the compiled matching path a deployed hub runs (hub/native.py):
# wherever it can be compiled, a build that failed fails the suite.
if [ "${HUB_NATIVE:-1}" != 0 ]; then
  if .venv/bin/hub native check 2>/dev/null; then
    export HUB_NATIVE_REQUIRED=1
  else
    echo "test.sh: the suite runs the matching path as Python:" \
         "$(.venv/bin/hub native check 2>&1)" >&2
  fi
fi
# Two test processes (pytest-xdist): most tests wait on a hub subprocess, the broker
# or PostgreSQL, and one process left the two cores half idle (16 minutes, 9.5 with
# two). Every test has its own database and vhost, so they do not collide.
# HUB_TEST_PROCESSES=0 runs them in this process.
exec .venv/bin/python -m pytest -q -n "${HUB_TEST_PROCESSES:-2}" "$@"
