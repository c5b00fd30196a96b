#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite. Integration tests start their own
# mosquitto, VictoriaMetrics and asyncua servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
