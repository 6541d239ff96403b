#!/usr/bin/env bash
# s3cryptfs-backup: rsync a directory tree into a mounted s3cryptfs vault.
#
# Installed by the Debian package as /usr/bin/s3cryptfs-backup; run nightly by
# s3cryptfs-backup@NAME.timer. docs/BACKUP.md has backup and restore recipes.
set -uo pipefail

readonly PROG=s3cryptfs-backup

usage() {
    cat <<'EOF'
Usage: s3cryptfs-backup [OPTIONS] SOURCE DESTINATION

Copy the contents of the directory SOURCE into DESTINATION (as `rsync -aAX SOURCE/
DESTINATION/` does), where DESTINATION is a directory on a mounted s3cryptfs vault; it is
created if missing. Refuses to run, copying nothing, when DESTINATION is not on a mounted
s3cryptfs or the mount is read-only. Modes, owners, mtimes, symlinks, fifos, sockets and (as
root) device nodes are kept; hard links are copied as separate files (s3cryptfs has none).

Options:
  --exclude-from FILE  rsync exclude patterns, one per line (see rsync(1), FILTER RULES)
  --delete             delete files in DESTINATION that are no longer in SOURCE
  --log FILE           append rsync's itemized list of changes and a summary to FILE
                       (otherwise they go to stdout)
  --dry-run            show what would change, change nothing
  --rsync-arg ARG      pass ARG to rsync (repeatable), e.g. --rsync-arg=--bwlimit=20m
  -h, --help           this text

Exit status (for cron and systemd timers):
  0  backup complete (also when files vanished from SOURCE during the run: logged)
  1  rsync failed; its exit code and messages are in the log
  2  bad command line, or SOURCE or the exclude file missing
  3  DESTINATION is not on a mounted s3cryptfs vault, or the vault is mounted read-only
  4  another backup to the same DESTINATION is still running
  5  partial: some files could not be copied (rsync code 23); the others were
  6  uploads are failing at the vault (`s3cryptfs status` names the files)
EOF
}

log_file=""
delete=()
excludes=()
dry_run=()
extra=()
operands=()

die() {
    local code=$1
    shift
    printf '%s: %s\n' "$PROG" "$*" >&2
    if [ -n "$log_file" ] && [ -w "$(dirname -- "$log_file")" ]; then
        printf '%s %s: error: %s (exit %s)\n' "$(date -Is)" "$PROG" "$*" "$code" >>"$log_file"
    fi
    exit "$code"
}

while [ $# -gt 0 ]; do
    case $1 in
        --exclude-from) [ $# -ge 2 ] || die 2 "--exclude-from needs a FILE"; excludes+=("$2"); shift 2 ;;
        --exclude-from=*) excludes+=("${1#*=}"); shift ;;
        --delete) delete=(--delete); shift ;;
        --log) [ $# -ge 2 ] || die 2 "--log needs a FILE"; log_file=$2; shift 2 ;;
        --log=*) log_file=${1#*=}; shift ;;
        --dry-run|-n) dry_run=(--dry-run); shift ;;
        --rsync-arg) [ $# -ge 2 ] || die 2 "--rsync-arg needs an ARG"; extra+=("$2"); shift 2 ;;
        --rsync-arg=*) extra+=("${1#*=}"); shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; operands+=("$@"); break ;;
        -*) die 2 "unknown option $1 (see --help)" ;;
        *) operands+=("$1"); shift ;;
    esac
done

