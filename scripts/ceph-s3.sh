#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (one monitor, one OSD, radosgw) serving S3 on 127.0.0.1,
# for archiver's tests and benchmarks. No cephadm, Docker or systemd: the daemons run from
# Debian's packages (radosgw ceph-mon ceph-osd) with every path inside one directory.
#
#   scripts/ceph-s3.sh start     build the cluster if needed, start it, wait until S3 answers
#   scripts/ceph-s3.sh stop      stop the daemons (radosgw, then OSD, then monitor), keep the data
#   scripts/ceph-s3.sh clean     SIGKILL the daemons and delete the directory
#   scripts/ceph-s3.sh env       print the variables a client needs (eval "$(... env)")
#
# Settings (fixed when the directory is first built):
#   CEPH_S3_DIR    (default /tmp/archiver-ceph-s3)    CEPH_S3_PORT (default 17480)
#   CEPH_MON_PORT  (default 13300)                    CEPH_OSD_PORTS (default 16800-16899)
#   CEPH_S3_STORE  bluestore (default: a sparse 10 GiB file) or memstore (RAM)
# Facts behind the choices: ../shared/notes/ceph-s3-postgres.md (measured on this kind of machine).
set -euo pipefail

DIR=${CEPH_S3_DIR:-/tmp/archiver-ceph-s3}
PORT=${CEPH_S3_PORT:-17480}
MON_PORT=${CEPH_MON_PORT:-13300}
OSD_PORTS=${CEPH_OSD_PORTS:-16800-16899}
STORE=${CEPH_S3_STORE:-bluestore}
ACCESS=archiver-test-access
SECRET=archiver-test-secret-not-for-production
CONF=$DIR/ceph.conf
SETTINGS="port=$PORT mon=$MON_PORT osd=$OSD_PORTS store=$STORE"

die() { echo "ceph-s3: $*" >&2; exit 1; }
ceph_() { ceph -c "$CONF" -n client.admin -k "$DIR/keyring" --connect-timeout 10 "$@"; }

alive() { # PID file, expected command name: alive and not a zombie
  local pidfile=$1 comm=$2 pid state
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm")" = "$comm" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$state" != Z ]
}

signal() { # PID file, command name, signal
  alive "$1" "$2" && kill "-$3" "$(cat "$1")" 2>/dev/null || true
}

wait_gone() { # PID file, command name, seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do alive "$1" "$2" || return 0; sleep 0.1; done
  return 1
}

