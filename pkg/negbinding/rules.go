package negbinding

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Limits of the spec, GKE's (the CRD enforces them too).
const (
	MaxNEGs         = 50
	MaxZonesPerNEG  = 10
	maxSubnetLength = 63
)

// Validate returns the problems of a binding's spec that make it unusable as a whole: a
// backendRef that is not a Service port of this namespace, NEG names or zones that are not GCE
// names, duplicates, more than the limits. A binding with problems touches nothing. A NEG
// entry without zones is not a problem of the spec (the CRD allows it): that NEG is refused
// with ReasonNoZones.
func Validate(spec Spec) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch r := spec.BackendRef; {
	case r == nil:
		add("spec.backendRef is required")
	default:
		if r.Group != "" && r.Group != "core" {
			add("spec.backendRef.group must be empty (the core group of Services), got %q", r.Group)
		}
		if r.Kind != ServiceKind {
			add("spec.backendRef.kind must be %q, got %q", ServiceKind, r.Kind)
		}
		if r.Name == "" {
			add("spec.backendRef.name is required")
		}
		if r.Port < 1 || r.Port > 65535 {
			add("spec.backendRef.port must be a Service port number (1-65535), got %d", r.Port)
		}
	}
	if n := len(spec.NetworkEndpointGroups); n > MaxNEGs {
		add("spec.networkEndpointGroups has %d entries, at most %d are allowed", n, MaxNEGs)
	}
	names, subnets := map[string]bool{}, map[string]bool{}
	for i, r := range spec.NetworkEndpointGroups {
		at := fmt.Sprintf("spec.networkEndpointGroups[%d]", i)
		if !naming.IsValidName(r.Name) {
			add("%s.name %q is not a valid NEG name (1-63 lowercase letters, digits and hyphens, starting with a letter)", at, r.Name)
		}
		if names[r.Name] {
			add("%s.name %q is listed twice", at, r.Name)
		}
		names[r.Name] = true
		if subnets[r.Subnet] {
			add("%s.subnet %q: only one NEG per subnet", at, r.Subnet)
		}
		subnets[r.Subnet] = true
		if len(r.Subnet) > maxSubnetLength || (r.Subnet != "" && !naming.IsValidName(r.Subnet)) {
			add("%s.subnet %q is not a subnetwork name", at, r.Subnet)
		}
		if len(r.Zones) > MaxZonesPerNEG {
			add("%s.zones has %d entries, at most %d are allowed", at, len(r.Zones), MaxZonesPerNEG)
		}
		seen := map[string]bool{}
		for _, z := range r.Zones {
			if !naming.IsValidName(z) {
				add("%s.zones: %q is not a zone name", at, z)
			}
			if seen[z] {
				add("%s.zones: %q is listed twice", at, z)
			}
			seen[z] = true
		}
	}
	return out
}

// boundRef is one zonal NEG a binding's spec names.
type boundRef struct {
	ref neg.Ref
	// subnet is the spec's subnet of the NEG ("" = the cluster's).
	subnet string
}

// specRefs lists the zonal NEGs of a spec, by name then zone, and the names of the NEGs that
// list no zone.
func specRefs(spec Spec) (refs []boundRef, noZones []string) {
	for _, r := range spec.NetworkEndpointGroups {
		if len(r.Zones) == 0 {
			noZones = append(noZones, r.Name)
		}
		for _, z := range r.Zones {
			refs = append(refs, boundRef{ref: neg.Ref{Zone: z, Name: r.Name}, subnet: r.Subnet})
		}
	}
	slices.SortFunc(refs, func(a, b boundRef) int { return compareRefs(a.ref, b.ref) })
	slices.Sort(noZones)
	return refs, noZones
}

// compareRefs orders zonal NEGs by name, then zone.
func compareRefs(a, b neg.Ref) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Zone, b.Zone)
}

// refusal is why a zonal NEG may not be bound: a condition and event reason and a message.
type refusal struct {
	reason, message string
}

// env is what the rules know of the cluster.
type env struct {
	// clusterUID is the kube-system Namespace UID annotation-driven NEG descriptions name.
	clusterUID string
	// clusterName is the cluster's name ("" if unknown): GKE's binding description names it.
	clusterName string
	// network is the configured network (URL, partial URL or bare name; "" = not checked).
	network string
	// subnetwork is the configured subnetwork (URL, partial URL or bare name; "" = not
	// checked).
	subnetwork string
}

