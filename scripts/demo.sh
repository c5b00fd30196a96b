#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the main job: the live demo factory on embedded defaults.
# Without arguments it runs for two minutes; pass your own (e.g. --duration 600 --speed 30).
# The simulated PLC listens on opc.tcp://127.0.0.1:4840 and the embedded broker on mqtt://127.0.0.1:1883
# (printed at start; configs/mapping_demo_*.yaml name them); a port already taken stops it with one line
# and exit 2: pick others with --plc-port / --broker-port (0: any free port).
set -euo pipefail
cd "$(dirname "$0")/.."
FACTORY_TWIN_DEBIAN="${FACTORY_TWIN_DEBIAN:-}" bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
  set -- --duration 120
fi
exec .venv/bin/factory-twin demo "$@"
