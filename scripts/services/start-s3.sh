#!/bin/bash
# start-s3.sh [DIR] -- (Pier's copy of ../shared/services/start-s3.sh; scripts/test.sh and the
# cluster scripts run it) one-node Ceph (mon + osd + radosgw, no mgr, no cephx) from Debian 12
# packages, as a real S3 endpoint for CI. Idempotent: re-running with the same DIR restarts
# missing daemons and reuses the data. stdout: KEY=VALUE lines (eval-able); progress: stderr.
# env: S3_PORT (7480)  CEPH_MON_PORT (7430; uses it and the next)  CEPH_OSD_PORT_MIN/MAX (7440/7470)
#      CEPH_STORE=bluestore|memstore (bluestore)  S3_ACCESS_KEY  S3_SECRET_KEY  S3_BUCKET
#   bluestore: data in a sparse 20 GiB file under DIR, RSS ~0.5 GB; needs O_DIRECT on DIR
#              (tmpfs has it only on newer kernels - worked here on 6.18; else use memstore)
#   memstore : ~5 s faster start, but every byte stored stays in the OSD's RAM (and is not freed)
set -euo pipefail
DIR=$(realpath -m "${1:?usage: $0 DIR (a folder for the cluster data)}")
RGW_PORT=${S3_PORT:-7480} MON_PORT=${CEPH_MON_PORT:-7430}
OSD_PORT_MIN=${CEPH_OSD_PORT_MIN:-7440} OSD_PORT_MAX=${CEPH_OSD_PORT_MAX:-7470}
STORE=${CEPH_STORE:-bluestore}
ACCESS_KEY=${S3_ACCESS_KEY:-ciaccesskey} SECRET_KEY=${S3_SECRET_KEY:-cisecretkey123456789}
BUCKET=${S3_BUCKET:-registry-test}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
log() { echo "[start-s3 +$(( $(now_ms) - T0 ))ms] $*" >&2; }

T0=$(now_ms)
if ! dpkg -s ceph-mon ceph-osd radosgw ceph-common curl >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    ceph-mon ceph-osd radosgw ceph-common curl >/dev/null
  log "packages installed"
fi
T0=$(now_ms)
mkdir -p "$DIR"/{run,log,mon.a,osd.0,rgw}
export CEPH_CONF=$DIR/ceph.conf

if [ ! -f "$CEPH_CONF" ]; then
cat > "$CEPH_CONF.tmp" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT+1))]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults this to "secure", which auth=none cannot provide -> rgw loops on EACCES
ms mon client mode = crc
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
keyring = $DIR/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
# every pool create is a paxos round (1 s by default); rgw creates ~8 pools
paxos propose interval = 0.05
paxos min wait = 0.01
[mon]
mon data = $DIR/mon.\$id
[osd]
osd data = $DIR/osd.\$id
osd objectstore = $STORE
memstore device bytes = $((8 << 30))
bluestore block path = $DIR/osd.\$id.block
bluestore block create = true
bluestore block size = $((20 << 30))
bluestore fsck on mkfs = false
osd memory target = $((1 << 30))
[client.rgw.ci]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
EOF
mv "$CEPH_CONF.tmp" "$CEPH_CONF"
fi

alive() { [ -f "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }
start() { # name cmd... ; daemons run with -f so that $! is the daemon's own PID
  local n=$1; shift
  alive "$n" && return 0
  setsid "$@" >>"$DIR/log/$n.out" 2>&1 </dev/null &
  echo $! > "$DIR/run/$n.pid"
}
wait_for() { # what tries cmd... (0.1 s apart)
  local what=$1 n=$2; shift 2
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && { log "$what"; return 0; }; sleep 0.1; done
  echo "start-s3: timeout waiting for $what; logs in $DIR/log:" >&2
  tail -n 15 "$DIR"/log/*.log "$DIR"/log/*.out >&2 || true
  exit 1
}

# --- monitor
if [ ! -d "$DIR/mon.a/store.db" ]; then
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --clobber --fsid "$(ceph-conf --lookup fsid)" \
    --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT+1))]" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
fi
start mon.a ceph-mon -f -i a
wait_for "mon up" 300 ceph --connect-timeout 3 mon stat

# --- osd
if [ ! -f "$DIR/osd.0/whoami" ]; then
  uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(ceph osd new "$uuid")
  [ "$id" = 0 ] || { echo "start-s3: unexpected osd id $id (stale mon?)" >&2; exit 1; }
  rm -f "$DIR/osd.0.block"
  ceph-osd -i 0 --mkfs --osd-uuid "$uuid" >>"$DIR/log/osd.mkfs.out" 2>&1
  log "osd mkfs ($STORE)"
fi
start osd.0 ceph-osd -f -i 0
osd_up() { ceph osd dump | grep -q '^osd.0 up'; }
wait_for "osd up" 600 osd_up

# --- radosgw (creates its pools on first start)
start rgw radosgw -f -n client.rgw.ci
wait_for "rgw up" 900 curl -fsS -o /dev/null "http://127.0.0.1:$RGW_PORT/"

# --- S3 user with fixed keys, and the bucket
radosgw-admin user info --uid=ci >/dev/null 2>&1 ||
  radosgw-admin user create --uid=ci --display-name=CI \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
s3put() { # signed PUT with curl (>= 7.75); rgw needs x-amz-content-sha256
  curl -fsS -o /dev/null -X PUT -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" "http://127.0.0.1:$RGW_PORT/$1"
}
wait_for "bucket $BUCKET ready" 100 s3put "$BUCKET"

cat <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=$ACCESS_KEY
S3_SECRET_KEY=$SECRET_KEY
S3_REGION=us-east-1
S3_BUCKET=$BUCKET
EOF
