#!/usr/bin/env bash
# Every test: unit, real etcd, real electd processes, faults, and the
# container image and the Debian package, built here first (scripts/image.sh,
# scripts/deb.sh) and tested in crates/electd/tests/it/packaging.rs, which runs
# containers with podman and installs, runs and purges the package on this
# host: as root. Arguments go to cargo test, before its `--`.
#
#   ELECTD_TEST_NO_PACKAGING=1 scripts/test.sh
#       everything but the image and package tests, without building either
#       (cargo counts those two as ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -n "${ELECTD_TEST_NO_PACKAGING:-}" ]; then
    exec cargo test --workspace --locked "$@"
fi
ELECTD_TEST_IMAGE=$(scripts/image.sh | tail -n 1)
ELECTD_TEST_DEB=$(scripts/deb.sh | tail -n 1)
export ELECTD_TEST_IMAGE ELECTD_TEST_DEB
cargo test --workspace --locked "$@"
# The image and package tests are ignored by plain `cargo test` (they need
# what this script built); other ignored tests are measurements, run by hand.
cargo test -p electd --locked --test it -- --ignored packaging::
