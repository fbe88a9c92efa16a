#!/usr/bin/env bash
# Installs, from Debian's packages and only when missing, what electd's build,
# demo, tests and benchmarks need:
#   etcd      (etcd-server)       the real etcd every test and the demo run against
#   etcdctl   (etcd-client)       etcd users and roles in the auth tests; `etcdctl elect` in the benchmarks
#   protoc    (protobuf-compiler) the etcd-client crate compiles etcd's .proto files
#   wrk       (wrk)               the HTTP load generator of electd-bench
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v wrk >/dev/null 2>&1 || need+=(wrk)

if ((${#need[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo=sudo
    fi
    echo "installing ${need[*]}..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
