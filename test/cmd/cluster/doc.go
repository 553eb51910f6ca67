// Command cluster runs the local control plane of test/localcluster in the foreground:
//
//	go run ./test/cmd/cluster up --dir .run [--zones us-central1-a,us-central1-b] [--v=2]
//
// It starts etcd, kube-apiserver and kube-controller-manager, writes the admin kubeconfig to
// <dir>/kubeconfig and the neg-controller identity's to <dir>/neg-controller.kubeconfig, prints
// an export line for KUBECONFIG, and runs until SIGINT or SIGTERM, then stops everything. With
// --zones it also runs test/podsim with --nodes-per-zone nodes per zone (Kubernetes objects
// only, no Compute Engine instances). Logs go to <dir>/logs.
package main
