#!/usr/bin/env bash
# A one-node Ceph cluster with a RADOS Gateway (S3) on 127.0.0.1, for the tests that need an
# S3 server which enforces SSE-C (tests/ceph/fuse_ceph.rs). No systemd; everything but the
# packages lives in one directory:
#
#   scripts/ceph-test-server.sh --install          apt-install ceph-mon ceph-osd radosgw
#                                                  ceph-common if missing (Debian bookworm: Ceph
#                                                  16.2, about 50 s from the network)
#   scripts/ceph-test-server.sh start DIR [PORT]   start the cluster in DIR (created; must not
#                                                  hold a running cluster), S3 on 127.0.0.1:PORT
#                                                  (default 7480); prints endpoint=,
#                                                  access_key=, secret_key= lines when S3 answers
#   scripts/ceph-test-server.sh stop DIR           kill what `start DIR` started
#
# With S3CRYPTFS_CEPH_OWNER_PID=PID in the environment, `start` also leaves a watcher that stops
# the cluster once process PID is gone (the tests pass their own pid).
#
# The cluster: 1 monitor, 1 OSD on `memstore` (data in RAM), pools of size 1, no manager, cephx
# off, and radosgw with the beast frontend (tcp_nodelay=1: without it small GETs wait ~45 ms
# for delayed ACKs). SSE settings: `rgw crypt require ssl = false` (SSE-C and SSE-KMS over plain
# HTTP) and `rgw crypt s3 kms backend = testing` with the test keys `testkey-1` and `testkey-2`
# (for `--sse kms --sse-kms-key-id testkey-1`). One S3 user with fixed keys (TEST_ACCESS_KEY,
# TEST_SECRET_KEY below). Starts in about 7 s on 2 cores (most of it radosgw's own start-up).
#
# What this RGW (16.2.15, Debian bookworm) does, checked with boto3 and by tests/ceph/ (the
# store conformance suite asserts each point; docs/SERVERS.md has the whole list):
#   - enforces SSE-C: GET/HEAD without the key, or with a wrong one, answers 400; HEAD with
#     the key echoes its MD5;
#   - SSE-KMS works with the test keys (x-amz-server-side-encryption: aws:kms and the key id
#     on PUT, GET and HEAD);
#   - ignores SSE-S3: stores plaintext and answers without x-amz-server-side-encryption;
#   - CompleteMultipartUpload answers with an empty ETag and without SSE headers (HEAD gives
#     both; s3cryptfs asks HEAD);
#   - CopyObject of an SSE-C or SSE-KMS source answers 501 NotImplemented (plain sources
#     copy); UploadPartCopy from an SSE-C source answers 400 when the destination has another
#     SSE-C key or none (the same key works; s3cryptfs does not use UploadPartCopy). Where
#     CopyObject is refused, s3cryptfs copies through the client instead;
#   - If-Match on PutObject matches only the unquoted ETag (the quoted form always gives
#     412, and so does If-Match on a missing key); s3cryptfs retries unquoted once a HEAD
#     shows the condition holds. If-Match and If-None-Match on CompleteMultipartUpload are
#     ignored, and so are x-amz-copy-source-if-match on CopyObject and If-Match on
#     DeleteObject;
#   - CompleteMultipartUpload refuses a part list without every uploaded part (InvalidPart),
#     and answers 500 to an unknown or aborted upload id;
#   - S3 keys are RADOS object names: `osd max object name len` is raised to 2048 below so
#     that 1,024-byte keys fit (with 460, a 512-byte key failed with 500).
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
TEST_ACCESS_KEY=s3cryptfs-test-access
TEST_SECRET_KEY=s3cryptfs-test-secret-0123456789abcdef
# 32-byte test keys for the `testing` KMS backend (base64).
KMS_KEYS="testkey-1=YmluZ2JvbmdiaW5nYm9uZ2JpbmdvYm9uZ29ib25nb2I= testkey-2=c2Vjb25ka2V5c2Vjb25ka2V5c2Vjb25ka2V5c2Vjb24="
START_TIMEOUT_S=60

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

have_ceph() {
    command -v ceph-mon >/dev/null 2>&1 && command -v ceph-osd >/dev/null 2>&1 &&
        command -v radosgw >/dev/null 2>&1 && command -v radosgw-admin >/dev/null 2>&1 &&
        command -v ceph >/dev/null 2>&1 && command -v monmaptool >/dev/null 2>&1
}

