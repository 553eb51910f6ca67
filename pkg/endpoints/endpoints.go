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
	// SkipNotIPv4: the endpoint is in a non-IPv4 slice (IPv6, FQDN), or has no IPv4 address.
	// In dual-stack Services the IPv6 slices are counted here, so this reason is informational.
	SkipNotIPv4 SkipReason = "NotIPv4"
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
)

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
}

// Desired computes the endpoints of one Service port per NEG zone.
//
// servicePortName is the Service port's name ("" if unnamed); in each slice the port with that name
// and protocol TCP gives the endpoint port, and a slice without it contributes nothing (it belongs
// to pods that do not serve this port). nodes maps node name to zones.Node; negZones are the zones
// that have a NEG. Each endpoint's instance is its node's Instance: empty for nodes placed by a
// zones.Mapping (hybrid NEGs). All maps in the Result are non-nil.
func Desired(servicePortName string, slices []*discoveryv1.EndpointSlice, nodes map[string]zones.Node, negZones []string) Result {
	r := Result{
		ByZone:  make(map[string]neg.EndpointSet, len(negZones)),
		Pods:    map[neg.Endpoint]PodRef{},
		Ready:   map[neg.Endpoint]bool{},
		Skipped: map[SkipReason]int{},
	}
	for _, z := range negZones {
		r.ByZone[z] = neg.EndpointSet{}
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
			r.add(s, &s.Endpoints[i], port, nodes)
		}
	}
	return r
}

// add places one slice endpoint, or counts why it cannot be placed.
func (r *Result) add(s *discoveryv1.EndpointSlice, ep *discoveryv1.Endpoint, port int64, nodes map[string]zones.Node) {
	if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
		return
	}
	if s.AddressType != discoveryv1.AddressTypeIPv4 || len(ep.Addresses) == 0 || !isIPv4(ep.Addresses[0]) {
		r.Skipped[SkipNotIPv4]++
		return
	}
	if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || ep.TargetRef.Name == "" {
		r.Skipped[SkipNoPodRef]++
		return
	}
	if ep.NodeName == nil || *ep.NodeName == "" {
		r.Skipped[SkipNoNodeName]++
		return
	}
	node, ok := nodes[*ep.NodeName]
	if !ok {
		r.Skipped[SkipUnknownNode]++
		return
	}
	if node.Zone == "" {
		r.Skipped[SkipNodeWithoutZone]++
		return
	}
	set, ok := r.ByZone[node.Zone]
	if !ok {
		r.Skipped[SkipZoneWithoutNEG]++
		return
	}
	// An empty instance is a hybrid (NON_GCP_PRIVATE_IP_PORT) endpoint: zones.Mapping leaves it
	// empty, zones.FromNode never does.
	e := neg.Endpoint{Instance: node.Instance, IP: ep.Addresses[0], Port: port}
	pod := PodRef{Namespace: ep.TargetRef.Namespace, Name: ep.TargetRef.Name}
	if pod.Namespace == "" {
		pod.Namespace = s.Namespace
	}
	ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
	if set.Has(e) {
		if pod.less(r.Pods[e]) {
			r.Pods[e] = pod
		}
		r.Ready[e] = r.Ready[e] || ready
		return
	}
	set.Insert(e)
	r.Pods[e] = pod
	r.Ready[e] = ready
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

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}
