package endpoints

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// SkipReason says why an endpoint was left out of the desired set.
type SkipReason string

// Skip reasons, in the order they are checked.
const (
	// SkipOtherFamily: the endpoint is in a slice of an address family its NEGs do not take
	// (IPv6 slices of an IPv4 Service, FQDN slices), or its address is not of its slice's
	// family. In dual-stack Services with dual-stack NEGs off, the IPv6 slices are counted
	// here, so this reason is informational.
	SkipOtherFamily SkipReason = "OtherFamily"
	// SkipNoPodRef: the endpoint has no targetRef to a Pod.
	SkipNoPodRef SkipReason = "NoPodRef"
	// SkipNoNodeName: the endpoint has no nodeName.
	SkipNoNodeName SkipReason = "NoNodeName"
	// SkipUnknownNode: the endpoint's node is not among the known nodes.
	SkipUnknownNode SkipReason = "UnknownNode"
	// SkipNodeWithoutZone: the endpoint's node has no zone.
	SkipNodeWithoutZone SkipReason = "NodeWithoutZone"
	// SkipZoneWithoutNEG: the endpoint's zone is not one of the NEG zones.
	SkipZoneWithoutNEG SkipReason = "ZoneWithoutNEG"
	// SkipMissingIPv6: DualStack only: the pod is in an IPv4 slice but not (yet) in an IPv6
	// one while its node has an IPv6 pod range; it waits for its IPv6 address rather than
	// being attached IPv4-only and migrated a moment later. Transient while the EndpointSlice
	// controller writes the two slices, so informational.
	SkipMissingIPv6 SkipReason = "MissingIPv6"
	// SkipMissingIPv4: DualStack only: the pod is in an IPv6 slice but in no IPv4 one.
	// Informational, like SkipMissingIPv6.
	SkipMissingIPv4 SkipReason = "MissingIPv4"
)

// Informational reports whether skips for r are expected in normal operation (other
// families, pods waiting for their second address), so that they are not warned about.
func (r SkipReason) Informational() bool {
	return r == SkipOtherFamily || r == SkipMissingIPv6 || r == SkipMissingIPv4
}

// Stack is the address families of a Service's NEG endpoints.
type Stack int

const (
	// IPv4 endpoints from the IPv4 slices: single-stack IPv4 Services, and every Service when
	// dual-stack NEGs are off.
	IPv4 Stack = iota
	// DualStack endpoints carry each pod's IPv4 and IPv6 address, paired per pod and port from
	// the IPv4 and IPv6 slices; pods on nodes without an IPv6 pod range get IPv4 endpoints.
	DualStack
	// IPv6 endpoints (IPv6 address only) from the IPv6 slices: IPv6-only Services when
	// IPv6-only NEGs are enabled.
	IPv6
)

// String names the stack as the Service's ipFamilies would.
func (s Stack) String() string {
	switch s {
	case DualStack:
		return "IPv4,IPv6"
	case IPv6:
		return "IPv6"
	}
	return "IPv4"
}

// StackOf returns the stack of svc's NEG endpoints: from spec.ipFamilies (the primary family
// first; empty means IPv4), with dual-stack NEGs allowed by dualStack and IPv6-only ones by
// ipv6Only. ok is false for an IPv6-only Service while ipv6Only is off: its NEGs take IPv4
// endpoints only and stay empty (callers warn).
func StackOf(svc *corev1.Service, dualStack, ipv6Only bool) (st Stack, ok bool) {
	var v4, v6 bool
	for _, f := range svc.Spec.IPFamilies {
		v4, v6 = v4 || f == corev1.IPv4Protocol, v6 || f == corev1.IPv6Protocol
	}
	switch {
	case v4 && v6 && dualStack:
		return DualStack, true
	case v6 && !v4 && ipv6Only:
		return IPv6, true
	case v6 && !v4:
		return IPv4, false
	}
	return IPv4, true
}

// PodRef names the pod behind an endpoint.
type PodRef struct {
	Namespace string
	Name      string
}

func (p PodRef) less(o PodRef) bool {
	if p.Namespace != o.Namespace {
		return p.Namespace < o.Namespace
	}
	return p.Name < o.Name
}

