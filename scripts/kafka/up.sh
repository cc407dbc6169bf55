#!/usr/bin/env bash
# Start a real single-node Apache Kafka 4.x broker (KRaft, broker+controller combined)
# on 127.0.0.1:9092 (controller on 127.0.0.1:9093), from jars fetched from Maven Central.
#
#   --secure  also a SASL_SSL listener on 127.0.0.1:9094: a throwaway CA and broker certificate
#             made with the JDK's keytool (in $KAFKA_DIR/secure), SASL PLAIN, SCRAM-SHA-256,
#             SCRAM-SHA-512 and OAUTHBEARER (unsecured JWTs, for tests), SCRAM users created when
#             the storage is formatted. What a client needs (the listener, the CA's PEM file, the
#             test users and passwords) is written to $KAFKA_DIR/secure.json. The listener is part
#             of the broker's configuration: a broker already running without it keeps running
#             as it is (stop it with down.sh, then start it with --secure). Once started with
#             --secure, later starts under the same KAFKA_DIR keep the listener (a test restarting
#             the broker does not drop it) until one is run with --no-secure.
#   --no-secure  start without the SASL_SSL listener
#   --brokers N  a cluster of N nodes (2..9), each KRaft controller and broker, same jars:
#             node i (1..N) has its PLAINTEXT listener on KAFKA_PORT+i-1 (9092, 9093, 9094 for 3)
#             and its controller on KAFKA_CONTROLLER_PORT+i-1, where KAFKA_CONTROLLER_PORT defaults
#             to KAFKA_PORT+10000 in a cluster (19092, 19093, 19094); the single node's controller
#             9093 and SASL_SSL 9094 do not apply (--secure is refused with --brokers). Each node's
#             state, pid file and log are in $KAFKA_DIR/node-<i>/; heap -Xms128m -Xmx384m each.
#             Defaults for topics: replication factor min(N,3), min.insync.replicas 2 (N >= 3),
#             internal topics alike. The layout (N, ports, cluster id) is kept in
#             $KAFKA_DIR/cluster.env: later starts under that KAFKA_DIR start the same cluster
#             (ports from the file) until one is run with --brokers 1 (back to the single node).
#   --node I  (a cluster) start only node I (e.g. after a test killed it), and wait until it answers
#
# Idempotent:
#   - jars are fetched once into .kafka/libs (re-fetched only when scripts/kafka/pom.xml changes)
#   - storage in .kafka/data is formatted once (random cluster id)
#   - if the broker is already running and answering, says so and exits 0
#
# Environment overrides (all optional):
#   KAFKA_DIR          state dir                      (default: <repo>/.kafka)
#   KAFKA_HEAP_OPTS    JVM heap                       (default: -Xms256m -Xmx512m; a cluster's nodes -Xms128m -Xmx384m)
#   KAFKA_UP_TIMEOUT   seconds to wait for readiness  (default: 90)
#   KAFKA_PORT         PLAINTEXT listener port        (default: 9092; a cluster's first node)
#   KAFKA_CONTROLLER_PORT  controller port            (default: 9093; a cluster's first node: KAFKA_PORT+10000)
#   KAFKA_SECURE_PORT  SASL_SSL listener port, with --secure (default: 9094)
#   KAFKA_LIBS         where the jars are cached      (default: $KAFKA_DIR/libs; .ci/run shares .kafka/libs with its cluster)
#   (a second broker beside the project's: KAFKA_DIR=/tmp/kafka-x KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 ...;
#    a cluster beside it: KAFKA_DIR=/tmp/kafka-cluster KAFKA_PORT=29092 up.sh --brokers 3 -> 29092-29094, 39092-39094)
#
# Stop with scripts/kafka/down.sh (every node of a cluster; --node I for one).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
KAFKA_DIR="${KAFKA_DIR:-$REPO_ROOT/.kafka}"
LIBS="${KAFKA_LIBS:-$KAFKA_DIR/libs}"
DATA="$KAFKA_DIR/data"
PROPS="$KAFKA_DIR/server.properties"
LOG4J="$KAFKA_DIR/log4j2.properties"
PIDFILE="$KAFKA_DIR/kafka.pid"
LOGFILE="$KAFKA_DIR/kafka.log"
POM="$SCRIPT_DIR/pom.xml"
PROBE="$SCRIPT_DIR/MetadataProbe.java"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT_GIVEN="${KAFKA_CONTROLLER_PORT:-}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
SECURE_PORT="${KAFKA_SECURE_PORT:-9094}"
SECURE_DIR="$KAFKA_DIR/secure"
SECURE_JSON="$KAFKA_DIR/secure.json"
TIMEOUT="${KAFKA_UP_TIMEOUT:-90}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# Set by a cluster start for each of its nodes (see start_cluster); a single node is node 1 of 1.
NODE_ID="${KAFKA_NODE_ID:-1}"
QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-$NODE_ID@$HOST:$CONTROLLER_PORT}"
CLUSTER_SIZE="${KAFKA_CLUSTER_SIZE:-1}"
NO_WAIT="${KAFKA_UP_NO_WAIT:-0}"
REPLICATION=$((CLUSTER_SIZE < 3 ? CLUSTER_SIZE : 3))
MIN_ISR=$((CLUSTER_SIZE >= 3 ? 2 : 1))
CLUSTER_ENV="$KAFKA_DIR/cluster.env"

