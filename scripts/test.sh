#!/usr/bin/env bash
# The full test suite, as CI runs it (.ci/run calls this and nothing else).
#
# 1. Installs what the tests need and is missing:
#    - apt: fuse3 (fusermount3), rsync, pkg-config, ca-certificates, a C compiler (aws-lc-sys
#      builds C), man-db (tests/fast/ops_man.rs), systemd (systemd-analyze,
#      tests/fast/ops_systemd.rs), zsh and fish (syntax checks of the completion scripts,
#      tests/fast/ops_completions.rs), python3 and pip, attr and acl (setfattr/getfattr,
#      setfacl/getfacl: the extended attribute and ACL tests);
#    - pip: moto's S3 server, which the S3 tests run against (scripts/s3-test-server.sh);
#    - apt: nodejs and npm; npm: s3rver, the third S3 server (scripts/s3rver-test-server.sh);
#    - apt: ceph-mon ceph-osd radosgw ceph-common, the one-node Ceph cluster the SSE-C and
#      SSE-KMS mount tests run against (scripts/ceph-test-server.sh, tests/ceph/);
#    - rustup: rustfmt and clippy.
# 2. Runs `cargo fmt --check`, clippy and the tests with every test tier on (the Cargo features
#    fuse_tests, s3_tests, ceph_tests; see tests/integration.rs), then the doc tests, all with
#    --locked (Cargo.lock is used as committed), stopping at the first failure.
# 3. Builds the Debian package from the test build. In CI (CI=true, as root) it also installs
#    the package, checks it and removes it again (scripts/package-deb.sh --install-check);
#    elsewhere it leaves your system alone.
#
# Every tier runs here: the FUSE tests mount real file systems and the S3 tests start moto,
# s3rver and Ceph. Without /dev/fuse, moto, s3rver or Ceph this script fails; it never skips a
# test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The S3 tests talk only to moto and Ceph RGW on 127.0.0.1. Never let the AWS SDK probe the EC2 metadata
# address for credentials or a region.
export AWS_EC2_METADATA_DISABLED=true

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" || die "'$*' needs root; run it with sudo, or install the packages yourself"
    else
        die "'$*' needs root and sudo is not installed"
    fi
}

missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v setfattr >/dev/null 2>&1 || missing+=(attr)
command -v setfacl >/dev/null 2>&1 || missing+=(acl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${missing[*]} and no apt-get to install them with; install them yourself"
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi

say "moto's S3 server (for the S3 tests)"
scripts/s3-test-server.sh --install

say "s3rver (the third S3 server, whose listings carry no ETags)"
scripts/s3rver-test-server.sh --install

say "Ceph RGW (for the SSE-C and SSE-KMS mount tests)"
scripts/ceph-test-server.sh --install

command -v cargo >/dev/null 2>&1 ||
    die "cargo is not installed: install a Rust toolchain (https://rustup.rs) first"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 ||
        die "rustfmt or clippy is missing and there is no rustup to add them with"
    say "adding rustfmt and clippy"
    rustup component add rustfmt clippy
fi

# The FUSE tests need the kernel module and the mount helper: fail here, loudly, not later.
[ -e /dev/fuse ] ||
    die "/dev/fuse does not exist: load the fuse module (modprobe fuse), or run the container with --device /dev/fuse --cap-add SYS_ADMIN"
[ -r /dev/fuse ] && [ -w /dev/fuse ] ||
    die "/dev/fuse is not readable and writable by $(id -un)"
command -v fusermount3 >/dev/null 2>&1 || die "fusermount3 is missing after installing fuse3"

say "cargo fmt --check"
cargo fmt --check

say "cargo clippy --locked --all-targets --all-features -- -D warnings"
cargo clippy --locked --all-targets --all-features -- -D warnings

# The tiers gate test helpers with cfg: the fast tier alone must be warning-free too.
say "cargo clippy --locked --all-targets -- -D warnings (the fast tier alone)"
cargo clippy --locked --all-targets -- -D warnings

say "cargo test --locked --all-targets --all-features (every tier: fast, FUSE, moto, Ceph)"
cargo test --locked --all-targets --all-features

# --all-targets leaves the doc tests out; --all-features reuses the build above.
say "cargo test --locked --doc --all-features"
cargo test --locked --doc --all-features

if [ "${CI:-}" = true ] && is_root; then
    say "scripts/package-deb.sh --fast --install-check"
    scripts/package-deb.sh --fast --install-check
else
    say "scripts/package-deb.sh --fast (installing and checking the package runs only in CI, as root)"
    scripts/package-deb.sh --fast
fi

say "all checks passed"
