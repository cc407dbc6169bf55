#!/usr/bin/env bash
# Stop the local Kafka broker started by scripts/kafka/up.sh, or every node of its cluster
# (up.sh --brokers N: $KAFKA_DIR/node-<i>/kafka.pid).
#   SIGTERM (controlled shutdown), wait up to KAFKA_DOWN_TIMEOUT seconds (default 30), then SIGKILL.
#   Exits 0 even if nothing was running.
#   --clean   also wipes .kafka/data and the cluster's nodes' data and layout (the next up.sh formats afresh).
#   --node I  stop only node I of the cluster (SIGTERM: a controlled shutdown; up.sh --node I starts it again).
set -uo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_DIR="${KAFKA_DIR:-$REPO_ROOT/.kafka}"
TIMEOUT="${KAFKA_DOWN_TIMEOUT:-30}"

CLEAN=0
ONLY_NODE=
while (($# > 0)); do
  case "$1" in
    --clean) CLEAN=1 ;;
    --node) ONLY_NODE="${2:-}"; shift ;;
    --node=*) ONLY_NODE="${1#--node=}" ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "[kafka-down] unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ -n "$ONLY_NODE" && ! "$ONLY_NODE" =~ ^[1-9]$ ]]; then
  echo "[kafka-down] --node takes a node id from 1 to 9 (got: '$ONLY_NODE')" >&2
  exit 2
fi

# The state dirs to stop: the single node's ($KAFKA_DIR) and each cluster node's ($KAFKA_DIR/node-<i>).
DIRS=()
if [[ -n "$ONLY_NODE" ]]; then
  DIRS=("$KAFKA_DIR/node-$ONLY_NODE")
else
  DIRS=("$KAFKA_DIR")
  for d in "$KAFKA_DIR"/node-[0-9]; do [[ -d "$d" ]] && DIRS+=("$d"); done
fi

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

is_our_kafka() { # is_our_kafka PID PROPS -> PID alive and running kafka.Kafka with that server.properties
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  proc_alive "$pid" || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $2 "
}

# Our brokers: the pid files, plus any JVM still running kafka.Kafka with *our* config files
# (e.g. a pid file was lost). Matched by exact command line, never by a broad name.
pids=()
for dir in "${DIRS[@]}"; do
  if [[ -f "$dir/kafka.pid" ]]; then
    p="$(tr -d '[:space:]' <"$dir/kafka.pid")"
    is_our_kafka "$p" "$dir/server.properties" && pids+=("$p")
  fi
done
if [[ -d /proc ]]; then
  for d in /proc/[0-9]*; do
    p="${d#/proc/}"
    [[ " ${pids[*]-} " == *" $p "* ]] && continue
    for dir in "${DIRS[@]}"; do
      is_our_kafka "$p" "$dir/server.properties" && { pids+=("$p"); break; }
    done
  done
fi

if ((${#pids[@]} == 0)); then
  log "not running"
else
  log "stopping ${#pids[@]} broker(s) (pid ${pids[*]}) with SIGTERM"
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
for dir in "${DIRS[@]}"; do rm -f "$dir/kafka.pid"; done

if ((CLEAN == 1)); then
  for dir in "${DIRS[@]}"; do
    [[ -d "$dir/data" ]] || continue
    rm -rf "$dir/data"
    log "wiped $dir/data"
  done
  if [[ -z "$ONLY_NODE" && -f "$KAFKA_DIR/cluster.env" ]]; then
    rm -f "$KAFKA_DIR/cluster.env"
    log "forgot the cluster's layout ($KAFKA_DIR/cluster.env)"
  fi
fi
exit 0