log() { echo "[kafka-up] $*"; }
die() { echo "[kafka-up] ERROR: $*" >&2; exit 1; }

SECURE=
BROKERS=
ONLY_NODE=
while (($# > 0)); do
  case "$1" in
    --secure) SECURE=1 ;;
    --no-secure) SECURE=0 ;;
    --brokers) BROKERS="${2:-}"; shift ;;
    --brokers=*) BROKERS="${1#--brokers=}" ;;
    --node) ONLY_NODE="${2:-}"; shift ;;
    --node=*) ONLY_NODE="${1#--node=}" ;;
    -h | --help) sed -n '2,43p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ -z "$BROKERS" || "$BROKERS" =~ ^[1-9]$ ]] || die "--brokers takes a number of nodes from 1 to 9 (got: '$BROKERS')"
[[ -z "$ONLY_NODE" || "$ONLY_NODE" =~ ^[1-9]$ ]] || die "--node takes a node id from 1 to 9 (got: '$ONLY_NODE')"

port_open() { # port_open PORT -> 0 if something accepts TCP on $HOST:PORT
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

proc_alive() { # PID exists and is not a zombie
  kill -0 "$1" 2>/dev/null || return 1
  [[ -r "/proc/$1/stat" ]] || return 0
  [[ "$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

is_our_kafka() { # is_our_kafka PID -> 0 if PID is alive and is the kafka.Kafka JVM started with our config
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  proc_alive "$pid" || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0 # no procfs: trust kill -0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS"
}

current_pid() { [[ -f "$PIDFILE" ]] && tr -d '[:space:]' <"$PIDFILE" || true; }

probe_metadata() { # probe_metadata TIMEOUT_MS [BOOTSTRAP] [MIN_BROKERS] -> real DescribeCluster/ListTopics round trip
  local classes="$KAFKA_DIR/probe" bootstrap="${2:-$HOST:$PORT}" brokers="${3:-1}"
  if [[ ! -f "$classes/MetadataProbe.class" || "$PROBE" -nt "$classes/MetadataProbe.class" ]] && command -v javac >/dev/null; then
    rm -rf "$classes" && mkdir -p "$classes" &&
      javac -nowarn -cp "$LIBS/*" -d "$classes" "$PROBE" >/dev/null 2>&1 || rm -rf "$classes"
  fi
  if [[ -f "$classes/MetadataProbe.class" ]]; then
    java -XX:TieredStopAtLevel=1 -cp "$classes:$LIBS/*" MetadataProbe "$bootstrap" "$1" "$brokers"
  else # no javac (JRE only): single-file source launch
    java -XX:TieredStopAtLevel=1 -cp "$LIBS/*" "$PROBE" "$bootstrap" "$1" "$brokers"
  fi
}

tail_log() {
  if [[ -f "$LOGFILE" ]]; then
    echo "----- last 60 lines of $LOGFILE -----" >&2
    tail -n 60 "$LOGFILE" >&2
    echo "-------------------------------------" >&2
  fi
}

random_secret() { head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# The throwaway CA, the broker's keystore and the test users' passwords, made once per KAFKA_DIR
# (kept across restarts: the SCRAM users live in the formatted storage).
make_secure_material() {
  command -v keytool >/dev/null || die "keytool not found on PATH (it comes with the JDK; --secure needs it)"
  mkdir -p "$SECURE_DIR"
  chmod 700 "$SECURE_DIR"
  if [[ ! -f "$SECURE_DIR/.complete" ]]; then
    log "making a throwaway CA and broker certificate with keytool in $SECURE_DIR"
    rm -f "$SECURE_DIR"/*.p12 "$SECURE_DIR"/*.pem "$SECURE_DIR"/*.csr "$SECURE_DIR/secrets"
    local store_password
    store_password="$(random_secret)"
    local kt=(keytool -noprompt -storetype PKCS12 -storepass "$store_password")
    {
      "${kt[@]}" -genkeypair -alias ca -keyalg RSA -keysize 2048 -validity 3650 \
        -dname "CN=effect-faust throwaway test CA" -ext bc:c -keystore "$SECURE_DIR/ca.p12" &&
        "${kt[@]}" -exportcert -rfc -alias ca -keystore "$SECURE_DIR/ca.p12" -file "$SECURE_DIR/ca.pem" &&
        "${kt[@]}" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 \
          -dname "CN=localhost" -keystore "$SECURE_DIR/broker.p12" &&
        "${kt[@]}" -certreq -alias broker -keystore "$SECURE_DIR/broker.p12" -file "$SECURE_DIR/broker.csr" &&
        "${kt[@]}" -gencert -alias ca -keystore "$SECURE_DIR/ca.p12" -validity 3650 -rfc \
          -ext "SAN=dns:localhost,ip:$HOST" -ext ku:c=digitalSignature,keyEncipherment -ext eku=serverAuth \
          -infile "$SECURE_DIR/broker.csr" -outfile "$SECURE_DIR/broker.pem" &&
        "${kt[@]}" -importcert -alias ca -file "$SECURE_DIR/ca.pem" -keystore "$SECURE_DIR/broker.p12" &&
        "${kt[@]}" -importcert -alias broker -file "$SECURE_DIR/broker.pem" -keystore "$SECURE_DIR/broker.p12"
    } >"$SECURE_DIR/keytool.log" 2>&1 || { cat "$SECURE_DIR/keytool.log" >&2; die "keytool failed"; }
    # shellcheck disable=SC2016
    printf 'STORE_PASSWORD=%s\nSCRAM_USER=%s\nSCRAM_PASSWORD=%s\nPLAIN_USER=%s\nPLAIN_PASSWORD=%s\n' \
      "$store_password" faust-scram "$(random_secret)" faust-plain "$(random_secret)" >"$SECURE_DIR/secrets"
    chmod 600 "$SECURE_DIR/secrets" "$SECURE_DIR"/*.p12
    touch "$SECURE_DIR/.complete"
  fi
  # shellcheck disable=SC1091
  source "$SECURE_DIR/secrets"
  cat >"$SECURE_JSON" <<EOF
{
  "bootstrapServers": "$HOST:$SECURE_PORT",
  "plaintextBootstrapServers": "$HOST:$PORT",
  "ca": "$SECURE_DIR/ca.pem",
  "scram": { "username": "$SCRAM_USER", "password": "$SCRAM_PASSWORD", "mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-512"] },
  "plain": { "username": "$PLAIN_USER", "password": "$PLAIN_PASSWORD" },
  "oauthbearer": { "unsecuredJwt": true }
}
EOF
  chmod 600 "$SECURE_JSON"
}

# The SASL_SSL listener's part of server.properties (after make_secure_material).
secure_properties() {
  cat <<EOF
# --secure: SASL over TLS on $HOST:$SECURE_PORT (throwaway CA in $SECURE_DIR)
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$SECURE_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$STORE_PASSWORD
listener.name.sasl_ssl.ssl.key.password=$STORE_PASSWORD
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$PLAIN_USER="$PLAIN_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
EOF
}

# The Kafka jars, fetched once with Maven (again only when pom.xml changes).
fetch_jars() {
  command -v sha256sum >/dev/null || die "sha256sum not found"
  POM_HASH="$( (cat "$POM"; echo) | sha256sum | cut -d' ' -f1)"
  if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$POM_HASH" ]]; then
    log "jars cached in $LIBS ($(find "$LIBS" -name '*.jar' | wc -l) jars)"
  else
    command -v mvn >/dev/null || die "mvn not found on PATH (Maven 3.8+ required to fetch the Kafka jars)"
    log "fetching Kafka jars with Maven into $LIBS ..."
    t0=$SECONDS
    rm -rf "$LIBS.tmp"
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS.tmp" >"$KAFKA_DIR/mvn.log" 2>&1; then
      tail -n 40 "$KAFKA_DIR/mvn.log" >&2
      die "Maven failed to fetch the Kafka jars (full output: $KAFKA_DIR/mvn.log)"
    fi
    ls "$LIBS.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but kafka_2.13 jar is missing in $LIBS.tmp"
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    echo "$POM_HASH" >"$LIBS/.complete"
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
  fi
}

# ---------------------------------------------------------------- a cluster (--brokers N)
# Writes each node's environment, starts every node (this script, once per node, in
# $KAFKA_DIR/node-<i> without waiting), then waits until each answers and the cluster lists N
# brokers. Nodes need a quorum of controllers to open their listeners, so none is waited for
# before all are started.
node_env() { # node_env I -> NODE_ENV: the environment this script runs with for node I
  NODE_ENV=("KAFKA_DIR=$KAFKA_DIR/node-$1" "KAFKA_LIBS=$LIBS" "KAFKA_NODE_ID=$1"
    "KAFKA_PORT=$((C_PORT + $1 - 1))" "KAFKA_CONTROLLER_PORT=$((C_CONTROLLER_PORT + $1 - 1))"
    "KAFKA_QUORUM_VOTERS=$C_VOTERS" "KAFKA_CLUSTER_ID=$C_CLUSTER_ID" "KAFKA_CLUSTER_SIZE=$C_BROKERS"
    "KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}" "KAFKA_UP_TIMEOUT=$TIMEOUT")
}

start_cluster() {
  [[ "$SECURE" == 1 ]] && die "--secure is not supported with --brokers (the cluster has PLAINTEXT listeners only); start a single node with --secure for the SASL_SSL tests"
  mkdir -p "$KAFKA_DIR"
  if command -v flock >/dev/null; then
    exec 9>"$KAFKA_DIR/.lock"
    flock -w 180 9 || die "timed out waiting for another up.sh/down.sh to finish ($KAFKA_DIR/.lock)"
  fi
  if [[ -f "$CLUSTER_ENV" ]]; then
    # shellcheck disable=SC1090
    source "$CLUSTER_ENV"
    [[ -z "$BROKERS" || "$BROKERS" == "$C_BROKERS" ]] ||
      die "$KAFKA_DIR holds a cluster of $C_BROKERS nodes; stop it and wipe it (scripts/kafka/down.sh --clean) to start one of $BROKERS"
  else
    C_BROKERS="$BROKERS"
    C_PORT="$PORT"
    C_CONTROLLER_PORT="${CONTROLLER_PORT_GIVEN:-$((PORT + 10000))}"
    C_CLUSTER_ID="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    C_VOTERS=""
    for ((i = 1; i <= C_BROKERS; i++)); do
      C_VOTERS="${C_VOTERS:+$C_VOTERS,}$i@$HOST:$((C_CONTROLLER_PORT + i - 1))"
    done
    printf 'C_BROKERS=%s\nC_PORT=%s\nC_CONTROLLER_PORT=%s\nC_CLUSTER_ID=%s\nC_VOTERS=%s\n' \
      "$C_BROKERS" "$C_PORT" "$C_CONTROLLER_PORT" "$C_CLUSTER_ID" "$C_VOTERS" >"$CLUSTER_ENV"
  fi
  [[ -z "$ONLY_NODE" ]] || ((ONLY_NODE <= C_BROKERS)) || die "the cluster in $KAFKA_DIR has nodes 1..$C_BROKERS (no node $ONLY_NODE)"
  fetch_jars
  local nodes=() bootstrap="" i
  if [[ -n "$ONLY_NODE" ]]; then nodes=("$ONLY_NODE"); else for ((i = 1; i <= C_BROKERS; i++)); do nodes+=("$i"); done; fi
  for ((i = 1; i <= C_BROKERS; i++)); do bootstrap="${bootstrap:+$bootstrap,}$HOST:$((C_PORT + i - 1))"; done
  local t0=$SECONDS
  for i in "${nodes[@]}"; do
    node_env "$i"
    env "${NODE_ENV[@]}" KAFKA_UP_NO_WAIT=1 bash "$0" --no-secure --brokers 1 2>&1 | sed "s/^\[kafka-up\]/[kafka-up] node $i:/" ||
      die "node $i did not start"
  done
  for i in "${nodes[@]}"; do
    node_env "$i"
    env "${NODE_ENV[@]}" bash "$0" --no-secure --brokers 1 2>&1 | sed "s/^\[kafka-up\]/[kafka-up] node $i:/" ||
      die "node $i did not become ready"
  done
  local remaining_ms=$(((TIMEOUT - (SECONDS - t0)) * 1000))
  ((remaining_ms < 10000)) && remaining_ms=10000
  # a restarted node answers once the others have it in the cluster again; a whole start, once all N are there
  probe_metadata "$remaining_ms" "$bootstrap" "$C_BROKERS" || die "the cluster at $bootstrap did not list $C_BROKERS brokers"
  log "up: $C_BROKERS nodes, PLAINTEXT $bootstrap (controllers on $C_CONTROLLER_PORT..$((C_CONTROLLER_PORT + C_BROKERS - 1)); state in $KAFKA_DIR/node-*; ready after $((SECONDS - t0))s)"
}

command -v java >/dev/null || die "java not found on PATH (Java 17+ required)"

if [[ -z "$SECURE" ]]; then # neither flag: as the last start under this KAFKA_DIR
  SECURE=0
  grep -q '^listeners=.*SASL_SSL://' "$PROPS" 2>/dev/null && SECURE=1
fi
JAVA_MAJOR="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)"
[[ "${JAVA_MAJOR%%.*}" -ge 17 ]] 2>/dev/null || die "Java 17+ required (found: ${JAVA_MAJOR:-unknown})"

# A cluster: --brokers N (N > 1), --node I, or neither flag with a cluster's layout under KAFKA_DIR.
if [[ -z "$BROKERS" && -f "$CLUSTER_ENV" ]] || [[ -n "$BROKERS" && "$BROKERS" != 1 ]] || [[ -n "$ONLY_NODE" ]]; then
  [[ -f "$CLUSTER_ENV" || -n "$BROKERS" ]] || die "--node needs a cluster under $KAFKA_DIR (start one with --brokers N)"
  start_cluster
  exit 0
fi
if [[ "$BROKERS" == 1 && "$NODE_ID" == 1 && "$CLUSTER_SIZE" == 1 && -f "$CLUSTER_ENV" ]]; then
  log "back to the single node: forgetting the cluster's layout ($CLUSTER_ENV; its nodes' state stays in $KAFKA_DIR/node-*)"
  rm -f "$CLUSTER_ENV"
fi

mkdir -p "$KAFKA_DIR"

# Serialize concurrent up.sh/down.sh runs (e.g. parallel test workers); the broker never inherits the lock fd.
if command -v flock >/dev/null; then
  exec 9>"$KAFKA_DIR/.lock"
  flock -w 180 9 || die "timed out waiting for another up.sh/down.sh to finish ($KAFKA_DIR/.lock)"
fi

# ---------------------------------------------------------------- already running?
PID="$(current_pid)"
if [[ -n "$PID" ]] && is_our_kafka "$PID"; then
  if port_open "$PORT"; then
    log "already running (pid $PID) on $HOST:$PORT"
    if [[ "$SECURE" == 1 ]] && ! grep -q '^listeners=.*SASL_SSL://' "$PROPS" 2>/dev/null; then
      log "warning: it was started without --secure, so it has no SASL_SSL listener;" \
        "stop it (scripts/kafka/down.sh) and start it again with --secure to add one"
    fi
    exit 0
  fi
  log "process $PID is alive but $HOST:$PORT does not answer yet; waiting for it"
  STARTED_NOW=0
else
  [[ -n "$PID" ]] && log "removing stale pid file (pid $PID is not running)"
  rm -f "$PIDFILE"
  if port_open "$PORT" || port_open "$CONTROLLER_PORT" || { [[ "$SECURE" == 1 ]] && port_open "$SECURE_PORT"; }; then
    die "$HOST:$PORT, $HOST:$CONTROLLER_PORT or $HOST:$SECURE_PORT is already in use by another process (not started by this script)"
  fi
  STARTED_NOW=1
fi

if [[ "$STARTED_NOW" == 1 ]]; then
  fetch_jars

  # -------------------------------------------------------------- secure listener material (once)
  LISTENERS="PLAINTEXT://$HOST:$PORT"
  PROTOCOLS="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ "$SECURE" == 1 ]]; then
    make_secure_material
    LISTENERS="$LISTENERS,SASL_SSL://$HOST:$SECURE_PORT"
    PROTOCOLS="$PROTOCOLS,SASL_SSL:SASL_SSL"
  fi

  # -------------------------------------------------------------- config
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka/up.sh - local KRaft node $NODE_ID of $CLUSTER_SIZE (broker+controller) for tests. Do not edit.
node.id=$NODE_ID
process.roles=broker,controller
controller.quorum.voters=$QUORUM_VOTERS
listeners=$LISTENERS,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=$LISTENERS
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$PROTOCOLS
log.dirs=$DATA
num.partitions=1
default.replication.factor=$REPLICATION
min.insync.replicas=$MIN_ISR
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=$REPLICATION
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=$REPLICATION
share.coordinator.state.topic.min.isr=$MIN_ISR
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  [[ "$SECURE" == 1 ]] && secure_properties >>"$PROPS"

  cat >"$LOG4J" <<'EOF'
# Generated by scripts/kafka/up.sh
status = warn
# Kafka shuts down in its own hook; keep log4j alive until the JVM exits so the tail of the log is kept
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF

  # -------------------------------------------------------------- format storage (once)
  if [[ -f "$DATA/meta.properties" ]]; then
    log "storage already formatted ($(grep '^cluster.id=' "$DATA/meta.properties" || true))"
  else
    # Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars).
    CLUSTER_ID="${KAFKA_CLUSTER_ID:-$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')}"
    log "formatting storage in $DATA with cluster id $CLUSTER_ID"
    rm -rf "$DATA"
    SCRAM_ARGS=()
    if [[ "$SECURE" == 1 ]]; then
      for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
        SCRAM_ARGS+=(--add-scram "$mechanism=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]")
      done
    fi
    if ! java -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J" kafka.tools.StorageTool format \
        --cluster-id="$CLUSTER_ID" -c "$PROPS" "${SCRAM_ARGS[@]}" >"$KAFKA_DIR/format.log" 2>&1; then
      cat "$KAFKA_DIR/format.log" >&2
      die "kafka.tools.StorageTool format failed"
    fi
    [[ "$SECURE" == 1 ]] && touch "$DATA/.scram-users"
  fi
  if [[ "$SECURE" == 1 && ! -f "$DATA/.scram-users" ]]; then
    log "warning: the storage in $DATA was formatted without --secure, so it has no SCRAM users" \
      "(PLAIN and OAUTHBEARER still work); scripts/kafka/down.sh --clean, then up.sh --secure, formats it with them"
  fi

  # -------------------------------------------------------------- start
  [[ -f "$LOGFILE" ]] && mv -f "$LOGFILE" "$LOGFILE.1"
  log "starting broker (log: $LOGFILE)"
  # setsid + nohup: the broker outlives this script and its process group; stdio detached so
  # callers (npm, CI, test runners) never hang on our pipes.
  # shellcheck disable=SC2086
  setsid nohup java $HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:ActiveProcessorCount="$(nproc)" \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J" \
    -Dkafka.logs.dir="$KAFKA_DIR" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >"$LOGFILE" 2>&1 9>&- &
  PID=$!
  if ! is_our_kafka "$PID"; then
    # setsid may have forked (if we were a process-group leader): find the JVM by its exact command line
    sleep 0.5
    for d in /proc/[0-9]*; do
      is_our_kafka "${d#/proc/}" && { PID="${d#/proc/}"; break; }
    done
  fi
  echo "$PID" >"$PIDFILE"
  log "pid $PID"
  if [[ "$NO_WAIT" == 1 ]]; then exit 0; fi # a cluster's node: the cluster start waits for all of them
fi

# ---------------------------------------------------------------- wait for readiness
t0=$SECONDS
deadline=$((SECONDS + TIMEOUT))
until port_open "$PORT"; do
  if ! proc_alive "$PID"; then
    rm -f "$PIDFILE"
    tail_log
    die "broker process $PID exited during startup"
  fi
  if ((SECONDS >= deadline)); then
    tail_log
    die "broker did not open $HOST:$PORT within ${TIMEOUT}s (pid $PID still running; stop it with scripts/kafka/down.sh)"
  fi
  sleep 0.3
done
remaining_ms=$(((deadline - SECONDS) * 1000))
((remaining_ms < 5000)) && remaining_ms=5000
if ! probe_metadata "$remaining_ms"; then
  tail_log
  proc_alive "$PID" || rm -f "$PIDFILE"
  die "broker on $HOST:$PORT accepted TCP but did not answer metadata requests"
fi
if [[ "$SECURE" == 1 ]]; then
  until port_open "$SECURE_PORT"; do
    if ((SECONDS >= deadline)); then
      tail_log
      die "the SASL_SSL listener $HOST:$SECURE_PORT did not open within ${TIMEOUT}s"
    fi
    sleep 0.3
  done
  log "up: PLAINTEXT://$HOST:$PORT, SASL_SSL://$HOST:$SECURE_PORT (CA $SECURE_DIR/ca.pem, users in $SECURE_JSON; pid $PID, ready after $((SECONDS - t0))s)"
else
  log "up: PLAINTEXT://$HOST:$PORT (pid $PID, ready after $((SECONDS - t0))s)"
fi
