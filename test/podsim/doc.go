// Package podsim stands in for the kubelet and the scheduler of a control plane that has
// neither (test/localcluster), so that the real EndpointSlice, Deployment and ReplicaSet
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
//     after min(its grace period, Config.MaxGrace) — or, with Config.Serve, once its containers
//     stopped (below).
//
// Nodes carry topology.kubernetes.io/zone and region, kubernetes.io/hostname, providerID
// gce://<project>/<zone>/<name>, spec.podCIDR(s) and Ready status with InternalIP and Hostname
// addresses, plus ManagedLabel, which is how podsim recognises its own nodes. With a Compute
// client, each node is also created as a Compute Engine instance (in fakegce) whose networkIP is
// the node IP and whose alias IP range is the pod CIDR, so NEG endpoint validation passes.
// External nodes (NodeSpec.External) stand for a cluster outside Google Cloud, as hybrid NEGs
// serve: only their zone labels (another cloud's, e.g. eu-west-1a), no providerID, no instance.
// AddNode, RemoveNode and SetNodeReady change the node set while Run is running.
//
// Address plan (see DefaultNodeAddresses): node N has IP 10.1.0.N and pod CIDR 10.64.N.0/24 up
// to N = 254, then 10.1.1.1 and 10.65.1.0/24 and so on, up to MaxDefaultNodes. Pod and node IPs
// are never loopback, because EndpointSlice validation rejects 127.0.0.0/8. Loopback
// rule (fakegce.LoopbackFor, shared with fakegce's health checker and load balancer): pod IP
// 10.A.B.C is served at 127.A.B.C (Linux routes all of 127/8 to lo, so binding 127.64.1.5 needs
// no setup).
//
// Dual-stack (Config.DualStack, or NodeSpec.IPv6 and PodCIDRv6; plan in dualstack.go): a node
// gets spec.podCIDRs [IPv4, IPv6] and an IPv6 InternalIP, its instance stack type IPV4_IPV6 with
// the internal IPv6 range IPv6/96 (fakegce must have a dual-stack default subnetwork:
// Config.DefaultStackType IPV4_IPV6), and its pods status.podIPs (and hostIPs) [IPv4, IPv6]
// with podIP the IPv4 one. Pod 10.A.B.C on the node with pod CIDR 10.A.B.0/24 gets
// fd20::<A·256+B>:<A>:<B·256+C> (hex), e.g. 10.64.1.5 → fd20::4001:40:105: its IPv6 address
// ends in the IPv4 address's last three bytes, so LoopbackFor reaches both at 127.A.B.C and one
// server serves the pod on both families.
//
// Serving pods (Config.Serve; details in serve.go). Every running, non-hostNetwork pod gets per
// container an HTTP server on LoopbackFor(podIP) and each container TCP port (and its readiness
// probe's port), answering any path with 200 and the pod name (HTTPStatusAnnotation changes the
// status; ?sleep=3s delays the answer). A pod with httpGet readiness probes is ContainersReady
// and Ready as the kubelet would decide from probing that server (initialDelaySeconds,
// periodSeconds, timeoutSeconds, successThreshold, failureThreshold, with caps); other pods keep
// the ReadyDelay behaviour. On deletion each container runs its preStop sleep
// (lifecycle.preStop.sleep.seconds, or exec ["sleep","N"] / ["/bin/sh","-c","... sleep N ..."])
// while still serving, then closes its listeners and lets requests in flight finish; at
// min(grace period, MaxGrace) the rest is cut; then the pod object is deleted. Servers stop when
// the pod goes and when Run returns. Traffic stays on 127.0.0.0/8.
//
// Conflicts on writes are retried with client-go's retry.RetryOnConflict, re-reading the object.
// Like localcluster, this package is test infrastructure and must not be imported by pkg/.
package podsim
