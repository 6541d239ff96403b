#!/usr/bin/env bash
# The size benchmark (docs/BENCHMARKS.md, "Size"): a vault of a million files on a directory
# store, mounted through FUSE, and what the daemon's memory and time do when it is walked.
#
#   scripts/bench-size.sh [--dirs N] [--files N] [--big N] [--tree N] [--work DIR] [--keep]
#
#   --dirs, --files  N directories of N files each (default 900 x 1000)
#   --big            files in the one large directory `big` (default 100000)
#   --tree           files of the rsync tree (default 100000, in directories of 1,000)
#   --work           where the store, the key and the rsync source go (default: a new
#                    directory under /var/tmp, on disk); removed at the end unless --keep
#
# Phases, each with the daemon's peak (VmHWM, reset with clear_refs before the phase) and final
# (VmRSS) resident memory: `find MNT | wc -l` and `ls -lR MNT` of the whole vault; after a
# remount, the time to the first entry of `big` (the first getdents) and to all of it; an
# `rsync -a` of the tree into the mount, then after a remount a no-change `rsync -a`, with the
# files it re-sent. The vault's objects are written by `cargo bench --bench size_vault` (through
# the library, not the mount: creating a million files through FUSE takes hours), under
# eatmydata when it is installed (one `sync` at the end instead of an fsync per object). The
# first rsync, which only fills the mount for the second, runs with the daemon under eatmydata
# too: through a directory store that fsyncs every object it takes about 50 files/s here.
#
# Runs as root (FUSE). s3cryptfs is $S3CRYPTFS_BIN, else the dev build of this checkout
# (`cargo build --bin s3cryptfs`, honouring $CARGO_TARGET_DIR); the generator is built with
# `cargo bench --profile dev --bench size_vault --no-run`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIRS=900
FILES=1000
BIG=100000
TREE=100000
WORK=
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --dirs) DIRS=$2; shift 2 ;;
        --files) FILES=$2; shift 2 ;;
        --big) BIG=$2; shift 2 ;;
        --tree) TREE=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "usage: $0 [--dirs N] [--files N] [--big N] [--tree N] [--work DIR] [--keep]" >&2
           exit 2 ;;
    esac
done

die() { echo "bench-size: $*" >&2; exit 1; }
say() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cd "$ROOT" || die "no checkout"
cargo build --bin s3cryptfs >&2 && cargo bench --profile dev --bench size_vault --no-run >&2 ||
    die "build failed"
BIN=${S3CRYPTFS_BIN:-$TARGET/debug/s3cryptfs}
[ -x "$BIN" ] || die "no binary at $BIN"

[ -n "$WORK" ] || WORK=$(mktemp -d /var/tmp/s3cryptfs-size.XXXXXX)
mkdir -p "$WORK" || die "cannot make $WORK"
STORE=$WORK/store
MNT=$WORK/mnt
KEY=$WORK/vault.key
LOG=$WORK/daemon.log
PID=

cleanup() {
    if [ -n "$PID" ]; then
        "$BIN" unmount "$MNT" >/dev/null 2>&1 || fusermount3 -uz "$MNT" 2>/dev/null
    fi
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

mount_vault() { # [eatmydata]: the daemon's fsyncs are no-ops (the initial rsync only)
    mkdir -p "$MNT" "$WORK/staging"
    "$@" "$BIN" mount -f --key-file "$KEY" --staging-dir "$WORK/staging" --log-file "$LOG" \
        "file://$STORE" "$MNT" >>"$LOG" 2>&1 &
    PID=$!
    local i
    for i in $(seq 600); do
        mountpoint -q "$MNT" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 5 "$LOG" >&2
    die "the mount did not come up"
}

unmount_vault() {
    "$BIN" unmount "$MNT" >/dev/null 2>&1 || fusermount3 -u "$MNT"
    wait "$PID" 2>/dev/null
    PID=
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

status_mib() { # FIELD: VmHWM or VmRSS of the daemon, in MiB
    awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$PID/status"
}
phase_start() { echo 5 >"/proc/$PID/clear_refs"; T0=$(date +%s.%N); }
phase_end() { # NAME [EXTRA]
    local t1 secs
    t1=$(date +%s.%N)
    secs=$(awk -v a="$T0" -v b="$t1" 'BEGIN { print b - a }')
    printf '| %s | %.1f | %s | %s | %s |\n' "$1" "$secs" "$(status_mib VmHWM)" \
        "$(status_mib VmRSS)" "${2:-}"
}

say "vault: $DIRS x $FILES files + big ($BIG) in $STORE"
"$BIN" init --key-file "$KEY" "file://$STORE" >&2 || die "init failed"
eat=()
command -v eatmydata >/dev/null && eat=(eatmydata)
t0=$(date +%s)
"${eat[@]}" cargo bench --profile dev --bench size_vault -- "file://$STORE" "$KEY" "$DIRS" "$FILES" "$BIG" >&2 ||
    die "filling the vault failed"
sync
say "vault filled in $(($(date +%s) - t0)) s; store on disk: $(du -sh "$STORE" | cut -f1)"

say "rsync source: $TREE files"
SRC=$WORK/tree
python3 - "$SRC" "$TREE" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(17)
for i in range(n):
    d = os.path.join(root, f"t{i // 1000:03d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i % 1000:04d}"), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 2048)))
EOF
sync
echo 3 >/proc/sys/vm/drop_caches

echo "| phase | seconds | peak RSS (MiB) | RSS after (MiB) | result |"
echo "|---|---|---|---|---|"
mount_vault
echo "| mounted | 0 | $(status_mib VmHWM) | $(status_mib VmRSS) | |"

say "find"
phase_start
n=$(find "$MNT" | wc -l)
phase_end "find MNT \| wc -l" "$n lines"
say "ls -lR"
phase_start
ls -lR "$MNT" >/dev/null 2>"$WORK/ls.err"
phase_end "ls -lR MNT" "exit $?, $(wc -l <"$WORK/ls.err") error lines"
sleep 15
echo "| 15 s later | | | $(status_mib VmRSS) | |"
unmount_vault

mount_vault
say "big directory"
phase_start
res=$(python3 - "$MNT/big" <<'EOF'
import os, sys, time
t = time.monotonic()
it = os.scandir(sys.argv[1])
next(it)
first = time.monotonic() - t
n = 1 + sum(1 for _ in it)
print(f"{n} entries, first after {first:.3f} s, all after {time.monotonic() - t:.3f} s")
EOF
)
phase_end "list big ($BIG entries), cold" "$res"
phase_start
res=$(python3 - "$MNT/big" <<'EOF'
import os, sys, time
t = time.monotonic()
n = len(os.listdir(sys.argv[1]))
print(f"{n} entries in {time.monotonic() - t:.3f} s")
EOF
)
phase_end "list big again, warm" "$res"
unmount_vault

mount_vault "${eat[@]}"
say "rsync into the mount${eat[*]:+ (daemon under eatmydata)}"
phase_start
rsync -a "$SRC/" "$MNT/tree/" 2>"$WORK/rsync1.err"
phase_end "rsync -a of $TREE files" "exit $?"
unmount_vault
mount_vault
say "rsync, no change"
phase_start
rsync -a --itemize-changes --stats "$SRC/" "$MNT/tree/" >"$WORK/rsync2.out" 2>&1
rc=$?
sent=$(awk -F': ' '/Number of regular files transferred/ { print $2 }' "$WORK/rsync2.out")
phase_end "rsync -a, no change, after remount" "exit $rc, $sent files re-sent"
unmount_vault
say "done"
