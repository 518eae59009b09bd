#!/usr/bin/env bash
# The test suite against real PostgreSQL and RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/services.sh
deploy/install.sh test
exec .venv/bin/python -m pytest -q "$@"