install_ceph() {
    have_ceph && return 0
    command -v apt-get >/dev/null 2>&1 ||
        die "Ceph is missing and there is no apt-get: install ${PACKAGES[*]} yourself"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing ${PACKAGES[*]} needs root"
        sudo=(sudo -n)
    fi
    echo "==> installing ${PACKAGES[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${PACKAGES[@]}" >/dev/null
    have_ceph || die "installed ${PACKAGES[*]} but a Ceph command is still missing"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Whether process PID runs (a zombie does not: nothing may reap it in a container).
alive() {
    [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

# Kills the daemons whose pid files are in DIR/run, waiting for them to go. SIGKILL: the
# cluster is thrown away, and on SIGTERM the OSD would first write its in-memory store to DIR
# (stopping took 10 s that way).
stop_cluster() {
    local dir=$1 pidfile pid
    [ -d "$dir/run" ] || return 0
    for pidfile in "$dir"/run/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        # Only a process started from this directory's config: never a recycled pid.
        if [ -n "$pid" ] && grep -qF -- "$dir/ceph.conf" "/proc/$pid/cmdline" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                alive "$pid" || break
                sleep 0.1
            done
        fi
        rm -f "$pidfile"
    done
}

# Runs a daemon in the background with its pid in DIR/run/NAME.pid (the daemons' own pid files
# appear only once they are up; this one exists at once, so `stop` works after a failed start).
spawn() {
    local dir=$1 name=$2
    shift 2
    "$@" >>"$dir/log/$name.out" 2>&1 &
    echo $! >"$dir/run/$name.pid"
}

show_logs() {
    local dir=$1 f
    for f in "$dir"/log/*; do
        [ -s "$f" ] || continue
        printf -- '--- %s (last lines) ---\n' "$f" >&2
        tail -n 15 "$f" >&2
    done
}

start_cluster() {
    local dir=$1 port=$2
    have_ceph || die "Ceph is not installed: run scripts/ceph-test-server.sh --install"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -d "$dir/run" ] && compgen -G "$dir/run/*.pid" >/dev/null; then
        die "$dir holds a cluster already: scripts/ceph-test-server.sh stop $dir"
    fi
    rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/log"
    mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log"
    local mon_port fsid conf=$dir/ceph.conf
    mon_port=$(free_port)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
ms bind msgr1 = false
ms bind ipv6 = false
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# Without cephx only the crc mode exists; radosgw asks for secure mode to the monitor.
ms mon client mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.daemon.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
[mon]
mon data = $dir/mon/\$name
# The gateway creates its pools one by one, each an osdmap change the monitor batches for a
# second by default: 11 s of the start-up without these.
paxos propose interval = 0.05
paxos min wait = 0.01
[osd]
osd data = $dir/osd/\$name
osd objectstore = memstore
memstore device bytes = 4294967296
osd max object name len = 2048
osd max object namespace len = 64
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = $KMS_KEYS
rgw enable usage log = false
rgw thread pool size = 64
EOF
    local ceph=(ceph -c "$conf" --connect-timeout 20)
    monmaptool --create --clobber --addv a "v2:127.0.0.1:$mon_port" --fsid "$fsid" \
        "$dir/monmap" >"$dir/log/monmaptool.out" 2>&1 || { show_logs "$dir"; die "monmaptool failed"; }
    ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >>"$dir/log/mon.a.out" 2>&1 ||
        { show_logs "$dir"; die "ceph-mon --mkfs failed"; }
    spawn "$dir" mon.a ceph-mon -c "$conf" -i a -f

    # Register OSD 0, make its store and start it; it adds itself to the CRUSH map.
    local osd_uuid
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    "${ceph[@]}" osd new "$osd_uuid" 0 >>"$dir/log/ceph.out" 2>&1 ||
        { show_logs "$dir"; die "ceph osd new failed (is the monitor up?)"; }
    mkdir -p "$dir/osd/osd.0"
    ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/osd.0.out" 2>&1 ||
        { show_logs "$dir"; die "ceph-osd --mkfs failed"; }
    spawn "$dir" osd.0 ceph-osd -c "$conf" -i 0 -f

    # The gateway creates its pools on start; the user can be created meanwhile.
    spawn "$dir" client.rgw radosgw -c "$conf" -n client.rgw -f
    radosgw-admin -c "$conf" user create --uid=s3cryptfs-test --display-name="s3cryptfs tests" \
        --access-key="$TEST_ACCESS_KEY" --secret-key="$TEST_SECRET_KEY" \
        >>"$dir/log/radosgw-admin.out" 2>&1 ||
        { show_logs "$dir"; stop_cluster "$dir"; die "radosgw-admin user create failed"; }

    local deadline=$((SECONDS + START_TIMEOUT_S))
    until python3 - "$port" <<'EOF' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass  # any S3 answer (403 for an anonymous request) means it serves
EOF
    do
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_logs "$dir"
            stop_cluster "$dir"
            die "radosgw did not answer on 127.0.0.1:$port within ${START_TIMEOUT_S}s"
        fi
        for name in mon.a osd.0 client.rgw; do
            if ! kill -0 "$(cat "$dir/run/$name.pid")" 2>/dev/null; then
                show_logs "$dir"
                stop_cluster "$dir"
                die "$name exited during start-up"
            fi
        done
        sleep 0.2
    done
    # A test harness passes its pid: a cluster it cannot stop (killed, crashed) stops itself.
    if [ -n "${S3CRYPTFS_CEPH_OWNER_PID:-}" ]; then
        local owner=$S3CRYPTFS_CEPH_OWNER_PID
        (
            while kill -0 "$owner" 2>/dev/null; do sleep 1; done
            stop_cluster "$dir"
        ) </dev/null >/dev/null 2>&1 &
    fi
    echo "endpoint=http://127.0.0.1:$port"
    echo "access_key=$TEST_ACCESS_KEY"
    echo "secret_key=$TEST_SECRET_KEY"
}

case "${1:-}" in
    --install)
        install_ceph
        ;;
    start)
        [ $# -ge 2 ] || die "usage: $0 start DIR [PORT]"
        start_cluster "$2" "${3:-7480}"
        ;;
    stop)
        [ $# -ge 2 ] || die "usage: $0 stop DIR"
        stop_cluster "$(cd "$2" 2>/dev/null && pwd || echo "$2")"
        ;;
    -h | --help)
        sed -n '2,46p' "$0"
        ;;
    *)
        die "usage: $0 --install | start DIR [PORT] | stop DIR (see --help)"
        ;;
esac