// Result is the desired state of the NEGs of one Service port.
type Result struct {
	// ByZone holds the desired endpoints per zone, with a set for every NEG zone.
	ByZone map[string]neg.EndpointSet
	// Pods says which pod each desired endpoint is.
	Pods map[neg.Endpoint]PodRef
	// Ready holds the EndpointSlice ready condition of each desired endpoint (nil ready = true).
	Ready map[neg.Endpoint]bool
	// Skipped counts the endpoint entries left out, by reason. Reasons with no skips are absent.
	Skipped map[SkipReason]int
	// Waiting holds, per zone, the one-address endpoints of dual-stack pods waiting for their
	// other address (SkipMissingIPv6, SkipMissingIPv4). They are not desired, but a NEG that
	// already holds an endpoint of such a pod keeps it (plan.Migration.Waiting): a Service
	// switched to dual-stack must not lose its endpoints while the IPv6 slice is written.
	Waiting map[string]neg.EndpointSet
}

// Desired computes the endpoints of one Service port per NEG zone.
//
// servicePortName is the Service port's name ("" if unnamed); in each slice the port with that name
// and protocol TCP gives the endpoint port, and a slice without it contributes nothing (it belongs
// to pods that do not serve this port). nodes maps node name to zones.Node; negZones are the zones
// that have a NEG; stack says which slices are read and how addresses combine. Each endpoint's
// instance is its node's Instance: empty for nodes placed by a zones.Mapping (hybrid NEGs). All
// maps in the Result are non-nil.
func Desired(servicePortName string, slices []*discoveryv1.EndpointSlice, nodes map[string]zones.Node, negZones []string, stack Stack) Result {
	r := Result{
		ByZone:  make(map[string]neg.EndpointSet, len(negZones)),
		Pods:    map[neg.Endpoint]PodRef{},
		Ready:   map[neg.Endpoint]bool{},
		Skipped: map[SkipReason]int{},
		Waiting: map[string]neg.EndpointSet{},
	}
	for _, z := range negZones {
		r.ByZone[z] = neg.EndpointSet{}
	}
	var ps pairs
	if stack == DualStack {
		ps = pairs{}
	}
	for _, s := range slices {
		if s == nil {
			continue
		}
		port, ok := slicePort(s, servicePortName)
		if !ok {
			continue
		}
		for i := range s.Endpoints {
			e, ok := r.place(s, &s.Endpoints[i], port, nodes, stack)
			switch {
			case !ok:
			case ps != nil:
				ps.add(e)
			default:
				r.insert(e)
			}
		}
	}
	for _, p := range ps {
		r.insertPair(p)
	}
	return r
}

// entry is one slice endpoint placed in a zone: its endpoint holds one address.
type entry struct {
	zone  string
	ep    neg.Endpoint
	pod   PodRef
	ready bool
	// dualStackNode: the node has an IPv6 pod range (see SkipMissingIPv6).
	dualStackNode bool
}

// place checks one slice endpoint and returns it as an entry, or counts why it cannot be placed.
func (r *Result) place(s *discoveryv1.EndpointSlice, ep *discoveryv1.Endpoint, port int64, nodes map[string]zones.Node, stack Stack) (entry, bool) {
	if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
		return entry{}, false
	}
	v4 := s.AddressType == discoveryv1.AddressTypeIPv4
	v6 := s.AddressType == discoveryv1.AddressTypeIPv6
	if !(v4 && stack != IPv6 || v6 && stack != IPv4) || len(ep.Addresses) == 0 || !isFamily(ep.Addresses[0], v6) {
		r.Skipped[SkipOtherFamily]++
		return entry{}, false
	}
	if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || ep.TargetRef.Name == "" {
		r.Skipped[SkipNoPodRef]++
		return entry{}, false
	}
	if ep.NodeName == nil || *ep.NodeName == "" {
		r.Skipped[SkipNoNodeName]++
		return entry{}, false
	}
	node, ok := nodes[*ep.NodeName]
	if !ok {
		r.Skipped[SkipUnknownNode]++
		return entry{}, false
	}
	if node.Zone == "" {
		r.Skipped[SkipNodeWithoutZone]++
		return entry{}, false
	}
	if _, ok := r.ByZone[node.Zone]; !ok {
		r.Skipped[SkipZoneWithoutNEG]++
		return entry{}, false
	}
	// An empty instance is a hybrid (NON_GCP_PRIVATE_IP_PORT) endpoint: zones.Mapping leaves it
	// empty, zones.FromNode never does.
	e := entry{zone: node.Zone, ep: neg.Endpoint{Instance: node.Instance, Port: port}, dualStackNode: node.DualStack,
		pod: PodRef{Namespace: ep.TargetRef.Namespace, Name: ep.TargetRef.Name}, ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready}
	if v6 {
		e.ep.IPv6 = canonical(ep.Addresses[0])
	} else {
		e.ep.IP = ep.Addresses[0]
	}
	if e.pod.Namespace == "" {
		e.pod.Namespace = s.Namespace
	}
	return e, true
}

