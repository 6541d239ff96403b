#!/usr/bin/env bash
# The benchmark suite (docs/BENCHMARKS.md): one S3 server on 127.0.0.1, each contender mounted
# on it in turn, one fixed workload, a markdown table on stdout.
#
#   scripts/bench.sh [--server ceph|moto|s3rver] [--size MIB] [--only NAME[,NAME...]] [--repeat N]
#                    [--out DIR] [--keep]
#
#   --server   ceph: a one-node Ceph RGW (scripts/ceph-test-server.sh; the default when Ceph is
#              installed) or moto (python3 -m moto.server; its ranged GETs are slow, so it
#              understates every client that reads in ranges) or s3rver (Node.js, behind
#              scripts/s3rver-server.js: listings without ETags, no conditional requests)
#   --size     size of the big file in MiB (default 1024; e.g. 64 for a quick run)
#   --only     contenders to run: s3cryptfs, s3cryptfs-plain, rclone-off, rclone-writes, s3fs,
#              raw (default: all but s3cryptfs-plain, the s3cryptfs vault with plaintext names)
#   --repeat   run the whole workload N times per contender and show medians (default 1); the
#              contenders take turns, in an order that rotates each repetition
#   --out      also keep the raw results, the table (table.md) and the daemon logs in DIR
#   --keep     keep the work directory (/tmp/s3cryptfs-bench.*) for inspection
#
# Runs as root (it drops the page cache and mounts FUSE file systems). Installs what is missing:
# rclone, s3fs, fio, rsync (apt), boto3 and moto (pip). s3cryptfs is the release build of this
# checkout (cargo build --release; $CARGO_TARGET_DIR is honoured), or $S3CRYPTFS_BIN;
# $S3CRYPTFS_CEPH_SCRIPT names another Ceph start script. About 8 minutes at full size on Ceph.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/scripts/bench
ALL_CONTENDERS=(s3cryptfs s3cryptfs-plain rclone-off rclone-writes s3fs raw)
DEFAULT_CONTENDERS=(s3cryptfs rclone-off rclone-writes s3fs raw)
SERVER=auto
SIZE_MIB=1024
ONLY=
REPEAT=1
OUT=
KEEP=0
PHASE_TIMEOUT_S=600
ACCESS_KEY=bench-access-key
SECRET_KEY=bench-secret-key

die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --server) SERVER=${2:?}; shift 2 ;;
        --size) SIZE_MIB=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --repeat) REPEAT=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -ge 16 ]] || die "--size must be a number of MiB >= 16"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] || die "--repeat must be a positive number"
CONTENDERS=("${DEFAULT_CONTENDERS[@]}")
if [ -n "$ONLY" ]; then
    IFS=, read -r -a CONTENDERS <<<"$ONLY"
    for c in "${CONTENDERS[@]}"; do
        [[ " ${ALL_CONTENDERS[*]} " == *" $c "* ]] || die "unknown contender $c (${ALL_CONTENDERS[*]})"
    done
fi
[ "$(id -u)" -eq 0 ] || die "run as root: the benchmark drops the page cache between phases"
[ -e /dev/fuse ] || die "/dev/fuse is missing (in a container: --device /dev/fuse --cap-add SYS_ADMIN)"

# --- prerequisites ------------------------------------------------------------------------------

install_prerequisites() {
    local missing=() tool
    for tool in rclone s3fs fio rsync fusermount3 mountpoint; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        local pkgs=() t
        for t in "${missing[@]}"; do
            case $t in fusermount3) pkgs+=(fuse3) ;; mountpoint) pkgs+=(util-linux) ;; *) pkgs+=("$t") ;; esac
        done
        say "installing ${pkgs[*]} (apt)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
            "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed"
    fi
    if ! python3 -c 'import boto3' 2>/dev/null; then
        say "installing boto3 (pip)"
        python3 -m pip install --quiet boto3 ||
            python3 -m pip install --quiet --break-system-packages boto3 || die "pip install boto3 failed"
    fi
}

