#!/usr/bin/env bash
# Benchmark Python Faust's in-memory Channel (baseline for effect-faust, scenario 6).
# Usage: bash bench/faust/run.sh [--n N] [--rounds R] [--warmup] [--json] [--scenarios LIST]
#        bash bench/faust/run.sh kafka produce|consume --topic T --n N [--bootstrap HOST:PORT]
#        bash bench/faust/run.sh kafka --check     (sets up the venv, prints versions as JSON)
# The `kafka` form runs kafka_bench.py: one run of Faust itself on Kafka (scenario 7, vs Faust).
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
if [ "${1:-}" = "kafka" ]; then
  shift
  exec "$venv/bin/python" "$here/kafka_bench.py" "$@"
fi
exec "$venv/bin/python" "$here/bench.py" "$@"
