#!/usr/bin/env bash
# Validates every manifest in deploy/kubernetes/ offline against the
# Kubernetes JSON schemas, strictly (an unknown field is an error), for the
# oldest and the newest Kubernetes it is checked with. No cluster is needed:
# the validator, kubernetes-validate from PyPI, bundles the schemas. It and
# what it needs are installed once, at pinned versions, in a cache of their
# own (as scripts/etcd35.sh caches etcd 3.5).
set -euo pipefail
cd "$(dirname "$0")/.."

kubernetes_versions=(1.25.0 1.37.0)
requirements=(
    kubernetes-validate==1.37.0
    attrs==26.1.0
    importlib-resources==7.1.0
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    packaging==26.4
    pyyaml==6.0.4
    referencing==0.37.0
    rpds-py==2026.9.1
    typing-extensions==4.16.0
)

fail() {
    echo "kube-validate: $*" >&2
    exit 1
}

if ! python3 -m pip --version >/dev/null 2>&1; then
    scripts/install-packages.sh python3-pip
    python3 -m pip --version >/dev/null 2>&1 || fail "python3 has no pip (apt-get install python3-pip)"
fi
# Keyed by the validator's pins and the interpreter, whose version the
# compiled rpds-py wheel is built for.
tag=$(python3 -c 'import sys; print(sys.implementation.cache_tag)')
key=$(printf '%s\n' "${requirements[@]}" | sha256sum | cut -c1-12)
cache=${ELECTD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/electd}/kubernetes-validate-$tag-$key
if ! PYTHONPATH=$cache python3 -m kubernetes_validate --version >/dev/null 2>&1; then
    echo "kube-validate: installing ${requirements[0]} into $cache..." >&2
    rm -rf "$cache"
    # --target: into the cache, never into the system's Python.
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --only-binary=:all: --target "$cache" "${requirements[@]}" >&2 ||
        fail "pip could not install ${requirements[*]}"
fi

manifests=(deploy/kubernetes/*.yaml)
for version in "${kubernetes_versions[@]}"; do
    PYTHONPATH=$cache python3 -m kubernetes_validate --strict --kubernetes-version "$version" \
        "${manifests[@]}" || fail "a manifest is not valid for Kubernetes $version"
done
echo "kube-validate: ${#manifests[@]} files valid for Kubernetes ${kubernetes_versions[*]}"
