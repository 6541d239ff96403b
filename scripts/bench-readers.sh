#!/usr/bin/env bash
# Parallel sequential readers (docs/BENCHMARKS.md, "Parallel readers"): N files read at once
# with `cat` through the kernel from a fresh mount of a directory store, and what the daemon
# fetched for them, from `s3cryptfs status --json`: GET requests, bytes fetched against the
# bytes read, the memory budget's high-water mark, and the wall time of the reads.
#
#   scripts/bench-readers.sh [--readers N] [--mib N] [--memory-limit SIZE] [--work DIR]
#
#   --readers       files read at once (default 4)
#   --mib           size of each file in MiB (default 100)
#   --memory-limit  the mount's --memory-limit (default 64M, the daemon's default)
#   --work          where the store, the key and the mount point go (default: a new directory
#                   under /var/tmp); removed at the end
#
# Runs as root (FUSE, and it drops the page cache before reading). s3cryptfs is $S3CRYPTFS_BIN,
# else the dev build of this checkout (`cargo build --bin s3cryptfs`, honouring
# $CARGO_TARGET_DIR).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
READERS=4
MIB=100
LIMIT=64M
WORK=

die() { echo "bench-readers: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --readers) READERS=${2:?}; shift 2 ;;
        --mib) MIB=${2:?}; shift 2 ;;
        --memory-limit) LIMIT=${2:?}; shift 2 ;;
        --work) WORK=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ $READERS =~ ^[0-9]+$ && $READERS -ge 1 ]] || die "--readers must be a positive number"
[[ $MIB =~ ^[0-9]+$ && $MIB -ge 1 ]] || die "--mib must be a positive number of MiB"
[ "$(id -u)" -eq 0 ] || die "run as root (FUSE mounts, dropping the page cache)"

BIN=${S3CRYPTFS_BIN:-}
if [ -z "$BIN" ]; then
    (cd "$ROOT" && cargo build --quiet --bin s3cryptfs) || die "cargo build failed"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/s3cryptfs
fi
[ -x "$BIN" ] || die "no s3cryptfs binary at $BIN"

if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /var/tmp/s3cryptfs-readers.XXXXXX)
else
    mkdir -p "$WORK"
fi
MNT=$WORK/mnt
cleanup() {
    "$BIN" unmount "$MNT" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/store" "$MNT"
mount_it() {
    "$BIN" mount --key-file "$WORK/key" --memory-limit "$LIMIT" "file://$WORK/store" "$MNT"
}

"$BIN" init --key-file "$WORK/key" "file://$WORK/store" >/dev/null
mount_it
for i in $(seq "$READERS"); do
    head -c $((MIB << 20)) /dev/urandom >"$MNT/f$i"
done
"$BIN" unmount "$MNT"
mount_it
sync
echo 3 >/proc/sys/vm/drop_caches

start=$(date +%s.%N)
pids=()
for i in $(seq "$READERS"); do
    cat "$MNT/f$i" >/dev/null &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || die "a reader failed"
done
end=$(date +%s.%N)

"$BIN" status --json "$MNT" | python3 -c '
import json, sys
readers, mib, limit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
secs = float(sys.argv[5]) - float(sys.argv[4])
j = json.load(sys.stdin)
get = next((r for r in j["requests"] if r["kind"].lower() == "get"), {"requests": 0, "bytes": 0})
read = readers * mib
fetched = get["bytes"] / 2**20
n = get["requests"]
high = j["memory"]["high_water"] / 2**20
print(f"--memory-limit {limit}, {readers} readers x {mib} MiB: {n} GETs, "
      f"{fetched:.1f} MiB fetched for {read} MiB read ({fetched / read:.3f}x), "
      f"memory high water {high:.1f} MiB, {secs:.2f} s")
' "$READERS" "$MIB" "$LIMIT" "$start" "$end"
