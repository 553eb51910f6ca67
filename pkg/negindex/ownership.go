package negindex

import (
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

// Verdict is what the controller may do with an existing NEG, judged from the NEG alone.
type Verdict int

const (
	// NotOurs: the description does not name this cluster (another cluster, a user's NEG, an
	// empty or unparseable description). Never touched, except that a wanted generated name
	// with an empty description is adopted as GKE does (see naming.Classify).
	NotOurs Verdict = iota
	// OwnedGenerated: ours: a type we create (GCE_VM_IP_PORT or NON_GCP_PRIVATE_IP_PORT),
	// description names this cluster, configured network, and the name is exactly the one this
	// cluster generates for the description's namespace, Service and port.
	OwnedGenerated
	// OwnedCustom: as OwnedGenerated but with a custom name (or, with Rule.AdoptHybrid, a name
	// k8s-hybrid-neg-controller generates for the description's Service port); it is ours only
	// while (or after) the Service of the description claims the name (the controller checks
	// the claim).
	OwnedCustom
	// HybridController: a NON_GCP_PRIVATE_IP_PORT NEG k8s-hybrid-neg-controller created (its
	// markers, naming.HybridControllerService; on the configured network). With
	// Rule.AdoptHybrid it is ours like OwnedCustom, but claimed only through the Service's
	// hybrid-neg-status (the controller checks the claim); its description carries no port.
	// Without AdoptHybrid it is never touched (and the Service is left to that controller).
	HybridController
	// The description names this cluster, yet another check fails; never touched, counted in
	// the unowned_negs metric and logged once.
	WrongType    // a type we do not create, e.g. a GKE L4 GCE_VM_IP NEG
	WrongNetwork // on another network (or a hybrid NEG with a subnetwork)
	WrongName    // a generated-looking name this cluster does not generate for its description
)

// UnownedReason is the unowned_negs label of a verdict that names this cluster but is not ours
// ("" for the others).
func (v Verdict) UnownedReason() string {
	switch v {
	case WrongType:
		return metrics.UnownedType
	case WrongNetwork:
		return metrics.UnownedNetwork
	case WrongName:
		return metrics.UnownedName
	}
	return ""
}

// Rule decides which existing NEGs are this controller's. It is stricter than GKE's
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
// (by the controller): a NEG of ours of the other type is refused, never used.
//
// With AdoptHybrid (--adopt-hybrid-neg-controller-negs) two more kinds count, both only with
// the Service's claim: NEGs of k8s-hybrid-neg-controller (HybridController), and NEGs of ours
// named as that controller names a Service port (naming.IsHybridControllerName, OwnedCustom):
// a Service taken over keeps its names.
type Rule struct {
	// ClusterUID is this cluster's (the kube-system Namespace UID), as NEG descriptions carry it.
	ClusterUID string
	// Network is the configured network: URL, partial URL or bare name; "" = not checked.
	Network string
	// Namer generates this cluster's NEG names.
	Namer naming.Namer
	// AdoptHybrid makes NEGs of k8s-hybrid-neg-controller ours (see above).
	AdoptHybrid bool
}

// Judge returns the parsed description of n and the verdict on it.
func (r Rule) Judge(n gce.NEG) (naming.Description, Verdict) {
	if ns, svc, ok := naming.HybridControllerService(n.Description, n.Annotations); ok {
		if TypeOf(n) != gce.TypeNonGCPPrivateIPPort || r.Misfit(n) != NotOurs {
			return naming.Description{}, NotOurs
		}
		return naming.Description{Namespace: ns, ServiceName: svc}, HybridController
	}
	d, err := naming.ParseDescription(n.Description)
	if err != nil || d.ClusterUID == "" || d.ClusterUID != r.ClusterUID {
		return naming.Description{}, NotOurs
	}
	if v := r.Misfit(n); v != NotOurs {
		return d, v
	}
	switch {
	case r.Namer.IsGeneratedFor(n.Name, d):
		return d, OwnedGenerated
	case r.AdoptHybrid && r.hybridControllerName(n.Name, d):
		return d, OwnedCustom
	case naming.LooksGenerated(n.Name):
		return d, WrongName
	}
	return d, OwnedCustom
}

// Ours reports whether a verdict makes a NEG ours (listed for its Service; custom names and
// k8s-hybrid-neg-controller's NEGs still need the Service's claim).
func (r Rule) Ours(v Verdict) bool {
	return v == OwnedGenerated || v == OwnedCustom || (v == HybridController && r.AdoptHybrid)
}

// hybridControllerName reports whether name is what k8s-hybrid-neg-controller generates for the
// Service port of d.
func (r Rule) hybridControllerName(name string, d naming.Description) bool {
	port, ok := descPort(d)
	return ok && naming.IsHybridControllerName(name, d.Namespace, d.ServiceName, port)
}

// Misfit returns WrongType or WrongNetwork when n's type or network rules it out whatever its
// description says, else NotOurs (the zero value: nothing against it).
func (r Rule) Misfit(n gce.NEG) Verdict {
	switch t := TypeOf(n); {
	case t != gce.TypeGCEVMIPPort && t != gce.TypeNonGCPPrivateIPPort:
		return WrongType
	case !r.sameNetwork(n.Network), t == gce.TypeNonGCPPrivateIPPort && n.Subnetwork != "":
		return WrongNetwork
	}
	return NotOurs
}

// TypeOf is the type of n, empty counting as the API default GCE_VM_IP_PORT.
func TypeOf(n gce.NEG) string {
	if n.Type == "" {
		return gce.TypeGCEVMIPPort
	}
	return n.Type
}

// sameNetwork reports whether a NEG's network URL is the configured network (true when either
// is unknown). A bare configured name is compared with the URL's last segment.
func (r Rule) sameNetwork(negNetwork string) bool {
	if r.Network == "" || negNetwork == "" {
		return true
	}
	if gce.LastSegment(r.Network) == r.Network {
		return gce.LastSegment(negNetwork) == r.Network
	}
	return gce.SameResource(negNetwork, r.Network)
}
