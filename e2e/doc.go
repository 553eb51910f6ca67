// Package e2e holds the end-to-end suite (build tag e2e, `make e2e`): one real control plane per
// run (etcd, kube-apiserver, kube-controller-manager built from the pinned Kubernetes release),
// the fakegce emulator, the pod simulator, and the neg-controller binary run as a separate
// process, with a namespace per test. Real Deployments, ReplicaSets and the real EndpointSlice
// controller drive what the controller sees. The environment is test/stack; the test workloads'
// Deployments, Pods and Services come from test/objects. The suite stays at the top level
// (e2e/), beside cmd/ and pkg/; test/ holds the libraries it and the benchmarks share.
package e2e
