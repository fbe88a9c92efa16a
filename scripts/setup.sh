#!/usr/bin/env bash
# Installs, from Debian's packages and only when missing, what electd's build,
# demo, tests and benchmarks need, then checks that each piece works (not
# merely that a command exists). One list, checked with dpkg, so a package
# the build needs is never found only because a machine happened to have it.
#
#   etcd-server        etcd, the real store every test and the demo run against
#   etcd-client        etcdctl: users and roles in the auth tests, snapshots,
#                      `etcdctl elect` in the tests and benchmarks
#   protobuf-compiler  protoc: the etcd-client crate compiles etcd's .proto files
#   libprotobuf-dev    google/protobuf/*.proto, which those files import
#                      (protobuf-compiler only recommends it)
#   wrk                the HTTP load generator of electd-bench
set -euo pipefail

packages=(etcd-server etcd-client protobuf-compiler libprotobuf-dev wrk)

need=()
for p in "${packages[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || need+=("$p")
done

if ((${#need[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo=sudo
    fi
    echo "setup: installing ${need[*]}..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

fail() {
    echo "setup: $*" >&2
    exit 1
}

# Each check exercises what the build or the tests do with the piece.
for p in "${packages[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' \
        || fail "the Debian package $p is not installed (apt-get install $p)"
done
etcd --version >/dev/null 2>&1 || fail "etcd does not run (package etcd-server)"
ETCDCTL_API=3 etcdctl version >/dev/null 2>&1 || fail "etcdctl does not run (package etcd-client)"
command -v wrk >/dev/null 2>&1 || fail "wrk is missing (package wrk)"

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.proto" <<'EOF'
syntax = "proto3";
import "google/protobuf/descriptor.proto";
message Probe { google.protobuf.FieldDescriptorProto field = 1; }
EOF
if ! err=$(protoc --proto_path="$probe" --descriptor_set_out="$probe/out.pb" "$probe/probe.proto" 2>&1); then
    fail "protoc cannot compile a file that imports google/protobuf/descriptor.proto, which etcd's .proto files need (package libprotobuf-dev): $err"
fi
