#!/usr/bin/env bash
# build.sh — builds etcd, kube-apiserver, kube-controller-manager and kubectl from the pinned
# Kubernetes release in this tools module, once, into a cache directory keyed by version and by
# a hash of go.sum. Prints the bin directory on stdout. Idempotent: a complete cache is reused;
# an interrupted build never looks complete (built into a temp dir, then renamed).
set -euo pipefail
cd "$(dirname "$0")"
V=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' go.mod); V=${V#v}
SUM=$(sha256sum go.sum | cut -c1-12)
CACHE=${NEG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/neg-controller}
OUT="$CACHE/k8s-v$V-$SUM/bin"
if [ -x "$OUT/etcd" ] && [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ] && [ -x "$OUT/kubectl" ]; then
  echo "$OUT"; exit 0
fi
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD="$LD -X $p.gitVersion=v$V -X $p.gitMajor=${V%%.*} -X $p.gitMinor=$(echo "$V" | cut -d. -f2) -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
echo ">> building Kubernetes v$V control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) into $OUT" >&2
echo ">> first build takes about 6 minutes on 2 cores; later runs reuse the cache" >&2
start=$(date +%s)
( while sleep 30; do echo ">> still building... $(( $(date +%s) - start ))s" >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null; rm -rf "$TMP"' EXIT
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$LD" -o "$TMP/" tool >&2
mv "$TMP/server" "$TMP/etcd"
mkdir -p "$(dirname "$OUT")"
rm -rf "$OUT"; mv "$TMP" "$OUT"
echo ">> built in $(( $(date +%s) - start ))s" >&2
echo "$OUT"
