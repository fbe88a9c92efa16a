#!/usr/bin/env bash
# The live local cluster: etcd and three electd nodes on free loopback ports.
# Watch them elect a leader, fail over after kill -9 of electd (milliseconds)
# and of a whole node (the TTL), hand over on SIGTERM; see it live at any
# node's /ui or with electctl list -w.
# Stops everything on Ctrl-C, SIGTERM, a closed output (| head) or after
# --duration seconds (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p electd -p electctl -p electd-demo
exec target/release/electd-demo "$@"
