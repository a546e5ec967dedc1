#!/usr/bin/env bash
# cluster.sh up|down [DIR] -- a real scale-out Pier on this machine, all on 127.0.0.1:
#   PostgreSQL 15 (initdb/pg_ctl in DIR/pg), Ceph RGW (scripts/services/start-s3.sh in DIR/s3),
#   three `pier serve` replicas (each its own --data DIR/replica-N, one database, one bucket)
#   and haproxy round-robin in front (mode http, balance roundrobin, option http-server-close:
#   every request a new choice of replica, no stickiness).
# stdout (up): KEY=VALUE lines, REGISTRY=127.0.0.1:PORT first; progress on stderr.
# env: CLUSTER_PORT (haproxy; default: a free port)  CLUSTER_REPLICAS (3)
#      PG_URL (use this PostgreSQL server instead of starting one; a database is created on it)
#      S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION (use this S3 store instead of starting RGW)
#      CLUSTER_NAME (pier-cluster: the bucket, and the database with _ for -)
#      PIER_CONFIG_EXTRA (a YAML file appended to the replicas' config, e.g. auth or webhooks)
# DIR defaults to ./.pier-cluster. `down` stops everything `up` started (by the PIDs it recorded)
# and keeps DIR; `down DIR --purge` removes it too.
set -euo pipefail
cmd=${1:?usage: $0 up|down [DIR] [--purge]}
DIR=$(realpath -m "${2:-.pier-cluster}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
PIER="node $ROOT/bin/pier.js"
NAME=${CLUSTER_NAME:-pier-cluster}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
log() { echo "[cluster] $*" >&2; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
stop_pid() { # stop_pid FILE: SIGTERM the recorded process, wait up to 10 s, then SIGKILL
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  for f in "$DIR"/haproxy.pid "$DIR"/replica-*.pid; do [ -e "$f" ] && stop_pid "$f"; done
  if [ -f "$DIR/pg/data/postmaster.pid" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg/data" stop -m fast >/dev/null 2>&1 || true
  fi
  if [ -f "$DIR/s3/ceph.conf" ]; then bash "$ROOT/scripts/services/stop-s3.sh" "$DIR/s3" >/dev/null 2>&1 || true; fi
  if [ "${3:-}" = "--purge" ]; then rm -rf "$DIR"; fi
  log "stopped"
}

up() {
  [ -f "$ROOT/dist/src/cli/main.js" ] || (cd "$ROOT" && npx tsc -p tsconfig.json)
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  # --- PostgreSQL: the one database every replica shares.
  local pg_url
  if [ -n "${PG_URL:-}" ]; then
    pg_url=$PG_URL
  else
    local pg_port
    pg_port=$(cat "$DIR/pg/port" 2>/dev/null || free_port)
    if [ ! -d "$DIR/pg/data" ]; then
      mkdir -p "$DIR/pg" && chown postgres "$DIR/pg" && chmod 755 "$DIR/pg"
      runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/pg/data" -A trust -U pier >/dev/null
      echo "$pg_port" >"$DIR/pg/port"
    fi
    if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
      runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg/data" -w -l "$DIR/pg/log" \
        -o "-p $pg_port -k $DIR/pg -c listen_addresses=127.0.0.1" start >/dev/null
    fi
    pg_url="postgres://pier@127.0.0.1:$pg_port/postgres"
    log "PostgreSQL on 127.0.0.1:$pg_port"
  fi
  local db_url
  db_url=$(node -e '
    const pg = require(process.argv[1] + "/node_modules/pg");
    const u = new URL(process.argv[2]); const name = process.argv[3];
    const c = new pg.Client({ connectionString: u.toString() });
    c.connect().then(async () => {
      const r = await c.query("select 1 from pg_database where datname = $1", [name]);
      if (r.rowCount === 0) await c.query("create database " + name);
      await c.end(); u.pathname = "/" + name; console.log(u.toString());
    }).catch((e) => { console.error(e.message); process.exit(1); });' "$ROOT" "$pg_url" "${NAME//-/_}")

  # --- S3: one bucket every replica shares.
  local s3_endpoint s3_access s3_secret s3_region bucket=${NAME//_/-}
  if [ -n "${S3_ENDPOINT:-}" ]; then
    s3_endpoint=$S3_ENDPOINT s3_access=${S3_ACCESS_KEY:?} s3_secret=${S3_SECRET_KEY:?} s3_region=${S3_REGION:-us-east-1}
    node -e '
      const { S3Client, CreateBucketCommand } = require(process.argv[1] + "/node_modules/@aws-sdk/client-s3");
      const [endpoint, accessKeyId, secretAccessKey, region, Bucket] = process.argv.slice(2);
      const s3 = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
      s3.send(new CreateBucketCommand({ Bucket })).catch((e) => {
        if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(e.name)) { console.error(e.message); process.exit(1); }
      });
    ' "$ROOT" "$s3_endpoint" "$s3_access" "$s3_secret" "$s3_region" "$bucket"
  else
    local s3_env
    s3_env=$(S3_BUCKET=$bucket bash "$ROOT/scripts/services/start-s3.sh" "$DIR/s3")
    s3_endpoint=$(sed -n 's/^S3_ENDPOINT=//p' <<<"$s3_env")
    s3_access=$(sed -n 's/^S3_ACCESS_KEY=//p' <<<"$s3_env")
    s3_secret=$(sed -n 's/^S3_SECRET_KEY=//p' <<<"$s3_env")
    s3_region=$(sed -n 's/^S3_REGION=//p' <<<"$s3_env")
  fi
  log "S3 at $s3_endpoint, bucket $bucket"

  # --- The replicas' one configuration (each gets its own --listen and --data).
  umask 077
  cat >"$DIR/pier.yaml" <<EOF
database:
  type: postgres
  url: "$db_url"
storage:
  type: s3
  s3:
    endpoint: "$s3_endpoint"
    region: "$s3_region"
    bucket: "$bucket"
    accessKeyId: "$s3_access"
    secretAccessKey: "$s3_secret"
    forcePathStyle: true
EOF
  if [ -n "${PIER_CONFIG_EXTRA:-}" ]; then cat "$PIER_CONFIG_EXTRA" >>"$DIR/pier.yaml"; fi
  umask 022

  local n=${CLUSTER_REPLICAS:-3} servers="" i port
  for i in $(seq 1 "$n"); do
    if [ -f "$DIR/replica-$i.pid" ] && kill -0 "$(cat "$DIR/replica-$i.pid")" 2>/dev/null; then
      port=$(cat "$DIR/replica-$i.port")
    else
      port=$(cat "$DIR/replica-$i.port" 2>/dev/null || free_port)
      echo "$port" >"$DIR/replica-$i.port"
      setsid $PIER serve --config "$DIR/pier.yaml" --listen "127.0.0.1:$port" \
        --data "$DIR/replica-$i" >"$DIR/replica-$i.log" 2>&1 </dev/null &
      echo $! >"$DIR/replica-$i.pid"
    fi
    servers+="    server replica-$i 127.0.0.1:$port check inter 1s fall 2 rise 1"$'\n'
  done
  for i in $(seq 1 "$n"); do
    port=$(cat "$DIR/replica-$i.port")
    for _ in $(seq 300); do
      curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
      kill -0 "$(cat "$DIR/replica-$i.pid")" 2>/dev/null || { log "replica-$i exited: $(tail -3 "$DIR/replica-$i.log")"; exit 1; }
      sleep 0.1
    done
    log "replica-$i on 127.0.0.1:$port (log: $DIR/replica-$i.log)"
  done

  # --- haproxy: round-robin, a new replica for every request, no stickiness.
  local lb_port
  lb_port=${CLUSTER_PORT:-$(cat "$DIR/haproxy.port" 2>/dev/null || free_port)}
  echo "$lb_port" >"$DIR/haproxy.port"
  cat >"$DIR/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    option http-server-close
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    retries 2
    option redispatch
frontend registry
    bind 127.0.0.1:$lb_port
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
$servers
EOF
  stop_pid "$DIR/haproxy.pid"
  setsid haproxy -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 </dev/null &
  echo $! >"$DIR/haproxy.pid"
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$lb_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "REGISTRY=127.0.0.1:$lb_port"
  echo "DATABASE_URL=$db_url"
  echo "S3_ENDPOINT=$s3_endpoint"
  echo "S3_BUCKET=$bucket"
  log "registry at http://127.0.0.1:$lb_port (haproxy over $n replicas); stop with: $0 down $DIR"
}

case $cmd in
  up) up ;;
  down) down "$@" ;;
  *) echo "usage: $0 up|down [DIR] [--purge]" >&2; exit 2 ;;
esac
