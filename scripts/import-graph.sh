#!/usr/bin/env bash
# Prints the import graph of src/ (layers and their files, layer edges, file edges with the
# first place each is made, cycles), as tests/fast/architecture/ computes and checks it. This
# is what docs/ARCHITECTURE.md describes; regenerate it after moving code between files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
S3CRYPTFS_IMPORT_GRAPH=1 cargo test --quiet --test integration \
    fast::architecture::no_import_cycles_and_no_forbidden_edges -- --exact --nocapture