find_ceph_script() {
    local s=${S3CRYPTFS_CEPH_SCRIPT:-$ROOT/scripts/ceph-test-server.sh}
    [ -x "$s" ] && command -v radosgw >/dev/null 2>&1 && echo "$s"
}

build_s3cryptfs() {
    if [ -n "${S3CRYPTFS_BIN:-}" ]; then
        BIN=$S3CRYPTFS_BIN
    else
        say "building s3cryptfs (cargo build --release --bin s3cryptfs)"
        (cd "$ROOT" && cargo build --release --bin s3cryptfs >&2) || die "cargo build failed"
        BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/s3cryptfs
    fi
    [ -x "$BIN" ] || die "no s3cryptfs binary at $BIN"
}

# --- the server ---------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until the server (PID, NAME) at $ENDPOINT answers HTTP (any status).
wait_http() {
    local i
    for i in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', ${ENDPOINT##*:}), 1)" \
            2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || die "$2 exited (see $WORK/logs/$2.log)"
        sleep 0.2
    done
    die "$2 did not answer on $ENDPOINT (see $WORK/logs/$2.log)"
}

start_server() {
    local port
    port=$(free_port)
    if [ "$SERVER" = auto ]; then
        if [ -n "$(find_ceph_script)" ]; then SERVER=ceph; else SERVER=moto; fi
    fi
    case $SERVER in
        ceph)
            CEPH_SCRIPT=$(find_ceph_script) ||
                die "--server ceph needs scripts/ceph-test-server.sh and Ceph (scripts/ceph-test-server.sh --install)"
            say "starting Ceph RGW on 127.0.0.1:$port"
            local out
            out=$("$CEPH_SCRIPT" start "$WORK/ceph" "$port") || die "Ceph did not start"
            ENDPOINT=$(sed -n 's/^endpoint=//p' <<<"$out")
            ACCESS_KEY=$(sed -n 's/^access_key=//p' <<<"$out")
            SECRET_KEY=$(sed -n 's/^secret_key=//p' <<<"$out")
            SERVER_DESC="Ceph RGW $(radosgw --version 2>/dev/null | awk '{print $3}') (memstore OSD)"
            ;;
        moto)
            "$ROOT/scripts/s3-test-server.sh" --install >&2 || die "cannot install moto"
            say "starting moto on 127.0.0.1:$port"
            python3 -m moto.server -H 127.0.0.1 -p "$port" >"$WORK/logs/moto.log" 2>&1 &
            SERVER_PID=$!
            ENDPOINT=http://127.0.0.1:$port
            wait_http "$SERVER_PID" moto
            SERVER_DESC="moto $(python3 -c 'import moto; print(moto.__version__)')"
            ;;
        s3rver)
            "$ROOT/scripts/s3rver-test-server.sh" --install >&2 || die "cannot install s3rver"
            local modules=${S3CRYPTFS_S3RVER_DIR:-$HOME/.cache/s3cryptfs/s3rver}/node_modules
            say "starting s3rver on 127.0.0.1:$port"
            # Its objects live on a tmpfs, as Ceph's OSD lives in memory here: dropping the
            # page cache between phases must not send the server to the disk.
            mkdir -p "$WORK/s3rver-data"
            mount -t tmpfs -o "size=$((SIZE_MIB * 4 + 1024))m" bench-s3rver "$WORK/s3rver-data" ||
                die "cannot mount a tmpfs for s3rver"
            # The wrapper exits when its stdin closes: a FIFO this script holds open keeps it
            # alive, and lets it die with the script.
            mkfifo "$WORK/s3rver.stdin"
            exec {S3RVER_STDIN}<>"$WORK/s3rver.stdin"
            NODE_PATH=$modules \
                node --openssl-legacy-provider "$ROOT/scripts/s3rver-server.js" "$port" \
                "$WORK/s3rver-data" <"$WORK/s3rver.stdin" >"$WORK/logs/s3rver.log" 2>&1 &
            SERVER_PID=$!
            ACCESS_KEY=S3RVER SECRET_KEY=S3RVER
            ENDPOINT=http://127.0.0.1:$port
            wait_http "$SERVER_PID" s3rver
            SERVER_DESC="s3rver $(sed -n 's/^ *"version": "\(.*\)",/\1/p' \
                "$modules/s3rver/package.json") (listings without ETags)"
            ;;
        *) die "--server must be ceph, moto or s3rver" ;;
    esac
    export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true BENCH_ENDPOINT=$ENDPOINT
    # Plain HTTP on 127.0.0.1: a CA bundle from the environment only breaks rclone's S3 client.
    unset AWS_ENDPOINT_URL AWS_PROFILE AWS_SESSION_TOKEN AWS_CA_BUNDLE
}

