#!/usr/bin/env bash
# moto's S3 server, the independent S3 implementation the S3 tests (tests/store_s3.rs) run
# against. The tests start and stop their own server on a free 127.0.0.1 port; this script
# installs moto and, for trying things by hand, runs one in the foreground.
#
#   scripts/s3-test-server.sh --install     install moto[server] with pip if it is missing
#   scripts/s3-test-server.sh [PORT]        run it on 127.0.0.1:PORT (default 5000), e.g. for
#       AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1 \
#       AWS_ENDPOINT_URL=http://127.0.0.1:5000 s3cryptfs init s3://bucket/vault
set -euo pipefail

# moto 5.1 (tested: 5.1.22). moto 5.2 answers CompleteMultipartUpload with the XML root
# <CompleteMultipartUploadResponse> instead of S3's <CompleteMultipartUploadResult>, which the Rust
# SDK refuses, so every multipart upload fails against it.
MOTO_REQUIREMENT='moto[server]>=5.1,<5.2'

have_moto() {
    python3 -c 'import moto.server, moto, sys; sys.exit(moto.__version__.startswith("5.2."))' \
        >/dev/null 2>&1
}

install_moto() {
    if have_moto; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 ||
        { echo "error: python3 is missing (apt-get install python3 python3-pip)" >&2; exit 1; }
    echo "==> installing $MOTO_REQUIREMENT"
    python3 -m pip install --quiet "$MOTO_REQUIREMENT" ||
        python3 -m pip install --quiet --break-system-packages "$MOTO_REQUIREMENT"
    have_moto || { echo "error: moto installed but 'import moto.server' fails" >&2; exit 1; }
}

case "${1:-}" in
    --install)
        install_moto
        ;;
    -h | --help)
        sed -n '2,10p' "$0"
        ;;
    *)
        install_moto
        port="${1:-5000}"
        echo "==> moto S3 server on http://127.0.0.1:$port (Ctrl-C stops it)"
        exec python3 -m moto.server -H 127.0.0.1 -p "$port"
        ;;
esac
