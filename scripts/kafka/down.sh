#!/usr/bin/env bash
# Stop the local Kafka broker started by scripts/kafka/up.sh.
#   SIGTERM (controlled shutdown), wait up to KAFKA_DOWN_TIMEOUT seconds (default 30), then SIGKILL.
#   Exits 0 even if nothing was running.
#   --clean  also wipes .kafka/data (the next up.sh formats a fresh cluster).
set -uo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_DIR="${KAFKA_DIR:-$REPO_ROOT/.kafka}"
PROPS="$KAFKA_DIR/server.properties"
PIDFILE="$KAFKA_DIR/kafka.pid"
TIMEOUT="${KAFKA_DOWN_TIMEOUT:-30}"

CLEAN=0
for arg in "$@"; do
  case "$arg" in
    --clean) CLEAN=1 ;;
    -h | --help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "[kafka-down] unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "[kafka-down] $*"; }

if [[ -d "$KAFKA_DIR" ]] && command -v flock >/dev/null; then
  exec 9>"$KAFKA_DIR/.lock"
  flock -w 180 9 || log "warning: could not take $KAFKA_DIR/.lock, continuing"
fi

proc_alive() { # PID exists and is not a zombie
  kill -0 "$1" 2>/dev/null || return 1
  [[ -r "/proc/$1/stat" ]] || return 0
  [[ "$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

is_our_kafka() { # PID alive and running kafka.Kafka with our server.properties
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  proc_alive "$pid" || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS"
}

# Our broker: the pid file, plus any JVM still running kafka.Kafka with *our* config file
# (e.g. the pid file was lost). Matched by exact command line, never by a broad name.
pids=()
if [[ -f "$PIDFILE" ]]; then
  p="$(tr -d '[:space:]' <"$PIDFILE")"
  is_our_kafka "$p" && pids+=("$p")
fi
if [[ -d /proc ]]; then
  for d in /proc/[0-9]*; do
    p="${d#/proc/}"
    [[ " ${pids[*]-} " == *" $p "* ]] && continue
    is_our_kafka "$p" && pids+=("$p")
  done
fi

if ((${#pids[@]} == 0)); then
  log "not running"
else
  log "stopping broker (pid ${pids[*]}) with SIGTERM"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$((SECONDS + TIMEOUT))
  while :; do
    alive=()
    for p in "${pids[@]}"; do proc_alive "$p" && alive+=("$p"); done
    ((${#alive[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      log "still alive after ${TIMEOUT}s, sending SIGKILL to ${alive[*]}"
      kill -KILL "${alive[@]}" 2>/dev/null || true
      for _ in $(seq 1 50); do
        still=0
        for p in "${alive[@]}"; do proc_alive "$p" && still=1; done
        ((still == 0)) && break
        sleep 0.1
      done
      break
    fi
    sleep 0.2
  done
  log "stopped"
fi
rm -f "$PIDFILE"

if ((CLEAN == 1)); then
  rm -rf "$KAFKA_DIR/data"
  log "wiped $KAFKA_DIR/data"
fi
exit 0
