package zones

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Mapping places the nodes of a cluster outside Google Cloud (or any node, for hybrid NEGs) in
// GCE zones: their NEGs are NON_GCP_PRIVATE_IP_PORT NEGs whose endpoints carry no instance, so
// a node needs only a GCE zone. The zero value maps nothing (every node is then without zone,
// unless its zone label already names a zone of Region).
//
// A node's Kubernetes zone is its topology.kubernetes.io/zone label (then the deprecated
// failure-domain.beta.kubernetes.io/zone label); spec.providerID is not consulted. Its GCE zone
// is, in this order:
//
//	the Kubernetes zone is a key of Zones          that entry's value
//	the Kubernetes zone is a zone of Region         the Kubernetes zone itself ("us-central1-a")
//	Default is set                                  Default (also for nodes with no zone label)
//	otherwise                                       none: the node is not a candidate (NoZone)
//
// The second rule keeps nodes that already run in a GCE zone (GKE, GCE VMs, clusters labelled
// with GCE zone names) where they are, so a mapping is needed only for foreign zone names.
// k8s-hybrid-neg-controller has no such rule: it sends every unmapped zone to its default.
type Mapping struct {
	// Region is the GCE region of every zone below (--region).
	Region string
	// Zones maps a Kubernetes zone (the node label) to a GCE zone of Region (--zone-mapping).
	Zones map[string]string
	// Default is the GCE zone for nodes with no zone label or an unmapped one (--default-neg-zone);
	// empty: such nodes have no zone.
	Default string
	// NEGZones are GCE zones that always get a NEG, whether or not a node maps to them
	// (--neg-zones), sorted and duplicate-free.
	NEGZones []string
}

// gceZoneName is the shape of a GCE zone name: <region>-<letter(s)>, e.g. us-central1-a.
var gceZoneName = regexp.MustCompile(`^[a-z]+(-[a-z]+)*[0-9]+-[a-z]+$`)

// IsZoneOf reports whether zone is a well-formed GCE zone name in region ("us-central1-a" is one
// of "us-central1"). Only the name is checked, not whether GCE has such a zone.
func IsZoneOf(zone, region string) bool {
	return region != "" && gceZoneName.MatchString(zone) && strings.HasPrefix(zone, region+"-") &&
		!strings.Contains(zone[len(region)+1:], "-")
}

// ParseZoneMapping parses --zone-mapping: comma-separated <kubernetes zone>=<gce zone> pairs,
// e.g. "eu-west-1a=europe-west1-b,eu-west-1b=europe-west1-c". Blanks around entries are
// ignored; an empty value gives an empty (nil) map. Several Kubernetes zones may map to one GCE
// zone; a Kubernetes zone may appear twice only with the same GCE zone. Zones are not checked
// against a region here (see Mapping.Validate).
func ParseZoneMapping(value string) (map[string]string, error) {
	var out map[string]string
	for _, entry := range splitList(value) {
		k8s, gce, ok := strings.Cut(entry, "=")
		k8s, gce = strings.TrimSpace(k8s), strings.TrimSpace(gce)
		switch {
		case !ok || k8s == "" || gce == "":
			return nil, fmt.Errorf("zone mapping entry %q: want <kubernetes zone>=<gce zone>", entry)
		case strings.Contains(gce, "="):
			return nil, fmt.Errorf("zone mapping entry %q: more than one '='", entry)
		}
		if prev, dup := out[k8s]; dup && prev != gce {
			return nil, fmt.Errorf("zone mapping: kubernetes zone %q is mapped to both %q and %q", k8s, prev, gce)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k8s] = gce
	}
	return out, nil
}

// ParseZoneList parses --neg-zones: comma-separated zone names, returned sorted and
// duplicate-free (nil for an empty value). Zones are not checked here (see Mapping.Validate).
func ParseZoneList(value string) []string {
	out := splitList(value)
	slices.Sort(out)
	return slices.Compact(out)
}

// splitList splits a comma-separated value, trimming blanks and dropping empty entries.
func splitList(value string) []string {
	var out []string
	for _, s := range strings.Split(value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate checks that every GCE zone the mapping names (mapping targets, Default, NEGZones) is
// a zone of Region, and returns one error listing every problem. A mapping that names no zone
// is valid whatever Region is; one that does needs Region.
func (m Mapping) Validate() error {
	var bad []string
	check := func(what, zone string) {
		if !IsZoneOf(zone, m.Region) {
			bad = append(bad, fmt.Sprintf("%s %q", what, zone))
		}
	}
	keys := make([]string, 0, len(m.Zones))
	for k := range m.Zones {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		check("--zone-mapping "+k+"=", m.Zones[k])
	}
	if m.Default != "" {
		check("--default-neg-zone", m.Default)
	}
	for _, z := range m.NEGZones {
		check("--neg-zones", z)
	}
	switch {
	case len(bad) == 0:
		return nil
	case m.Region == "":
		return fmt.Errorf("zones %s need --region to check them against", strings.Join(bad, ", "))
	}
	return fmt.Errorf("not zones of region %s (want %s-<letter>): %s", m.Region, m.Region, strings.Join(bad, ", "))
}

// Empty reports whether the mapping names no zone at all.
func (m Mapping) Empty() bool { return len(m.Zones) == 0 && m.Default == "" && len(m.NEGZones) == 0 }

// GCEZone returns the GCE zone of a Kubernetes zone ("" for a node without zone label) by the
// rules of Mapping, and false when there is none.
func (m Mapping) GCEZone(k8sZone string) (string, bool) {
	if k8sZone != "" {
		if z, ok := m.Zones[k8sZone]; ok {
			return z, true
		}
		if IsZoneOf(k8sZone, m.Region) {
			return k8sZone, true
		}
	}
	return m.Default, m.Default != ""
}

// KubernetesZone returns the zone label of n (the GA label, then the deprecated one); "" if it
// has none.
func KubernetesZone(n *corev1.Node) string {
	if n == nil {
		return ""
	}
	if z := n.Labels[LabelZone]; z != "" {
		return z
	}
	return n.Labels[LabelZoneDeprecated]
}

// FromNode is FromNode for hybrid NEGs: the zone is the node's mapped GCE zone and Instance is
// always empty (hybrid endpoints carry no instance). Candidacy is decided as for GCE nodes; a
// node the mapping gives no zone is not a candidate (ReasonNoZone). A nil n yields a
// non-candidate with Reason ReasonNoZone.
func (m Mapping) FromNode(n *corev1.Node) Node {
	if n == nil {
		return Node{Reason: ReasonNoZone}
	}
	out := Node{Name: n.Name}
	out.Zone, _ = m.GCEZone(KubernetesZone(n))
	out.Reason = exclusion(n, out.Zone)
	out.Candidate = out.Reason == ""
	out.DualStack = dualStackPodRanges(n)
	return out
}

// NEGZonesFor returns the zones hybrid NEGs are wanted in: the zones of the candidate nodes plus
// NEGZones, sorted and duplicate-free.
func (m Mapping) NEGZonesFor(nodes []Node) []string {
	out := append(CandidateZones(nodes), m.NEGZones...)
	slices.Sort(out)
	return slices.Compact(out)
}