stop_server() {
    if [ -n "${SERVER_PID:-}" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    [ -n "${CEPH_SCRIPT:-}" ] && "$CEPH_SCRIPT" stop "$WORK/ceph" >/dev/null 2>&1
    mountpoint -q "$WORK/s3rver-data" 2>/dev/null && umount "$WORK/s3rver-data"
}

s3raw() { python3 "$HERE/s3raw.py" "$@"; }

# --- contenders: mount, unmount, wait until durable ---------------------------------------------

# Writes the rclone config (an s3 remote and a crypt remote over it) into the work directory.
write_peer_configs() {
    export RCLONE_CONFIG=$WORK/rclone.conf XDG_CACHE_HOME=$WORK/xdg-cache
    cat >"$RCLONE_CONFIG" <<EOF
[s3]
type = s3
provider = Other
access_key_id = $ACCESS_KEY
secret_access_key = $SECRET_KEY
endpoint = $ENDPOINT
region = us-east-1
force_path_style = true
EOF
    chmod 600 "$RCLONE_CONFIG"
    printf '%s:%s\n' "$ACCESS_KEY" "$SECRET_KEY" >"$WORK/s3fs.passwd"
    chmod 600 "$WORK/s3fs.passwd"
}

# Adds the crypt remote `crypt-BUCKET` over s3:BUCKET/crypt.
rclone_crypt_remote() {
    local bucket=$1 pass
    pass=$(rclone obscure "bench-password-$bucket")
    cat >>"$RCLONE_CONFIG" <<EOF

[crypt-$bucket]
type = crypt
remote = s3:$bucket/crypt
password = $pass
EOF
}

prepare() {  # NAME BUCKET: one-time setup of the contender on a fresh bucket
    local name=$1 bucket=$2
    case $name in
        s3cryptfs | s3cryptfs-plain)
            local names=()
            [ "$name" = s3cryptfs-plain ] && names=(--plain-names)
            "$BIN" init --key-file "$WORK/vault.key" "${names[@]}" --endpoint "$ENDPOINT" \
                --path-style "s3://$bucket/vault" >>"$WORK/logs/$bucket.log" 2>&1
            ;;
        rclone-*) rclone_crypt_remote "$bucket" ;;
        s3fs) ;;
    esac
}

