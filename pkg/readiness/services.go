package readiness

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// Placement says how the nodes of pods in hybrid (NON_GCP_PRIVATE_IP_PORT) NEGs are placed:
// which Services have hybrid NEGs (solutions.cloud.google.com/hybrid-neg always,
// cloud.google.com/neg in non-GCP mode; annotation.SourceOf) and the zone mapping that gives
// their nodes a GCE zone (their endpoints carry no instance). The zero value: no non-GCP mode,
// and the nodes of hybrid Services' pods have no zone (their pods get no targets).
type Placement struct {
	// NonGCPMode: cloud.google.com/neg gives hybrid NEGs (--neg-type=non-gcp).
	NonGCPMode bool
	// Zones places the nodes of hybrid NEG pods (--zone-mapping, --default-neg-zone, --region).
	Zones zones.Mapping
}

// wantsNEGs reports whether svc asks for NEGs: cloud.google.com/neg or
// solutions.cloud.google.com/hybrid-neg with exposed_ports or ingress. An annotation that does
// not parse, or both annotations at once, still count (the controller keeps the Service's
// existing NEGs then, as GKE does), so its pods are not failed open by a typo.
func wantsNEGs(svc *corev1.Service) bool {
	src, ok, err := annotation.SourceOf(svc, false) // the NEG type does not matter here
	if !ok || err != nil {
		return ok
	}
	cfg, err := annotation.Parse(svc.Annotations[src.ConfigKey])
	if err != nil {
		return true
	}
	return cfg.Ingress || len(cfg.ExposedPorts) > 0
}

// selects reports whether svc's selector matches the pod (a nil or empty selector matches
// nothing, as for EndpointSlices).
func selects(svc *corev1.Service, pod *corev1.Pod) bool {
	if svc.Namespace != pod.Namespace || len(svc.Spec.Selector) == 0 {
		return false
	}
	return labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels))
}

// negServices returns the Services of services that select the pod and want NEGs.
func negServices(services []*corev1.Service, pod *corev1.Pod) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range services {
		if selects(s, pod) && wantsNEGs(s) {
			out = append(out, s)
		}
	}
	return out
}

// podTargets returns the names of the NEGs the Services' status annotations name (sorted,
// without duplicates) and the pod's endpoint in each of them in the zone of its node: its GCE
// zone and instance, or for hybrid NEGs (hp) its mapped zone and no instance. Targets are
// empty while the pod has no IP or its node is unknown or has no zone; a Service port whose
// named target port the pod does not have gives no target; a Service with both NEG annotations
// gives none.
func podTargets(svcs []*corev1.Service, pod *corev1.Pod, node *corev1.Node, hp Placement) (negs []string, targets []target) {
	var gceNode, hybridNode zones.Node
	if node != nil {
		gceNode, hybridNode = zones.FromNode(node), hp.Zones.FromNode(node)
	}
	seen := map[target]bool{}
	for _, svc := range svcs {
		src, ok, err := annotation.SourceOf(svc, hp.NonGCPMode)
		if !ok || err != nil {
			continue
		}
		st, _, err := annotation.StatusOf(svc, src)
		if err != nil {
			continue
		}
		zone, instance := gceNode.Zone, gceNode.Instance
		if src.Hybrid {
			zone, instance = hybridNode.Zone, ""
		}
		for portKey, name := range st.NetworkEndpointGroups {
			if !slices.Contains(negs, name) {
				negs = append(negs, name)
			}
			port, err := strconv.ParseInt(portKey, 10, 32)
			if err != nil || zone == "" {
				continue
			}
			tp, ok := targetPort(svc, int32(port), pod)
			if !ok {
				continue
			}
			e, ok := podEndpoint(pod, tp)
			if !ok {
				continue
			}
			e.Instance = instance
			t := target{ref: negRef{Zone: zone, Name: name}, endpoint: e}
			if !seen[t] {
				seen[t] = true
				targets = append(targets, t)
			}
		}
	}
	slices.Sort(negs)
	slices.SortFunc(targets, func(a, b target) int {
		if a.ref.Name != b.ref.Name {
			return compare(a.ref.Name, b.ref.Name)
		}
		return int(a.endpoint.Port - b.endpoint.Port)
	})
	return negs, targets
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// targetPort resolves the target port of svc's port number on the pod: a number (0 or unset:
// the port itself), or a container port of that name (TCP).
func targetPort(svc *corev1.Service, port int32, pod *corev1.Pod) (int32, bool) {
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		switch {
		case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
						return cp.ContainerPort, true
					}
				}
			}
			return 0, false
		case sp.TargetPort.IntVal != 0:
			return sp.TargetPort.IntVal, true
		default:
			return sp.Port, true
		}
	}
	return 0, false
}

// BoundNEG is a zonal NEG that a NetworkEndpointGroupBinding (pkg/negbinding) binds to a
// Service port: the pods of that Service are gated by it like by annotation-driven NEGs.
type BoundNEG struct {
	// Service is the Service's name (in the namespace asked for); Port its port number.
	Service string
	Port    int32
	// Zone and Name name the NEG.
	Zone, Name string
}

// Binder returns the bound NEGs of a namespace's Services (nil when there are none).
type Binder func(namespace string) []BoundNEG

// boundServices returns the Services of services that select the pod and have bound NEGs.
func boundServices(services []*corev1.Service, pod *corev1.Pod, bound []BoundNEG) []*corev1.Service {
	if len(bound) == 0 {
		return nil
	}
	var out []*corev1.Service
	for _, s := range services {
		if selects(s, pod) && slices.ContainsFunc(bound, func(b BoundNEG) bool { return b.Service == s.Name }) {
			out = append(out, s)
		}
	}
	return out
}

// gatingServices returns the Services that gate the pod: those selecting it that want NEGs or
// have bound NEGs (each once).
func gatingServices(services []*corev1.Service, pod *corev1.Pod, bound []BoundNEG) []*corev1.Service {
	out := negServices(services, pod)
	for _, s := range boundServices(services, pod, bound) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// boundTargets adds to negs and targets (as podTargets returns them) the pod's endpoints in the
// bound NEGs of the Services svcs: the NEG of the zone of the pod's node, on its instance, at
// the Service port's target port on the pod.
func boundTargets(svcs []*corev1.Service, bound []BoundNEG, pod *corev1.Pod, node *corev1.Node,
	negs []string, targets []target) ([]string, []target) {
	var n zones.Node
	if node != nil {
		n = zones.FromNode(node)
	}
	for _, svc := range svcs {
		for _, b := range bound {
			if b.Service != svc.Name {
				continue
			}
			if !slices.Contains(negs, b.Name) {
				negs = append(negs, b.Name)
			}
			if n.Zone == "" || n.Zone != b.Zone {
				continue
			}
			tp, ok := targetPort(svc, b.Port, pod)
			if !ok {
				continue
			}
			e, ok := podEndpoint(pod, tp)
			if !ok {
				continue
			}
			e.Instance = n.Instance
			t := target{ref: negRef{Zone: b.Zone, Name: b.Name}, endpoint: e}
			if !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
	}
	slices.Sort(negs)
	return negs, targets
}
