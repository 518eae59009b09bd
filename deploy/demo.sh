#!/usr/bin/env bash
# The main job on one machine: services up, hub installed, `hub demo` on a generated feed.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/services.sh
deploy/install.sh
exec .venv/bin/hub demo "$@"
