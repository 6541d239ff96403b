#!/usr/bin/env bash
# Quick start: build s3cryptfs, create an encrypted vault in a local directory and mount it.
#
#   scripts/quickstart.sh
#
# Installs fuse3 if it is missing (apt-get), builds the release binary, creates a random key
# file and a vault on the local directory store (once; later runs reuse both), and mounts the
# vault. Files you put in the mount point are stored encrypted in the vault directory.
#
# Paths can be changed through the environment:
#   S3CRYPTFS_QUICKSTART_KEY    key file   (default ~/.config/s3cryptfs/quickstart.key)
#   S3CRYPTFS_QUICKSTART_STORE  vault dir  (default ~/.local/share/s3cryptfs/quickstart-vault)
#   S3CRYPTFS_QUICKSTART_MNT    mount point (default ~/s3cryptfs-quickstart)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is not installed"
    fi
}

key_file="${S3CRYPTFS_QUICKSTART_KEY:-$HOME/.config/s3cryptfs/quickstart.key}"
store_dir="${S3CRYPTFS_QUICKSTART_STORE:-$HOME/.local/share/s3cryptfs/quickstart-vault}"
mountpoint="${S3CRYPTFS_QUICKSTART_MNT:-$HOME/s3cryptfs-quickstart}"

# 1. System packages: fusermount3 (fuse3); a C compiler for the crypto library's build.
missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "please install ${missing[*]} with your package manager, then run this again"
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi
[ -e /dev/fuse ] ||
    die "/dev/fuse does not exist: load the fuse kernel module (sudo modprobe fuse); in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN"
command -v cargo >/dev/null 2>&1 ||
    die "cargo is not installed: install a Rust toolchain (https://rustup.rs) first"

# 2. Build.
say "building (cargo build --release)"
cargo build --release
target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="${target_dir:-$PWD/target}/release/s3cryptfs"
[ -x "$bin" ] || die "the build did not produce $bin"

# 3. Already mounted? Then there is nothing to do.
mountpoint="$(mkdir -p "$mountpoint" && cd "$mountpoint" && pwd -P)"
if grep -q " $mountpoint fuse" /proc/self/mounts 2>/dev/null; then
    say "$mountpoint is already mounted"
    printf '\nUnmount it with:\n  %s unmount %s\n' "$bin" "$mountpoint"
    exit 0
fi

# 4. Key file and vault (created once).
mkdir -p "$(dirname "$key_file")" "$(dirname "$store_dir")"
chmod 700 "$(dirname "$key_file")"
if [ -d "$store_dir" ] && [ -n "$(ls -A "$store_dir" 2>/dev/null)" ]; then
    [ -f "$key_file" ] ||
        die "$store_dir holds a vault but its key file $key_file is missing"
    say "using the existing vault in $store_dir"
else
    say "creating a vault in $store_dir (key file $key_file)"
    "$bin" init --key-file "$key_file" "file://$store_dir"
fi

# 5. Mount (returns once the mount answers).
if [ -n "$(ls -A "$mountpoint")" ]; then
    die "$mountpoint is not empty; empty it or set S3CRYPTFS_QUICKSTART_MNT to another directory"
fi
log_file="$(dirname "$store_dir")/quickstart-mount.log"
say "mounting on $mountpoint"
"$bin" mount --key-file "$key_file" --log-file "$log_file" "file://$store_dir" "$mountpoint"

cat <<MSG

s3cryptfs is mounted on:   $mountpoint
Encrypted data lives in:   $store_dir
Key file (back it up!):    $key_file
Daemon log:                $log_file

Put files in $mountpoint; only ciphertext reaches $store_dir.
Unmount with:
  $bin unmount $mountpoint
Mount again later by running this script again.
MSG
