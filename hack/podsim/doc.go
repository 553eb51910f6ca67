// Package podsim stands in for the kubelet and the scheduler of a control plane that has
// neither (hack/localcluster), so that the real EndpointSlice, Deployment and ReplicaSet
// controllers see pods come, become ready and go.
//
// Run registers Nodes and then, driven by informers:
//   - binds unbound pods that ask for the default scheduler (Pods(ns).Bind) to Ready,
//     schedulable podsim nodes matching their nodeSelector, spreading them over zones and then
//     nodes (least loaded first, ties by name);
//   - writes the kubelet's status through the status subresource: phase Running, hostIP, a pod
//     IP unique on the node from its pod CIDR (released when the pod goes), running container
//     statuses, and the conditions PodScheduled, Initialized, ContainersReady (after
//     Config.ReadyDelay) and Ready. Ready is True only when the containers are ready and every
//     readiness gate's condition is True; conditions written by others (for example
//     cloud.google.com/load-balancer-neg-ready) are preserved, and Ready is recomputed when they
//     change;
//   - finishes graceful deletion: a pod with a deletionTimestamp is deleted with grace period 0
//     after min(its grace period, Config.MaxGrace).
//
// Nodes carry topology.kubernetes.io/zone and region, kubernetes.io/hostname, providerID
// gce://<project>/<zone>/<name>, spec.podCIDR(s) and Ready status with InternalIP and Hostname
// addresses, plus ManagedLabel, which is how podsim recognises its own nodes. With a Compute
// client, each node is also created as a Compute Engine instance (in fakegce) whose networkIP is
// the node IP and whose alias IP range is the pod CIDR, so NEG endpoint validation passes.
// AddNode, RemoveNode and SetNodeReady change the node set while Run is running.
//
// Address plan (see DefaultNodes): node N has IP 10.1.0.N and pod CIDR 10.64.N.0/24. Pod and
// node IPs are never loopback, because EndpointSlice validation rejects 127.0.0.0/8. Loopback
// rule, for tests that need traffic to reach a "pod": pod IP 10.A.B.C is served at 127.A.B.C
// (Linux routes all of 127/8 to lo, so a fake backend binds there without setup). podsim itself
// serves nothing.
//
// Conflicts on writes are retried with client-go's retry.RetryOnConflict, re-reading the object.
// Like localcluster, this package is test infrastructure and must not be imported by pkg/.
package podsim