write_conf() {
  cat >"$CONF" <<EOF
[global]
fsid = $(cat "$DIR/fsid")
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $DIR/keyring
log_file = $DIR/log/\$name.log
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$name.asok
run_dir = $DIR/run
mon_data = $DIR/mon/\$cluster-\$id
osd_data = $DIR/osd/\$cluster-\$id
osd_objectstore = $STORE
bluestore_block_create = true
bluestore_block_size = 10737418240
osd_fast_shutdown = $([ "$STORE" = memstore ] && echo false || echo true)
memstore_device_bytes = 2147483648
osd_memory_target = 939524096
ms_bind_port_min = ${OSD_PORTS%-*}
ms_bind_port_max = ${OSD_PORTS#*-}
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
paxos_propose_interval = 0.1
mon_osd_down_out_interval = 0
[client.rgw.gw0]
rgw_frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw_data = $DIR/rgw
rgw_dns_name = 127.0.0.1
rgw_enable_usage_log = false
EOF
}

build() {
  mkdir -p "$DIR"/{log,run,mon,osd,rgw}
  echo "$SETTINGS" >"$DIR/settings"
  touch "$DIR/.made-by-archiver"
  uuidgen 2>/dev/null >"$DIR/fsid" || python3 -c 'import uuid; print(uuid.uuid4())' >"$DIR/fsid"
  write_conf
  local k=$DIR/keyring
  ceph-authtool --create-keyring "$k" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' \
    --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$k" --gen-key -n client.rgw.gw0 --cap mon 'allow rw' --cap osd 'allow rwx' \
    --cap mgr 'allow rw' >/dev/null
  monmaptool --create --fsid "$(cat "$DIR/fsid")" --addv a "[v2:127.0.0.1:$MON_PORT]" \
    "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$k" 2>>"$DIR/log/build.log"
}

start_mon() {
  alive "$DIR/run/mon.a.pid" ceph-mon && return 0
  ceph-mon -c "$CONF" -i a 2>>"$DIR/log/start.log" || die "ceph-mon did not start (see $DIR/log)"
  local i
  for ((i = 0; i < 150; i++)); do
    if grep -q "unable to bind" "$DIR/log/mon.a.log" 2>/dev/null; then
      die "$(grep -o 'unable to bind monitor to [^ ]*' "$DIR/log/mon.a.log" | tail -1)"
    fi
    ceph_ mon stat >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "the monitor did not answer on 127.0.0.1:$MON_PORT"
}

start_osd() {
  if [ ! -f "$DIR/osd/uuid" ]; then
    local uuid
    uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    ceph_ osd new "$uuid" 0 >/dev/null
    mkdir -p "$DIR/osd/ceph-0"
    ceph-authtool "$DIR/keyring" -n osd.0 -p >/dev/null
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" 2>>"$DIR/log/build.log" >/dev/null ||
      die "ceph-osd --mkfs failed (see $DIR/log)"
    echo "$uuid" >"$DIR/osd/uuid"
  fi
  alive "$DIR/run/osd.0.pid" ceph-osd || ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/start.log" >/dev/null
  local i
  for ((i = 0; i < 600; i++)); do
    ceph_ osd dump 2>/dev/null | grep -q '^osd.0 up' && return 0
    sleep 0.1
  done
  die "osd.0 did not come up (see $DIR/log/osd.0.log)"
}

rgw_owns_port() { # radosgw's own socket listens on the port (not another program's)
  local pid inode hexport
  pid=$(cat "$DIR/run/client.rgw.gw0.pid" 2>/dev/null) || return 1
  hexport=$(printf '%04X' "$PORT")
  for inode in $(awk -v p=":$hexport" '$2 ~ p"$" && $4 == "0A" {print $10}' /proc/net/tcp); do
    ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "socket:\[$inode\]" && return 0
  done
  return 1
}

start_rgw() {
  if [ ! -f "$DIR/rgw/user" ]; then
    radosgw-admin -c "$CONF" -n client.admin -k "$DIR/keyring" user create --uid=archiver \
      --display-name=archiver --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null 2>>"$DIR/log/build.log" ||
      die "radosgw-admin user create failed (see $DIR/log/build.log)"
    touch "$DIR/rgw/user"
  fi
  if alive "$DIR/run/client.rgw.gw0.pid" radosgw && rgw_owns_port; then return 0; fi
  local from
  from=$(stat -c %s "$DIR/log/client.rgw.gw0.log" 2>/dev/null || echo 0)
  radosgw -c "$CONF" -n client.rgw.gw0 -k "$DIR/keyring" 2>>"$DIR/log/start.log" ||
    die "radosgw did not start"
  local i
  for ((i = 0; i < 300; i++)); do
    if tail -c +"$((from + 1))" "$DIR/log/client.rgw.gw0.log" 2>/dev/null | grep -q "failed to bind"; then
      signal "$DIR/run/client.rgw.gw0.pid" radosgw KILL
      die "radosgw failed to bind 127.0.0.1:$PORT: Address already in use"
    fi
    if rgw_owns_port && curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "radosgw did not answer on 127.0.0.1:$PORT (see $DIR/log/client.rgw.gw0.log)"
}

start() {
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool ceph curl; do
    command -v "$b" >/dev/null || die "$b is missing: apt-get install radosgw ceph-mon ceph-osd curl"
  done
  if [ -f "$DIR/settings" ]; then
    [ "$(cat "$DIR/settings")" = "$SETTINGS" ] ||
      die "$DIR was built with other settings ($(cat "$DIR/settings")): run clean first"
  else
    [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ] && die "$DIR exists and is not ours"
    build
  fi
  start_mon
  start_osd
  start_rgw
  echo "ceph-s3: S3 on http://127.0.0.1:$PORT" >&2
}

stop() {
  [ -d "$DIR/run" ] || return 0
  signal "$DIR/run/client.rgw.gw0.pid" radosgw TERM
  wait_gone "$DIR/run/client.rgw.gw0.pid" radosgw 10 || signal "$DIR/run/client.rgw.gw0.pid" radosgw KILL
  signal "$DIR/run/osd.0.pid" ceph-osd TERM
  wait_gone "$DIR/run/osd.0.pid" ceph-osd 30 || signal "$DIR/run/osd.0.pid" ceph-osd KILL
  signal "$DIR/run/mon.a.pid" ceph-mon TERM
  wait_gone "$DIR/run/mon.a.pid" ceph-mon 10 || signal "$DIR/run/mon.a.pid" ceph-mon KILL
}

clean() {
  [ -e "$DIR" ] || return 0
  [ -f "$DIR/.made-by-archiver" ] || [ -z "$(ls -A "$DIR")" ] || die "refusing to delete $DIR: not made by this script"
  for d in client.rgw.gw0:radosgw osd.0:ceph-osd mon.a:ceph-mon; do
    signal "$DIR/run/${d%%:*}.pid" "${d#*:}" KILL
  done
  for d in client.rgw.gw0:radosgw osd.0:ceph-osd mon.a:ceph-mon; do
    wait_gone "$DIR/run/${d%%:*}.pid" "${d#*:}" 5 || true
  done
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  env)
    echo "export AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1"
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT"
    ;;
  *) echo "usage: $0 start|stop|clean|env" >&2; exit 2 ;;
esac