// precheck judges a zonal NEG from the spec alone, before it is read from GCE: allowed by the
// allow-list, a name no controller generates, a subnet the cluster has. nil when nothing
// stands against it.
func precheck(namespace string, r boundRef, allow AllowList, e env) *refusal {
	switch {
	case !allow.Allows(namespace, r.ref.Name):
		return &refusal{ReasonNEGNotAllowed, fmt.Sprintf(
			"NEG %q is not allowed for bindings in namespace %q (--negbinding-allow)", r.ref.Name, namespace)}
	case naming.LooksGenerated(r.ref.Name):
		return &refusal{ReasonNEGManagedByController, fmt.Sprintf(
			"NEG %q has the shape of a name GKE's NEG controllers generate (k8s1-, k8s2-); such NEGs belong to "+
				"their controller and are never bound", r.ref.Name)}
	case r.subnet != "" && e.subnetwork != "" && r.subnet != gce.LastSegment(e.subnetwork):
		return &refusal{ReasonNEGSubnetMismatch, fmt.Sprintf(
			"NEG %q: subnet %q is not the cluster's subnetwork %q (one subnetwork per cluster is supported)",
			r.ref.Name, r.subnet, gce.LastSegment(e.subnetwork))}
	}
	return nil
}

// bindingDescription is GKE's description of a NEG made for a binding; GKE requires it to
// match the binding. neg-controller does not require it, but refuses a NEG whose description
// says it is meant for another cluster or namespace.
type bindingDescription struct {
	ClusterName string `json:"cluster-name"`
	Namespace   string `json:"namespace"`
}

// judge decides whether an existing zonal NEG, as GCE returned it, may be bound by a binding in
// namespace with the spec's subnet (see the package documentation for the table). nil: it may.
func judge(n gce.NEG, namespace, subnet string, e env) *refusal {
	at := fmt.Sprintf("NEG %q in zone %q", n.Name, n.Zone)
	if d, err := naming.ParseDescription(n.Description); err == nil && d.ClusterUID != "" {
		whose := "another cluster's"
		if d.ClusterUID == e.clusterUID {
			whose = "this cluster's"
		}
		return &refusal{ReasonNEGManagedByController, fmt.Sprintf(
			"%s is managed by %s NEG controller (its description names cluster-uid %s, namespace %q, Service %q); "+
				"a binding never touches such NEGs", at, whose, d.ClusterUID, d.Namespace, d.ServiceName)}
	}
	var bd bindingDescription
	if err := json.Unmarshal([]byte(n.Description), &bd); err == nil {
		if bd.Namespace != "" && bd.Namespace != namespace {
			return &refusal{ReasonNEGDescriptionMismatch, fmt.Sprintf(
				"%s: its description is meant for a binding in namespace %q, not %q", at, bd.Namespace, namespace)}
		}
		if bd.ClusterName != "" && e.clusterName != "" && bd.ClusterName != e.clusterName {
			return &refusal{ReasonNEGDescriptionMismatch, fmt.Sprintf(
				"%s: its description is meant for cluster %q, not %q", at, bd.ClusterName, e.clusterName)}
		}
	}
	if n.Type != "" && n.Type != gce.TypeGCEVMIPPort {
		return &refusal{ReasonNEGTypeMismatch, fmt.Sprintf("%s is of type %s; only %s NEGs can be bound",
			at, n.Type, gce.TypeGCEVMIPPort)}
	}
	if !sameResource(n.Network, e.network) {
		return &refusal{ReasonNEGNetworkMismatch, fmt.Sprintf("%s is on network %q, not the cluster's %q",
			at, gce.LastSegment(n.Network), gce.LastSegment(e.network))}
	}
	if n.Subnetwork != "" {
		if subnet != "" && gce.LastSegment(n.Subnetwork) != subnet {
			return &refusal{ReasonNEGSubnetMismatch, fmt.Sprintf("%s is in subnetwork %q, not %q as the binding says",
				at, gce.LastSegment(n.Subnetwork), subnet)}
		}
		if !sameResource(n.Subnetwork, e.subnetwork) {
			return &refusal{ReasonNEGSubnetMismatch, fmt.Sprintf("%s is in subnetwork %q, not the cluster's %q",
				at, gce.LastSegment(n.Subnetwork), gce.LastSegment(e.subnetwork))}
		}
	}
	return nil
}

// sameResource reports whether a resource URL GCE returned names the configured resource
// (true when either is unknown). A bare configured name is compared with the URL's last
// segment.
func sameResource(got, configured string) bool {
	if got == "" || configured == "" {
		return true
	}
	if gce.LastSegment(configured) == configured {
		return gce.LastSegment(got) == configured
	}
	return gce.SameResource(got, configured)
}
