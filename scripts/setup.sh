#!/usr/bin/env bash
# Sets up what factory-twin needs, idempotently: the Debian packages its integration tests and
# reports use (only when run as root, e.g. in CI or a container; otherwise it says what is missing)
# and a local virtualenv in .venv with the package installed in editable mode, its KPI kernels compiled.
set -euo pipefail
cd "$(dirname "$0")/.."

want_debian="${FACTORY_TWIN_DEBIAN:-mosquitto victoria-metrics poppler-utils chromium}"
missing=()
for pkg in $want_debian; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: apt-get install ${missing[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e '.[test]'
# compile the KPI kernels now (into Numba's cache beside them), not at the first KPI of a live run
.venv/bin/python -m twin.kpi.warmup >&2