# Mounts NAME on $MNT and sets DAEMON_PID; returns non-zero if the mount does not come up.
mount_contender() {
    local name=$1 bucket=$2 log=$WORK/logs/$bucket.log
    case $name in
        s3cryptfs | s3cryptfs-plain)
            mkdir -p "$WORK/staging"
            # shellcheck disable=SC2086 # $S3CRYPTFS_MOUNT_ARGS is a list of arguments
            "$BIN" mount -f --key-file "$WORK/vault.key" --endpoint "$ENDPOINT" --path-style \
                --staging-dir "$WORK/staging" ${S3CRYPTFS_MOUNT_ARGS:-} \
                "s3://$bucket/vault" "$MNT" >>"$log" 2>&1 &
            ;;
        rclone-off | rclone-writes)
            RC_PORT=$(free_port)
            rclone mount "crypt-$bucket:" "$MNT" --vfs-cache-mode "${name#rclone-}" \
                --cache-dir "$WORK/rclone-cache" --rc --rc-addr "127.0.0.1:$RC_PORT" \
                --rc-no-auth >>"$log" 2>&1 &
            ;;
        s3fs)
            s3fs "$bucket" "$MNT" -f -o "url=$ENDPOINT,use_path_request_style" \
                -o "passwd_file=$WORK/s3fs.passwd,endpoint=us-east-1" >>"$log" 2>&1 &
            ;;
    esac
    DAEMON_PID=$!
    CPU_LAST=0
    local i
    for i in $(seq 300); do
        mountpoint -q "$MNT" && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: $name did not mount (see $log)" >&2
    tail -n 5 "$log" >&2
    return 1
}

unmount_contender() {
    local name=$1
    rss_sample
    case $name in
        s3cryptfs*) "$BIN" unmount "$MNT" >/dev/null 2>&1 || fusermount3 -u "$MNT" ;;
        *) fusermount3 -u "$MNT" || fusermount3 -uz "$MNT" ;;
    esac
    local i
    for i in $(seq 1200); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "bench: $name (pid $DAEMON_PID) did not exit after unmount; killing it" >&2
        kill -KILL "$DAEMON_PID"
        fusermount3 -uz "$MNT" 2>/dev/null
    fi
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
}

# Returns once everything written so far is in the store. s3cryptfs, rclone without a cache
# and s3fs upload before close/fsync returns; rclone's write cache uploads after close (after
# --vfs-write-back, default 5 s), so its time includes waiting for the upload queue to drain.
wait_durable() {
    local name=$1
    [ "$name" = rclone-writes ] || return 0
    local stats pending
    for _ in $(seq 6000); do
        stats=$(rclone rc --url "http://127.0.0.1:$RC_PORT/" vfs/stats 2>/dev/null) || return 1
        pending=$(python3 -c 'import json, sys; d = json.load(sys.stdin)["diskCache"]
print(d["uploadsInProgress"] + d["uploadsQueued"])' <<<"$stats") || return 1
        [ "$pending" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

drop_caches() { echo 3 >/proc/sys/vm/drop_caches; }

remount_cold() {  # NAME BUCKET
    unmount_contender "$1"
    [ "$1" = rclone-writes ] && rm -rf "$WORK/rclone-cache"
    drop_caches
    mount_contender "$1" "$2"
}

# --- measuring ----------------------------------------------------------------------------------

declare -A RSS_KIB CPU_TICKS
RSS_KEY=
CPU_LAST=0

# The daemon's CPU time (user + system) in clock ticks.
cpu_ticks() {
    sed 's/.*) //' "/proc/$DAEMON_PID/stat" 2>/dev/null | awk '{print $12 + $13}'
}

# Folds the daemon's peak RSS since the phase began into the phase's maximum, and adds the CPU
# time it used since the last sample to the phase's total.
rss_sample() {
    [ -n "$RSS_KEY" ] && [ -n "${DAEMON_PID:-}" ] || return 0
    local hwm ticks
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null)
    if [ -n "$hwm" ] && [ "${RSS_KIB[$RSS_KEY]:-0}" -lt "$hwm" ]; then RSS_KIB[$RSS_KEY]=$hwm; fi
    ticks=$(cpu_ticks)
    if [ -n "$ticks" ]; then
        CPU_TICKS[$RSS_KEY]=$((${CPU_TICKS[$RSS_KEY]:-0} + ticks - CPU_LAST))
        CPU_LAST=$ticks
    fi
}

# Starts measuring the peak RSS (echo 5 > clear_refs resets VmHWM) and CPU time of a phase.
rss_phase() {
    rss_sample
    RSS_KEY=$1
    [ -n "${DAEMON_PID:-}" ] || return 0
    echo 5 >"/proc/$DAEMON_PID/clear_refs" 2>/dev/null
    CPU_LAST=$(cpu_ticks)
    CPU_LAST=${CPU_LAST:-0}
}

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.4f}')" "$1" "$(now)"; }
record() { printf '%s %s\n' "$1" "$2" >>"$RESULT"; }

# A no-change `rsync -a --stats` of the tree into the mount: its time as KEY_s, and the files
# it sent anyway as KEY_sent (the caller's $bucket names the log).
rsync_no_change() {  # KEY
    local stats
    if timed rsync -a --stats "$WORK/src/tree/" "$MNT/tree/" >"$WORK/$1.out" \
        2>>"$WORK/logs/$bucket.rsync"; then
        record "$1_s" "$T"
        stats=$(sed -n 's/^Number of regular files transferred: //p' "$WORK/$1.out" | tr -d ,)
        record "$1_sent" "${stats:-fail:unparsed}"
    else record "$1_s" "fail:rc=$?"; fi
}
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.3f}')" "$1" "$2"; }

