#!/usr/bin/env bash
# Every test: unit, real etcd, real electd processes, faults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