[ ${#operands[@]} -eq 2 ] || die 2 "expected SOURCE and DESTINATION (see --help)"
command -v rsync >/dev/null 2>&1 || die 2 "rsync is not installed (apt-get install rsync)"
command -v findmnt >/dev/null 2>&1 || die 2 "findmnt is missing (util-linux)"

src=$(realpath -e -- "${operands[0]}" 2>/dev/null) || die 2 "source ${operands[0]} does not exist"
[ -d "$src" ] || die 2 "source $src is not a directory"
dest=$(realpath -m -- "${operands[1]}")
for f in "${excludes[@]}"; do
    [ -r "$f" ] || die 2 "exclude file $f is missing or unreadable"
done
if [ -n "$log_file" ]; then
    mkdir -p -- "$(dirname -- "$log_file")" || die 2 "cannot create the directory of $log_file"
    touch -- "$log_file" 2>/dev/null || die 2 "cannot write the log $log_file"
fi
case "$dest/" in "$src"/*) die 2 "destination $dest is inside the source $src" ;; esac
case "$src/" in "$dest"/*) die 2 "source $src is inside the destination $dest" ;; esac

# Whether a live s3cryptfs daemon's pid file names mount point $1. Pid files hold
# "PID START_TIME", the mount point and the store URL, one per line.
daemon_serves() {
    local file pid mp
    for file in /run/s3cryptfs/*.pid "${XDG_RUNTIME_DIR:-/nonexistent}"/s3cryptfs/*.pid \
        "/tmp/s3cryptfs-$(id -u)"/*.pid /run/user/*/s3cryptfs/*.pid; do
        [ -r "$file" ] || continue
        { read -r pid _ && read -r mp; } <"$file" || continue
        if [ "$mp" = "$1" ] && [ -d "/proc/$pid" ]; then
            return 0
        fi
    done
    return 1
}

# The mount holding DESTINATION (or its nearest existing ancestor) must be s3cryptfs: type
# fuse.s3cryptfs (mounted through fusermount3), or type fuse (mounted by root) whose source is a
# store URL or whose mount point a live daemon's pid file names.
probe=$dest
while [ ! -e "$probe" ]; do probe=$(dirname -- "$probe"); done
target=$(findmnt -n -f -o TARGET -T "$probe" 2>/dev/null) ||
    die 3 "cannot find the mount holding $dest (is a dead mount in the way? see s3cryptfs unmount)"
fstype=$(findmnt -n -f -o FSTYPE -T "$probe")
source=$(findmnt -n -f -o SOURCE -T "$probe")
vfs_options=$(findmnt -n -f -o VFS-OPTIONS -T "$probe")
is_ours=no
case $fstype in
    fuse.s3cryptfs) is_ours=yes ;;
    fuse)
        if [[ $source =~ ^[a-z][a-z0-9+.-]*:// ]] || daemon_serves "$target"; then
            is_ours=yes
        fi
        ;;
esac
[ "$is_ours" = yes ] ||
    die 3 "destination $dest is on $target ($fstype from $source), not on a mounted s3cryptfs vault; mount the vault first (s3cryptfs mount, or systemctl start s3cryptfs@NAME)"
case ",$vfs_options," in
    *,ro,*) die 3 "the vault at $target is mounted read-only" ;;
esac

# One backup per destination at a time.
if [ "$(id -u)" -eq 0 ]; then lock_dir=/run/lock; else lock_dir=${XDG_RUNTIME_DIR:-/tmp}; fi
lock="$lock_dir/$PROG-$(printf '%s' "$dest" | md5sum | cut -c1-16).lock"
exec 9>"$lock" || die 2 "cannot create the lock file $lock"
flock -n 9 || die 4 "another backup to $dest is still running (lock $lock)"

mkdir -p -- "$dest" || die 1 "cannot create $dest on the vault"

# -8: names in the log as they are (UTF-8), not escaped.
rsync_args=(-aAX -8 --itemize-changes --stats "${delete[@]}" "${dry_run[@]}")
for f in "${excludes[@]}"; do rsync_args+=(--exclude-from="$f"); done
rsync_args+=("${extra[@]}")

started=$(date +%s)
header="$(date -Is) $PROG: start: $src/ -> $dest/ (vault $source at $target; rsync ${rsync_args[*]})"
if [ -n "$log_file" ]; then
    printf '%s\n' "$header" >>"$log_file"
    errors=$(mktemp) || die 1 "cannot create a temporary file"
    rsync "${rsync_args[@]}" -- "$src/" "$dest/" >>"$log_file" 2>"$errors"
    rc=$?
    # rsync's messages go to the log and to stderr (the journal, or cron's mail).
    cat -- "$errors" >>"$log_file"
    cat -- "$errors" >&2
    rm -f -- "$errors"
else
    printf '%s\n' "$header"
    rsync "${rsync_args[@]}" -- "$src/" "$dest/"
    rc=$?
fi

case $rc in
    0) code=0; outcome="complete" ;;
    24) code=0; outcome="complete; some files vanished from the source during the run (rsync 24)" ;;
    23) code=5; outcome="partial: some files could not be copied (rsync 23)" ;;
    *) code=1; outcome="failed: rsync exit code $rc" ;;
esac

# Every file rsync closed is stored (close returns once it is), but the mount may hold files
# whose upload failed and is being retried: ask the mount (`s3cryptfs status`, through the
# binary of the daemon serving it when it can be read, else the one on PATH).
s3cryptfs_bin() {
    local file pid mp exe
    for file in /run/s3cryptfs/*.pid "${XDG_RUNTIME_DIR:-/nonexistent}"/s3cryptfs/*.pid \
        "/tmp/s3cryptfs-$(id -u)"/*.pid /run/user/*/s3cryptfs/*.pid; do
        [ -r "$file" ] || continue
        { read -r pid _ && read -r mp; } <"$file" || continue
        if [ "$mp" = "$target" ] && exe=$(readlink "/proc/$pid/exe" 2>/dev/null) && [ -x "$exe" ]; then
            printf '%s\n' "$exe"
            return 0
        fi
    done
    command -v s3cryptfs
}
if [ "$code" -ne 1 ] && [ "${#dry_run[@]}" -eq 0 ]; then
    if ! bin=$(s3cryptfs_bin); then
        code=6; outcome="cannot ask the vault for failing uploads: no s3cryptfs binary found"
    elif ! status_out=$("$bin" status -- "$target" 2>&1); then
        code=6; outcome="uploads are failing at the vault (s3cryptfs status $target): $(printf '%s' "$status_out" | tail -n 1)"
        printf '%s\n' "$status_out" >&2
    fi
fi
footer="$(date -Is) $PROG: end: $outcome after $(($(date +%s) - started)) s (exit $code)"
if [ -n "$log_file" ]; then
    printf '%s\n' "$footer" >>"$log_file"
else
    printf '%s\n' "$footer"
fi
[ "$code" -eq 0 ] || printf '%s: %s\n' "$PROG" "$outcome" >&2
exit "$code"