# Times `"$@"` (then wait_durable) under the phase timeout; sets T, returns the status. A
# process blocked in a FUSE request ignores even SIGKILL, so past the timeout the watchdog kills
# the daemon, which aborts its requests (the phase then fails and the run goes on).
timed() {
    local t0 rc watchdog=
    if [ -n "${DAEMON_PID:-}" ]; then
        (
            for _ in $(seq "$PHASE_TIMEOUT_S"); do sleep 1; done
            echo "bench: $CONTENDER: phase timed out after ${PHASE_TIMEOUT_S}s; killing pid $DAEMON_PID" >&2
            kill -KILL "$DAEMON_PID"
        ) 2>/dev/null &
        watchdog=$!
    fi
    t0=$(now)
    if declare -F "$1" >/dev/null; then "$@"; else timeout "$PHASE_TIMEOUT_S" "$@"; fi
    rc=$?
    [ $rc -eq 0 ] && { wait_durable "$CONTENDER" || rc=90; }
    T=$(elapsed "$t0")
    if [ -n "$watchdog" ]; then
        kill "$watchdog" 2>/dev/null
        wait "$watchdog" 2>/dev/null
    fi
    return $rc
}

# 1,000 reads of a 1 GiB file: few of them land in a block or range an earlier one fetched, so
# the numbers are those of uncached reads (a time-based run would soon measure cache hits).
fio_random_read() {
    local json=$WORK/fio.json
    timeout "$PHASE_TIMEOUT_S" fio --name=randread --filename="$MNT/big" --rw=randread --bs=4k \
        --ioengine=psync --iodepth=1 --size="${SIZE_MIB}m" --number_ios=1000 --runtime=120 \
        --randrepeat=1 --invalidate=1 --output-format=json --output="$json" >/dev/null 2>&1 ||
        return 1
    python3 - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
p = r["clat_ns"]["percentile"]
print(f"rand_iops {r['iops']:.1f}")
print(f"rand_p50_ms {p['50.000000'] / 1e6:.3f}")
print(f"rand_p99_ms {p['99.000000'] / 1e6:.3f}")
EOF
}

create_small_files() {
    python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1]
os.mkdir(d)
body = b"\x5a" * 4096
for i in range(1000):
    with open(os.path.join(d, f"f{i:04d}"), "wb") as f:
        f.write(body)
EOF
}

ls_count() {  # ls -l, checking that it lists 1,000 files
    local n
    n=$(ls -l "$1" | grep -c '^-') || return 1
    [ "$n" -eq 1000 ] || { echo "bench: ls -l listed $n files, expected 1000" >&2; return 1; }
}

