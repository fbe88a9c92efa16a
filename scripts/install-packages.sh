#!/usr/bin/env bash
# Installs, with apt-get, those of the Debian packages named that dpkg does
# not list as installed (with sudo when not root), then checks that each is.
# Checked with dpkg, not by looking for a command, so a package a script
# needs is never found only because a machine happened to have something
# of that name.
#
#   scripts/install-packages.sh podman runc
set -euo pipefail

installed() {
    # Not `dpkg -s | grep -q`: under pipefail, grep leaving early can fail
    # the pipeline (dpkg gets SIGPIPE) for a package that is installed.
    [ "$(dpkg-query --show --showformat='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

need=()
for p in "$@"; do
    installed "$p" || need+=("$p")
done

if ((${#need[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo=sudo
    fi
    echo "install-packages: installing ${need[*]}..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

for p in "$@"; do
    installed "$p" || {
        echo "install-packages: the Debian package $p is not installed (apt-get install $p)" >&2
        exit 1
    }
done
