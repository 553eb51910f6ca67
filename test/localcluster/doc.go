// Package localcluster starts a throwaway Kubernetes control plane on loopback for e2e tests and
// `make run`: etcd, kube-apiserver and kube-controller-manager built by hack/k8s/build.sh, with no
// kubelet, scheduler, kube-proxy or container runtime (test/podsim stands in for the kubelet and
// the scheduler).
//
// What Start brings up, all bound to 127.0.0.1 on free ports:
//   - etcd with --unsafe-no-fsync and its data directory on tmpfs (/dev/shm when available);
//   - kube-apiserver with real TLS (a CA, a serving certificate and a service-account key pair
//     generated in Go), token authentication, RBAC authorization, ServiceAccount admission off
//     (no race with the serviceaccount controller), --endpoint-reconciler-type=none and dual-stack
//     Service ranges (ServiceCIDRs: IPv4 first, so Services are IPv4 unless they ask otherwise);
//   - kube-controller-manager without leader election, running only Options.Controllers (by
//     default the EndpointSlice, garbage-collector, namespace, Deployment and ReplicaSet
//     controllers) under the admin identity.
//
// Two identities are issued as bearer tokens: "admin" in system:masters (Cluster.Kubeconfig,
// Cluster.RESTConfig) and "neg-controller" with no groups (Cluster.ControllerKubeconfig), which
// has no permissions until RBAC objects grant them, so the controller can be run under the same
// ClusterRole it gets in production. Cluster.ImpersonatingConfig gives any other identity.
//
// Invariants:
//   - Processes are started in their own process group with Pdeathsig=SIGKILL and are only ever
//     signalled by PID (process group), never by name, so parallel checkouts and CI jobs are safe.
//   - Every wait during Start fails fast when the process it waits for exits, and the error
//     carries the tail of that process's log.
//   - Stop terminates kube-controller-manager, then kube-apiserver, then etcd (SIGTERM, at most
//     10 s each, then SIGKILL) and removes what Start created. Temporary directories are
//     marked with the creating PID; Start removes those left by processes that died without Stop.
//
// Pod and node IPs must not be loopback: EndpointSlice validation rejects 127.0.0.0/8. See
// test/podsim for the address plan and the 10.A.B.C ↔ 127.A.B.C loopback rule.
//
// This package is test and tooling infrastructure: it may be imported by e2e tests and by
// programs under test/, never by anything under pkg/ or cmd/.
package localcluster