# Runs the workload on one contender; results go to $RESULT.
run_fuse_contender() {
    local name=$1 bucket=$2
    MNT=$WORK/mnt-$bucket
    mkdir -p "$MNT"
    prepare "$name" "$bucket" || { record mount fail:init; return 1; }
    RSS_KIB=()
    CPU_TICKS=()
    RSS_KEY=
    mount_contender "$name" "$bucket" || { record mount fail:mount; return 1; }

    say "$name: sequential write of $SIZE_MIB MiB"
    rss_phase rss_write_mib
    local wrote=1
    if timed dd if="$WORK/src/big" of="$MNT/big" bs=1M conv=fsync status=none; then
        record seq_write_mibs "$(ratio "$SIZE_MIB" "$T")"
    else
        record seq_write_mibs "fail:rc=$?"
        wrote=0
    fi

    say "$name: sequential read after remount"
    remount_cold "$name" "$bucket" || { record mount fail:remount; return 1; }
    rss_phase rss_read_mib
    if [ $wrote = 0 ]; then
        record seq_read_mibs "fail:not-written"
    elif timed dd if="$MNT/big" of=/dev/null bs=1M status=none &&
        [ "$(stat -c %s "$MNT/big")" -eq $((SIZE_MIB << 20)) ]; then
        record seq_read_mibs "$(ratio "$SIZE_MIB" "$T")"
    else record seq_read_mibs "fail:rc=$?"; fi

    say "$name: 1,000 random 4 KiB reads (fio)"
    remount_cold "$name" "$bucket" || { record mount fail:remount; return 1; }
    rss_phase rss_rand_mib
    if [ $wrote = 0 ]; then record rand_iops "fail:not-written"
    else fio_random_read >>"$RESULT" || record rand_iops "fail:fio"; fi

    say "$name: 1,000 creates, ls -l cold and warm"
    rss_phase rss_create_mib
    if timed create_small_files "$MNT/small"; then record create_s "$T"
    else record create_s "fail:rc=$?"; fi
    remount_cold "$name" "$bucket" || { record mount fail:remount; return 1; }
    if timed ls_count "$MNT/small"; then record ls_cold_s "$T"; else record ls_cold_s fail; fi
    if timed ls_count "$MNT/small"; then record ls_warm_s "$T"; else record ls_warm_s fail; fi

    say "$name: rsync of the tree, then a no-change rsync after remount, twice"
    rss_phase rss_rsync_mib
    if timed rsync -a "$WORK/src/tree/" "$MNT/tree/" 2>>"$WORK/logs/$bucket.rsync"; then
        record rsync_s "$T"
    else record rsync_s "fail:rc=$?"; fi
    remount_cold "$name" "$bucket" || { record mount fail:remount; return 1; }
    rsync_no_change rsync2
    # Again after another remount: a periodic backup's steady state (s3cryptfs keeps what the
    # rsync above HEADed in its attribute cache on disk; files it wrote itself are not in it).
    remount_cold "$name" "$bucket" || { record mount fail:remount; return 1; }
    rsync_no_change rsync3

    say "$name: sha256sum -c, du -s, rm -rf"
    remount_cold "$name" "$bucket" || { record mount fail:remount; return 1; }
    rss_phase rss_sha_mib
    local bad
    timed bash -c "cd '$MNT/tree' && sha256sum -c --quiet '$WORK/src/tree.sha256' >'$WORK/sha.out' 2>&1"
    bad=$(grep -c 'FAILED' "$WORK/sha.out")
    if [ -d "$MNT/tree" ]; then record sha_s "$T"; record sha_bad "$bad"; else record sha_s fail:no-tree; fi
    if timed du -s "$MNT/tree" >/dev/null 2>&1; then record du_s "$T"; else record du_s fail; fi
    if timed rm -rf "$MNT/big" "$MNT/small" "$MNT/tree"; then record rm_s "$T"
    else record rm_s "fail:rc=$?"; fi
    unmount_contender "$name"
    local key
    for key in "${!RSS_KIB[@]}"; do
        record "$key" "$((RSS_KIB[$key] / 1024))"
    done
    local hz
    hz=$(getconf CLK_TCK)
    for key in "${!CPU_TICKS[@]}"; do  # rss_write_mib -> cpu_write_s
        local phase=${key#rss_}
        record "cpu_${phase%_mib}_s" "$(ratio "${CPU_TICKS[$key]}" "$hz")"
    done
    RSS_KEY=
}

run_contender() {  # NAME REP
    CONTENDER=$1
    local bucket=bench-$1-$2
    RESULT=$WORK/results/$1.$2
    : >"$RESULT"
    s3raw mkbucket "$bucket" || die "cannot create bucket $bucket"
    if [ "$1" = raw ]; then
        say "raw server: boto3 PUT/GET, one and 8 streams, 4 KiB GETs, 1,000 PUTs, LIST"
        s3raw raw "$bucket" "$SIZE_MIB" "$RESULT" || record seq_write_mibs fail:raw
    else
        run_fuse_contender "$1" "$bucket"
        [ -n "${DAEMON_PID:-}" ] && unmount_contender "$1"
    fi
    s3raw rmbucket "$bucket" >/dev/null 2>&1
    # RGW frees deleted data in its garbage collector, by default hours later; the OSD is a
    # 4 GiB memstore, which a few contenders' big files fill.
    if [ "$SERVER" = ceph ]; then
        radosgw-admin -c "$WORK/ceph/ceph.conf" gc process --include-all >/dev/null 2>&1 ||
            echo "bench: radosgw-admin gc process failed; the OSD may fill up" >&2
    fi
    rm -rf "$WORK/rclone-cache" "$WORK/staging"
}

cleanup() {
    [ -n "${DAEMON_PID:-}" ] && unmount_contender "${CONTENDER:-x}"
    mountpoint -q "${WORK:-/nonexistent}/src" && umount "$WORK/src"
    stop_server
    if [ -n "$OUT" ] && [ -d "${WORK:-}" ]; then
        mkdir -p "$OUT" && cp -r "$WORK/results" "$WORK/logs" "$OUT/" 2>/dev/null
    fi
    if [ "$KEEP" = 1 ]; then echo "bench: work directory kept: $WORK" >&2
    elif [ -n "${WORK:-}" ]; then rm -rf "$WORK"; fi
}

# --- main ---------------------------------------------------------------------------------------

install_prerequisites
build_s3cryptfs
WORK=$(mktemp -d /tmp/s3cryptfs-bench.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/logs" "$WORK/results"
START=$SECONDS
start_server
write_peer_configs
# Sources live on tmpfs, so dropping the page cache between phases never makes them slow.
mkdir -p "$WORK/src"
mount -t tmpfs -o "size=$((SIZE_MIB + 512))m" bench-src "$WORK/src" || die "cannot mount tmpfs"
say "generating the sources: $SIZE_MIB MiB random file, 2,000-file tree"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$WORK/src/big"
python3 "$HERE/tree.py" "$WORK/src/tree" >&2

# The contenders take turns, and the order rotates each repetition so that none always runs
# first (on a loaded machine the order matters).
N=${#CONTENDERS[@]}
for rep in $(seq "$REPEAT"); do
    for i in $(seq 0 $((N - 1))); do
        c=${CONTENDERS[$(((i + rep - 1) % N))]}
        say "run $rep/$REPEAT: $c on $SERVER_DESC"
        run_contender "$c" "$rep"
    done
done

TABLE=$(python3 "$HERE/report.py" "$WORK/results" "$SIZE_MIB" "${CONTENDERS[@]}")
{
    echo "Server: $SERVER_DESC on 127.0.0.1. s3cryptfs $("$BIN" --version | awk '{print $2}'),"
    echo "$(rclone version 2>/dev/null | head -1), s3fs $(s3fs --version 2>/dev/null | grep -o -m1 'V[0-9.]*')."
    echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $((SECONDS - START)) s in all."
    echo
    echo "$TABLE"
} | tee "$WORK/table.md"
[ -n "$OUT" ] && mkdir -p "$OUT" && cp "$WORK/table.md" "$OUT/"
exit 0
