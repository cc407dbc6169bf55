#!/usr/bin/env bash
# Benchmark Python Faust's in-memory Channel (baseline for effect-faust).
# Usage: bash bench/faust/run.sh [--n N] [--rounds R] [--warmup] [--json] [--scenarios LIST]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.requirements.installed"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  echo "[faust-bench] setting up virtualenv at $venv" >&2
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
exec "$venv/bin/python" "$here/bench.py" "$@"
