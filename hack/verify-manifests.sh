#!/usr/bin/env bash
# verify-manifests.sh — checks that the kustomize base manifests/ renders alone, with each
# component of manifests/components/ and with all of them, as a user's overlay builds it
# (resources: the base, components: the ones named), using `kubectl kustomize` of the pinned
# Kubernetes release (hack/k8s/build.sh; cached after the first build). Used by `make verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl="$(hack/k8s/build.sh)/kubectl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# render NAME COMPONENT... — renders an overlay of the base with the components; fails with
# kubectl's error, or when the output has no Deployment (an empty or broken render).
render() {
  local name=$1; shift
  local dir="$tmp/$name"
  mkdir -p "$dir"
  local base; base=$(realpath --relative-to="$dir" manifests) # kustomize refuses absolute paths
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources: [$base]"
    if [ $# -gt 0 ]; then
      echo "components:"
      for c in "$@"; do echo "- $base/components/$c"; done
    fi
  } >"$dir/kustomization.yaml"
  if ! out=$("$kubectl" kustomize "$dir" 2>&1); then
    echo "manifests: $name does not render:" >&2
    echo "$out" >&2
    return 1
  fi
  if ! grep -q '^kind: Deployment$' <<<"$out"; then
    echo "manifests: $name renders no Deployment" >&2
    return 1
  fi
  echo "manifests: $name renders ($(grep -c '^kind: ' <<<"$out") objects)"
}

components=()
for c in manifests/components/*/; do
  c=$(basename "$c")
  components+=("$c")
  render "component-$c" "$c"
done
render base
render all-components "${components[@]}"
