#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the main job: the live demo factory on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
FACTORY_TWIN_DEBIAN="${FACTORY_TWIN_DEBIAN:-}" bash scripts/setup.sh
exec .venv/bin/factory-twin demo "$@"
