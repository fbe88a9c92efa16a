#!/usr/bin/env bash
# Builds electd's container image from the Containerfile at the repository's
# root, tags it electd:VERSION and electd:latest, and prints the image's
# reference as its last line (localhost/electd:VERSION with podman).
#
#   scripts/image.sh              build
#   scripts/image.sh --save FILE  build, and write it to FILE as an OCI archive
#                                 (`podman load -i FILE`, `ctr images import`)
#
# podman, Debian's (installed when missing); docker only where `docker info`
# answers, that is where a Docker engine runs (a docker client alone cannot
# build). No registry is needed: the image starts FROM scratch and holds the
# stripped release build of electd and what it needs from the host's own
# Debian packages (the Containerfile lists it).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "image: $*" >&2
    exit 1
}

save=""
while (($#)); do
    case $1 in
        --save)
            (($# >= 2)) || fail "--save needs a FILE"
            save=$2
            shift 2
            ;;
        *) fail "unknown argument $1 (usage: scripts/image.sh [--save FILE])" ;;
    esac
done
if [ -n "$save" ]; then
    # Absolute, as the engine may not run in this directory.
    save=$(realpath -m "$save")
    [ -d "$(dirname "$save")" ] || fail "--save $save: no directory $(dirname "$save")"
fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
else
    scripts/install-packages.sh podman
    engine=podman
fi

binary=$(scripts/stripped.sh | tail -n 1)
version=$("$binary" --version | awk '{ print $2 }')
[ -n "$version" ] || fail "cannot read the version of $binary"

# The build context: Containerfile's rootfs/, assembled from scratch.
context=$(dirname "$(dirname "$binary")")/image
rm -rf "$context"
rootfs=$context/rootfs
install -D -m 0755 "$binary" "$rootfs/usr/bin/electd"
electctl=$(dirname "$binary")/electctl
install -D -m 0755 "$electctl" "$rootfs/usr/bin/electctl"

# The libraries electd and electctl link and their dynamic loader, at the
# paths the loader looks in (ldd names them), each from a Debian package
# whose copyright goes with it.
# (ldd heads each file's list with its path and a colon: not a library.)
libraries=$(ldd "$binary" "$electctl" |
    awk '$2 == "=>" { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)
[ -n "$libraries" ] || fail "ldd names no library of $binary"
for library in $libraries; do
    owner=$(dpkg -S "$library" 2>/dev/null) || fail "$library is not from a Debian package"
    package=${owner%%:*}
    install -D -m 0755 "$(realpath "$library")" "$rootfs$library"
    install -D -m 0644 "/usr/share/doc/$package/copyright" "$rootfs/usr/share/doc/$package/copyright"
done
# The copyright files above name licences by their path here.
mkdir -p "$rootfs/usr/share/common-licenses"
cp -a /usr/share/common-licenses/. "$rootfs/usr/share/common-licenses/"
install -D -m 0644 deploy/debian/copyright "$rootfs/usr/share/doc/electd/copyright"
# Empty: the Containerfile makes /var/lib/electd of it, owned by the user.
mkdir -p "$context/state"
# glibc resolves etcd's host names (--etcd http://etcd-0.etcd:2379) through
# NSS; without this file it would ask DNS before /etc/hosts, so localhost
# would depend on a DNS server.
install -d "$rootfs/etc"
echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"

"$engine" build --quiet --file Containerfile --build-arg "VERSION=$version" \
    --tag "electd:$version" --tag electd:latest "$context" >&2

case $engine in
    podman) reference=localhost/electd:$version ;;
    docker) reference=electd:$version ;;
esac
if [ -n "$save" ]; then
    case $engine in
        podman) podman save --quiet --format oci-archive --output "$save" "$reference" ;;
        # Docker 25 and later write an OCI image layout in this archive too.
        docker) docker save --output "$save" "$reference" ;;
    esac
    echo "image: saved $reference to $save" >&2
fi
size=$("$engine" image inspect --format '{{.Size}}' "$reference")
echo "image: $reference, $((size / 1000)) kB uncompressed" >&2
echo "$reference"
