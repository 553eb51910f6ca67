package controller

import (
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

// verdict is what the controller may do with an existing NEG, judged from the NEG alone.
type verdict int

const (
	// notOurs: the description does not name this cluster (another cluster, a user's NEG, an
	// empty or unparseable description). Never touched, except that a wanted generated name
	// with an empty description is adopted as GKE does (see naming.Classify).
	notOurs verdict = iota
	// ownedGenerated: ours: a type we create (GCE_VM_IP_PORT or NON_GCP_PRIVATE_IP_PORT),
	// description names this cluster, configured network, and the name is exactly the one this
	// cluster generates for the description's namespace, Service and port.
	ownedGenerated
	// ownedCustom: as ownedGenerated but with a custom name (or, with adoptHybrid, a name
	// k8s-hybrid-neg-controller generates for the description's Service port); it is ours only
	// while (or after) the Service of the description claims the name (see Controller.claimed).
	ownedCustom
	// hybridController: a NON_GCP_PRIVATE_IP_PORT NEG k8s-hybrid-neg-controller created (its
	// markers, naming.HybridControllerService; on the configured network). With adoptHybrid it is
	// ours like ownedCustom, but claimed only through the Service's hybrid-neg-status (see
	// Controller.claimed); its description carries no port. Without adoptHybrid it is never
	// touched (and the Service is left to that controller, hybrid.go).
	hybridController
	// The description names this cluster, yet another check fails; never touched, counted in
	// the unowned_negs metric and logged once.
	wrongType    // a type we do not create, e.g. a GKE L4 GCE_VM_IP NEG
	wrongNetwork // on another network (or a hybrid NEG with a subnetwork)
	wrongName    // a generated-looking name this cluster does not generate for its description
)

// unownedReason is the unowned_negs label of a verdict that names this cluster but is not ours
// ("" for the others).
func (v verdict) unownedReason() string {
	switch v {
	case wrongType:
		return metrics.UnownedType
	case wrongNetwork:
		return metrics.UnownedNetwork
	case wrongName:
		return metrics.UnownedName
	}
	return ""
}

// ownershipRule decides which existing NEGs are this controller's. It is stricter than GKE's
// (which trusts a matching description, and for GC any name with the k8s1-<uid8> prefix): a
// NEG is ours only if all of these hold —
//
//	networkEndpointType       GCE_VM_IP_PORT or NON_GCP_PRIVATE_IP_PORT (empty counts as the API
//	                          default, GCE_VM_IP_PORT); a hybrid NEG has no subnetwork
//	description cluster-uid   this cluster's (the kube-system Namespace UID)
//	network                   the configured network (when both are known)
//	name                      Namer.IsGeneratedFor(description), or a custom name (not k8s1-/k8s2-)
//	                          that the description's Service claims
//
// so a GKE L4 NEG with our description, a NEG of a cluster restored from the same etcd backup
// (same cluster-uid, another naming UID), or a NEG on another network is never detached from
// or deleted. Which of the two types a Service's NEGs must have is decided per Service
// (Controller.mismatch): a NEG of ours of the other type is refused, never used.
//
// With adoptHybrid (--adopt-hybrid-neg-controller-negs) two more kinds count, both only with
// the Service's claim: NEGs of k8s-hybrid-neg-controller (hybridController), and NEGs of ours
// named as that controller names a Service port (naming.IsHybridControllerName, ownedCustom):
// a Service taken over keeps its names.
type ownershipRule struct {
	clusterUID  string
	network     string // configured network: URL, partial URL or bare name; "" = not checked
	namer       naming.Namer
	adoptHybrid bool
}

// judge returns the parsed description of n and the verdict on it.
func (r ownershipRule) judge(n gce.NEG) (naming.Description, verdict) {
	if ns, svc, ok := naming.HybridControllerService(n.Description, n.Annotations); ok {
		if negType(n) != gce.TypeNonGCPPrivateIPPort || r.misfit(n) != notOurs {
			return naming.Description{}, notOurs
		}
		return naming.Description{Namespace: ns, ServiceName: svc}, hybridController
	}
	d, err := naming.ParseDescription(n.Description)
	if err != nil || d.ClusterUID == "" || d.ClusterUID != r.clusterUID {
		return naming.Description{}, notOurs
	}
	if v := r.misfit(n); v != notOurs {
		return d, v
	}
	switch {
	case r.namer.IsGeneratedFor(n.Name, d):
		return d, ownedGenerated
	case r.adoptHybrid && r.hybridControllerName(n.Name, d):
		return d, ownedCustom
	case naming.LooksGenerated(n.Name):
		return d, wrongName
	}
	return d, ownedCustom
}

// ours reports whether a verdict makes a NEG ours (listed for its Service; custom names and
// k8s-hybrid-neg-controller's NEGs still need the Service's claim).
func (r ownershipRule) ours(v verdict) bool {
	return v == ownedGenerated || v == ownedCustom || (v == hybridController && r.adoptHybrid)
}

// hybridControllerName reports whether name is what k8s-hybrid-neg-controller generates for the
// Service port of d.
func (r ownershipRule) hybridControllerName(name string, d naming.Description) bool {
	port, ok := descPort(d)
	return ok && naming.IsHybridControllerName(name, d.Namespace, d.ServiceName, port)
}

// misfit returns wrongType or wrongNetwork when n's type or network rules it out whatever its
// description says, else notOurs (the zero value: nothing against it).
func (r ownershipRule) misfit(n gce.NEG) verdict {
	switch t := negType(n); {
	case t != gce.TypeGCEVMIPPort && t != gce.TypeNonGCPPrivateIPPort:
		return wrongType
	case !r.sameNetwork(n.Network), t == gce.TypeNonGCPPrivateIPPort && n.Subnetwork != "":
		return wrongNetwork
	}
	return notOurs
}

// negType is the type of n, empty counting as the API default GCE_VM_IP_PORT.
func negType(n gce.NEG) string {
	if n.Type == "" {
		return gce.TypeGCEVMIPPort
	}
	return n.Type
}

// sameNetwork reports whether a NEG's network URL is the configured network (true when either
// is unknown). A bare configured name is compared with the URL's last segment.
func (r ownershipRule) sameNetwork(negNetwork string) bool {
	if r.network == "" || negNetwork == "" {
		return true
	}
	if gce.LastSegment(r.network) == r.network {
		return gce.LastSegment(negNetwork) == r.network
	}
	return gce.SameResource(negNetwork, r.network)
}
