#!/usr/bin/env bash
# Installs, from Debian's packages and only when missing, what electd's build,
# demo, tests and benchmarks need, then checks that each piece works (not
# merely that a command exists). One list, checked with dpkg
# (scripts/install-packages.sh), so a package the build needs is never found
# only because a machine happened to have it.
#
#   etcd-server        etcd, the real store every test and the demo run against
#   etcd-client        etcdctl: users and roles in the auth tests, snapshots,
#                      `etcdctl elect` in the tests and benchmarks
#   protobuf-compiler  protoc: the etcd-client crate compiles etcd's .proto files
#   libprotobuf-dev    google/protobuf/*.proto, which those files import
#                      (protobuf-compiler only recommends it)
#   wrk                the HTTP load generator of electd-bench
#   prometheus         promtool checks and unit-tests deploy/monitoring's
#                      rules; the server loads them and scrapes a real electd
#                      (crates/electd/tests/it/monitoring.rs); on a host
#                      with systemd, the package also starts its own server
#                      on :9090 (systemctl disable --now prometheus)
#
# The image and the package (scripts/image.sh, scripts/deb.sh, and the
# tests in crates/electd/tests/it/packaging.rs):
#
#   binutils           strip: the image and the package hold a stripped electd
#   podman             builds and runs the image (scripts/image.sh)
#   runc               the OCI runtime the image tests run containers with
#                      where podman's default, crun, cannot run one (crun
#                      refuses a host whose cgroups are in hybrid mode)
#   dpkg-dev           dpkg-shlibdeps: the package's Depends from the libraries
#                      electd links
#   adduser            the package's postinst creates its system user with it
#                      (dpkg -i does not install what a package depends on)
#   lintian            checks the package
#   man-db             man -l renders the package's man page
#   zsh, fish          each completion script the package ships loads in its
#                      shell (bash is essential)
#   systemd            systemd-analyze verify checks the package's unit
#
# The browser test of the web view (crates/electd/tests/it/ui.rs, driven by
# playwright-core from npm with Node.js 20 or later, which scripts/test.sh
# checks):
#
#   chromium           headless, the browser the test drives
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(etcd-server etcd-client protobuf-compiler libprotobuf-dev wrk prometheus
    binutils podman runc dpkg-dev adduser lintian man-db zsh fish systemd
    chromium)
scripts/install-packages.sh "${packages[@]}"

fail() {
    echo "setup: $*" >&2
    exit 1
}

# Each check exercises what the build or the tests do with the piece.
etcd --version >/dev/null 2>&1 || fail "etcd does not run (package etcd-server)"
ETCDCTL_API=3 etcdctl version >/dev/null 2>&1 || fail "etcdctl does not run (package etcd-client)"
command -v wrk >/dev/null 2>&1 || fail "wrk is missing (package wrk)"
promtool --version >/dev/null 2>&1 || fail "promtool does not run (package prometheus)"
prometheus --version >/dev/null 2>&1 || fail "prometheus does not run (package prometheus)"

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

# As the test starts it: headless, nothing in the background (the network
# may be closed), a profile of its own.
browser_profile=$(mktemp -d -p "$probe")
if ! dom=$(chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$browser_profile" --dump-dom 'data:text/html,<p>probe</p>' 2>/dev/null) ||
    [[ $dom != *"<p>probe</p>"* ]]; then
    fail "headless chromium does not render a page (package chromium)"
fi
