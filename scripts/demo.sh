#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the main job: the live demo factory on embedded defaults.
# Without arguments it runs for two minutes; pass your own (e.g. --duration 600 --speed 30).
set -euo pipefail
cd "$(dirname "$0")/.."
FACTORY_TWIN_DEBIAN="${FACTORY_TWIN_DEBIAN:-}" bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
  set -- --duration 120
fi
exec .venv/bin/factory-twin demo "$@"
