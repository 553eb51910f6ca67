// Package e2e holds the end-to-end suite (build tag e2e, `make e2e`): one real control plane per
// run (etcd, kube-apiserver, kube-controller-manager built from the pinned Kubernetes release),
// the fakegce emulator, the pod simulator, and the neg-controller binary run as a separate
// process, with a namespace per test. Real Deployments, ReplicaSets and the real EndpointSlice
// controller drive what the controller sees.
package e2e
