#!/usr/bin/env bash
# Builds electd's Debian package with dpkg-deb, from the stripped release
# build (scripts/stripped.sh, shared with scripts/image.sh) and the files in
# deploy/debian/, and prints its path as its last line:
# target/debian/electd_VERSION_ARCH.deb.
#
#   /usr/bin/electd, /usr/bin/electctl
#   /lib/systemd/system/electd@.service     one instance per election
#   /etc/electd/example.env                 a conffile: the settings, commented
#   /usr/share/man/man1/electd.1.gz         generated from each program's
#   /usr/share/man/man1/electctl.1.gz       clap definition (cargo xtask man,
#   /usr/share/bash-completion/completions/electd, electctl   cargo xtask
#   /usr/share/zsh/vendor-completions/_electd, _electctl      completions)
#   /usr/share/fish/vendor_completions.d/electd.fish, electctl.fish
#   /usr/share/doc/electd/copyright, changelog.gz
#
# Install it with `apt install ./electd_VERSION_ARCH.deb` (which brings what
# it depends on) or `dpkg -i`.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "deb: $*" >&2
    exit 1
}

# dpkg-shlibdeps: the package's Depends from the libraries electd links.
scripts/install-packages.sh dpkg-dev

binary=$(scripts/stripped.sh | tail -n 1)
version=$("$binary" --version | awk '{ print $2 }')
[ -n "$version" ] || fail "cannot read the version of $binary"
arch=$(dpkg --print-architecture)
target=$(dirname "$(dirname "$binary")")
out=$target/debian
root=$out/electd_${version}_$arch
deb=$root.deb
rm -rf "$root" "$deb"
mkdir -p "$root/DEBIAN"

install -D -m 0755 "$binary" "$root/usr/bin/electd"
install -D -m 0755 "$(dirname "$binary")/electctl" "$root/usr/bin/electctl"
install -D -m 0644 deploy/debian/electd@.service "$root/lib/systemd/system/electd@.service"
install -D -m 0644 deploy/debian/example.env "$root/etc/electd/example.env"
install -D -m 0644 deploy/debian/copyright "$root/usr/share/doc/electd/copyright"

# `cargo xtask man` and `cargo xtask completions`, in release mode: every
# crate xtask shares with electd is then the release build just made, with
# the same features (in the dev profile, xtask's features differ from the
# test build's, and most of the graph would be compiled once more for it).
generated=$out/generated
rm -rf "$generated"
xtask=(cargo run --release --locked --quiet -p xtask --)
"${xtask[@]}" man "$generated" >&2
"${xtask[@]}" completions "$generated" >&2
for program in electd electctl; do
    install -D -m 0644 "$generated/$program.1" "$root/usr/share/man/man1/$program.1"
    gzip -9n "$root/usr/share/man/man1/$program.1"
    install -D -m 0644 "$generated/$program" "$root/usr/share/bash-completion/completions/$program"
    install -D -m 0644 "$generated/_$program" "$root/usr/share/zsh/vendor-completions/_$program"
    install -D -m 0644 "$generated/$program.fish" \
        "$root/usr/share/fish/vendor_completions.d/$program.fish"
done

# A native package's changelog, in Debian's format; the project's own is
# CHANGELOG.md. Dated by the last commit, so a rebuild is the same file.
maintainer="electd developers <electd@example.org>"
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
cat >"$root/usr/share/doc/electd/changelog" <<CHANGELOG
electd ($version) unstable; urgency=medium

  * Release $version; what changed is in CHANGELOG.md in electd's sources.

 -- $maintainer  $date
CHANGELOG
gzip -9n "$root/usr/share/doc/electd/changelog"

# dpkg-shlibdeps reads debian/control from where it runs: a stub of one.
shlibs=$out/shlibs
rm -rf "$shlibs"
mkdir -p "$shlibs/debian"
printf 'Source: electd\n\nPackage: electd\nArchitecture: any\n' >"$shlibs/debian/control"
libraries=$(cd "$shlibs" && dpkg-shlibdeps -O "$root/usr/bin/electd" "$root/usr/bin/electctl" |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$libraries" ] || fail "dpkg-shlibdeps found no library for $root/usr/bin/electd"

install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
echo /etc/electd/example.env >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$root/DEBIAN/md5sums"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: electd
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $libraries, adduser
Section: admin
Priority: optional
Description: leader election on etcd
 electd campaigns for leadership of a named election in etcd (v3 or v2
 API), so that exactly one node of a fleet leads at any instant, and every
 node can say who leads: a plain-text answer, JSON status, health checks
 for load balancers and readiness probes, Prometheus metrics. It can run a
 command only while its node leads (--exec), handing it a fencing token.
 electctl, in the same package, lists an election, hands leadership over,
 drains nodes and follows each change of leader.
 .
 A leader stops calling itself leader before its lease could expire, and
 hands over within milliseconds when stopped. The package runs one
 instance per election as the systemd unit electd@NAME, configured in
 /etc/electd/NAME.env.
CONTROL

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