// insert adds e to its zone's set. The same endpoint from several slices is one endpoint: its
// pod is the first in namespace/name order, and it is ready if any copy is.
func (r *Result) insert(e entry) {
	set := r.ByZone[e.zone]
	if set.Has(e.ep) {
		if e.pod.less(r.Pods[e.ep]) {
			r.Pods[e.ep] = e.pod
		}
		r.Ready[e.ep] = r.Ready[e.ep] || e.ready
		return
	}
	set.Insert(e.ep)
	r.Pods[e.ep] = e.pod
	r.Ready[e.ep] = e.ready
}

// pairKey is one pod's endpoint for one port, in one zone: its IPv4 and IPv6 entries pair up.
type pairKey struct {
	pod      PodRef
	port     int64
	instance string
	zone     string
}

// pair is the IPv4 and IPv6 entries of one pairKey; ready if any copy is.
type pair struct {
	v4, v6 *entry
}

// pairs collects a DualStack Service's entries by pod and port.
type pairs map[pairKey]*pair

// add records e under its pod and port. Duplicates (one pod in several slices of a family)
// keep the lowest address and are ready if any copy is.
func (ps pairs) add(e entry) {
	k := pairKey{pod: e.pod, port: e.ep.Port, instance: e.ep.Instance, zone: e.zone}
	p := ps[k]
	if p == nil {
		p = &pair{}
		ps[k] = p
	}
	slot, addr := &p.v4, func(x *entry) string { return x.ep.IP }
	if e.ep.IPv6 != "" {
		slot, addr = &p.v6, func(x *entry) string { return x.ep.IPv6 }
	}
	switch {
	case *slot == nil:
		*slot = &e
	case addr(&e) < addr(*slot):
		e.ready = e.ready || (*slot).ready
		*slot = &e
	default:
		(*slot).ready = (*slot).ready || e.ready
	}
}

// insertPair adds the dual-stack endpoint of p, or its IPv4 endpoint when the pod's node has
// no IPv6 pod range, or counts why the pod waits.
func (r *Result) insertPair(p *pair) {
	switch {
	case p.v4 != nil && p.v6 != nil:
		e := *p.v4
		e.ep.IPv6 = p.v6.ep.IPv6
		e.ready = e.ready || p.v6.ready
		r.insert(e)
	case p.v4 != nil && !p.v4.dualStackNode:
		r.insert(*p.v4)
	case p.v4 != nil:
		r.Skipped[SkipMissingIPv6]++
		r.wait(p.v4)
	default:
		r.Skipped[SkipMissingIPv4]++
		r.wait(p.v6)
	}
}

// wait records the endpoint of a pod waiting for its other address.
func (r *Result) wait(e *entry) {
	if r.Waiting[e.zone] == nil {
		r.Waiting[e.zone] = neg.EndpointSet{}
	}
	r.Waiting[e.zone].Insert(e.ep)
}

// slicePort returns the number of the TCP port named name in s.
func slicePort(s *discoveryv1.EndpointSlice, name string) (int64, bool) {
	for _, p := range s.Ports {
		pName := ""
		if p.Name != nil {
			pName = *p.Name
		}
		if pName != name || p.Port == nil {
			continue
		}
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		return int64(*p.Port), true
	}
	return 0, false
}

// isFamily reports whether s is an IPv4 address (v6 false) or an IPv6 one (v6 true).
func isFamily(s string, v6 bool) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return false
	}
	if v6 {
		return a.Is6() && !a.Is4In6()
	}
	return a.Is4()
}

// canonical renders an IPv6 address as GCE lists it (RFC 5952 form), so that endpoints read
// back from a NEG compare equal to the desired ones.
func canonical(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}
