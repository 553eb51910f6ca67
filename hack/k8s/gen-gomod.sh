#!/usr/bin/env bash
# gen-gomod.sh VERSION — (re)generates hack/k8s/go.mod for building kube-apiserver,
# kube-controller-manager, kubectl and etcd of Kubernetes VERSION from the Go module proxy.
# k8s.io/kubernetes replaces its staging modules with ./staging paths; Go ignores a
# dependency's replaces, so this module repeats each one with the published v0.X.Y.
# The replace lines are derived from k8s.io/kubernetes's own go.mod, never hand-written.
set -euo pipefail
V=${1:?usage: gen-gomod.sh 1.36.3}
cd "$(dirname "$0")"
GOFLAGS= go mod download -json "k8s.io/kubernetes@v$V" >/dev/null
M=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$V.mod
{
  echo "module negcontroller.invalid/k8sbins"; echo
  awk '/^go /{print; exit}' "$M"; echo
  echo "require k8s.io/kubernetes v$V"; echo
  echo "tool ("
  printf '\t%s\n' go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
  echo ")"; echo
  echo "replace ("
  sed -n '/^replace (/,/^)/p' "$M" | awk -v v="v0.${V#1.}" '$2=="=>" && $3 ~ /^\.\/staging/ {print "\t"$1" => "$1" "v}'
  echo ")"
} > go.mod
rm -f go.sum
go mod tidy
