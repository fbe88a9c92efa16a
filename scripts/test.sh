#!/usr/bin/env bash
# Every test: unit, real etcd, real electd processes, faults, the web view
# in a browser (crates/electd/tests/it/ui.rs), and the
# container image and the Debian package, built here first (scripts/image.sh,
# scripts/deb.sh) and tested in crates/electd/tests/it/packaging.rs, which runs
# containers with podman and installs, runs and purges the package on this
# host: as root. Arguments go to cargo test, before its `--`.
#
#   ELECTD_TEST_NO_PACKAGING=1 scripts/test.sh
#       everything but the image and package tests, without building either
#       (cargo counts those two as ignored)
#   ELECTD_TEST_NO_UI=1 scripts/test.sh
#       everything but the browser test of the web view
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# The web view in headless chromium (crates/electd/tests/it/ui.rs), driven
# by playwright-core, which `npm ci` installs as the lockfile pins it; it
# needs Node.js 20 or later. Ignored by plain `cargo test`.
browser_test() {
    if [ -n "${ELECTD_TEST_NO_UI:-}" ]; then
        return
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$major" -lt 20 ] || ! command -v npm >/dev/null; then
        echo "test.sh: the browser test of /ui needs Node.js 20 or later and npm" \
            "(found: $(node --version 2>/dev/null || echo no node)); ELECTD_TEST_NO_UI=1 leaves it out" >&2
        exit 1
    fi
    (cd crates/electd/tests/ui && npm ci --no-audit --no-fund --loglevel=error)
    # --nocapture: the log shows what the browser saw, the times it
    # measured and where the screenshots are.
    cargo test -p electd --locked --test it -- --ignored ui:: --nocapture
}

if [ -n "${ELECTD_TEST_NO_PACKAGING:-}" ]; then
    cargo test --workspace --locked "$@"
    browser_test
    exit
fi
ELECTD_TEST_IMAGE=$(scripts/image.sh | tail -n 1)
ELECTD_TEST_DEB=$(scripts/deb.sh | tail -n 1)
export ELECTD_TEST_IMAGE ELECTD_TEST_DEB
cargo test --workspace --locked "$@"
# The image and package tests are ignored by plain `cargo test` (they need
# what this script built); other ignored tests are measurements, run by hand.
cargo test -p electd --locked --test it -- --ignored packaging::
browser_test
