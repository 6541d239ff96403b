#!/usr/bin/env bash
# s3rver (npm), the third independent S3 implementation the S3 tests run against (next to moto
# and Ceph RGW). The tests start their own server (scripts/s3rver-server.js) on a free
# 127.0.0.1 port; this script installs s3rver and, for trying things by hand, runs one.
#
#   scripts/s3rver-test-server.sh --install   install s3rver with npm if it is missing, into
#                                              $S3CRYPTFS_S3RVER_DIR (default
#                                              ~/.cache/s3cryptfs/s3rver)
#   scripts/s3rver-test-server.sh [PORT]      run it on 127.0.0.1:PORT (default 4568), e.g. for
#       AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
#       s3cryptfs init --endpoint http://127.0.0.1:4568 --path-style s3://bucket/vault
set -euo pipefail

S3RVER_VERSION=3.7.1
dir="${S3CRYPTFS_S3RVER_DIR:-$HOME/.cache/s3cryptfs/s3rver}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

have_s3rver() {
    [ -f "$dir/node_modules/s3rver/package.json" ] &&
        grep -q "\"version\": \"$S3RVER_VERSION\"" "$dir/node_modules/s3rver/package.json"
}

install_s3rver() {
    if have_s3rver; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        { echo "error: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
    echo "==> installing s3rver@$S3RVER_VERSION into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "s3rver@$S3RVER_VERSION"
    have_s3rver || { echo "error: s3rver installed but not found in $dir" >&2; exit 1; }
}

case "${1:-}" in
    --install)
        install_s3rver
        ;;
    -h | --help)
        sed -n '2,11p' "$0"
        ;;
    *)
        install_s3rver
        port="${1:-4568}"
        data="$(mktemp -d)"
        echo "==> s3rver on http://127.0.0.1:$port, data in $data (Ctrl-C stops it)"
        NODE_PATH="$dir/node_modules" exec node --openssl-legacy-provider "$here/s3rver-server.js" "$port" "$data"
        ;;
esac
