package zones

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Reasons a node is not a candidate, in the order they are checked.
const (
	// ReasonToBeDeleted: the node has the cluster autoscaler's ToBeDeletedByClusterAutoscaler taint.
	ReasonToBeDeleted = "ToBeDeletedByClusterAutoscaler"
	// ReasonMaster: the node has the node-role.kubernetes.io/master label.
	ReasonMaster = "MasterNode"
	// ReasonExcludedByLabel: the node is labelled to be excluded from load balancers.
	ReasonExcludedByLabel = "ExcludedByLabel"
	// ReasonNotReady: the node's Ready condition is missing or not True.
	ReasonNotReady = "NotReady"
	// ReasonNoZone: neither providerID nor zone labels give the node a zone.
	ReasonNoZone = "NoZone"
)

// Well-known node labels and taints.
const (
	LabelZone                    = "topology.kubernetes.io/zone"
	LabelZoneDeprecated          = "failure-domain.beta.kubernetes.io/zone"
	LabelMaster                  = "node-role.kubernetes.io/master"
	LabelExcludeFromLB           = "node.kubernetes.io/exclude-from-external-load-balancers"
	LabelExcludeBalancerAlpha    = "alpha.service-controller.kubernetes.io/exclude-balancer"
	TaintToBeDeletedByAutoscaler = "ToBeDeletedByClusterAutoscaler"
)

const providerIDPrefix = "gce://"

// Node is what the NEG controller needs to know about one Kubernetes Node.
type Node struct {
	// Name is the Kubernetes node name (EndpointSlice nodeName).
	Name string
	// Zone is the GCE zone; empty if unknown.
	Zone string
	// Instance is the GCE instance name used in NEG endpoints; empty for nodes placed by a
	// Mapping (hybrid NEG endpoints carry no instance).
	Instance string
	// Candidate is true when the node counts for NEG zones (see package doc).
	Candidate bool
	// Reason explains why the node is not a candidate; empty for candidates.
	Reason string
	// DualStack is true when the node has an IPv4 and an IPv6 pod range (spec.podCIDRs): its
	// pods have both addresses, so a dual-stack Service's endpoint there waits for both
	// (see endpoints.Desired).
	DualStack bool
}

// ParseProviderID splits a GCE provider ID of the form gce://project/zone/instance. ok is false
// unless all three parts are non-empty and contain no '/' (GKE rejects an empty zone too).
func ParseProviderID(id string) (project, zone, instance string, ok bool) {
	rest, found := strings.CutPrefix(id, providerIDPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// FromNode extracts zone, instance and candidacy from n. A nil n yields a non-candidate with
// Reason ReasonNoZone.
func FromNode(n *corev1.Node) Node {
	if n == nil {
		return Node{Reason: ReasonNoZone}
	}
	out := Node{Name: n.Name, Instance: n.Name}
	if _, zone, instance, ok := ParseProviderID(n.Spec.ProviderID); ok {
		out.Zone, out.Instance = zone, instance
	} else if z := n.Labels[LabelZone]; z != "" {
		out.Zone = z
	} else {
		out.Zone = n.Labels[LabelZoneDeprecated]
	}
	out.Reason = exclusion(n, out.Zone)
	out.Candidate = out.Reason == ""
	out.DualStack = dualStackPodRanges(n)
	return out
}

// dualStackPodRanges reports whether n's pod ranges (spec.podCIDRs) include both families.
func dualStackPodRanges(n *corev1.Node) bool {
	var v4, v6 bool
	for _, c := range n.Spec.PodCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		v4, v6 = v4 || p.Addr().Is4(), v6 || p.Addr().Is6()
	}
	return v4 && v6
}

// exclusion returns why n is not a candidate node, or "" if it is one.
func exclusion(n *corev1.Node, zone string) string {
	if slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintToBeDeletedByAutoscaler }) {
		return ReasonToBeDeleted
	}
	if _, ok := n.Labels[LabelMaster]; ok {
		return ReasonMaster
	}
	if _, ok := n.Labels[LabelExcludeFromLB]; ok {
		return ReasonExcludedByLabel
	}
	if _, ok := n.Labels[LabelExcludeBalancerAlpha]; ok {
		return ReasonExcludedByLabel
	}
	if !isReady(n) {
		return ReasonNotReady
	}
	if zone == "" {
		return ReasonNoZone
	}
	return ""
}

// isReady reports whether n has a Ready condition with status True. If several Ready conditions
// are present (invalid, but possible), all must be True, as in GKE.
func isReady(n *corev1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status != corev1.ConditionTrue {
			return false
		}
		ready = true
	}
	return ready
}

// CandidateZones returns the sorted, duplicate-free zones that hold at least one candidate node;
// nil if there are none.
func CandidateZones(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		if n.Candidate && n.Zone != "" {
			out = append(out, n.Zone)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ByName indexes nodes by name, the form endpoints.Desired takes. Later duplicates win.
func ByName(nodes []Node) map[string]Node {
	out := make(map[string]Node, len(nodes))
	for _, n := range nodes {
		out[n.Name] = n
	}
	return out
}
