package readiness

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// wantsNEGs reports whether svc asks for NEGs: cloud.google.com/neg with exposed_ports or
// ingress. An annotation that does not parse still counts (the controller keeps the Service's
// existing NEGs then, as GKE does), so its pods are not failed open by a typo.
func wantsNEGs(svc *corev1.Service) bool {
	value, ok := svc.Annotations[annotation.NEGKey]
	if !ok {
		return false
	}
	cfg, err := annotation.Parse(value)
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

// podTargets returns the names of the NEGs the Services' neg-status names (sorted, without
// duplicates) and the pod's endpoint in each of them in the zone of its node. Targets are
// empty while the pod has no IP or its node is unknown or has no zone; a Service port whose
// named target port the pod does not have gives no target.
func podTargets(svcs []*corev1.Service, pod *corev1.Pod, node *corev1.Node) (negs []string, targets []target) {
	var zone, instance string
	if node != nil {
		n := zones.FromNode(node)
		zone, instance = n.Zone, n.Instance
	}
	seen := map[target]bool{}
	for _, svc := range svcs {
		st, err := annotation.ParseStatus(svc.Annotations[annotation.NEGStatusKey])
		if err != nil {
			continue
		}
		for portKey, name := range st.NetworkEndpointGroups {
			if !slices.Contains(negs, name) {
				negs = append(negs, name)
			}
			port, err := strconv.ParseInt(portKey, 10, 32)
			if err != nil || pod.Status.PodIP == "" || zone == "" {
				continue
			}
			tp, ok := targetPort(svc, int32(port), pod)
			if !ok {
				continue
			}
			t := target{ref: negRef{Zone: zone, Name: name}, endpoint: neg.Endpoint{Instance: instance, IP: pod.Status.PodIP, Port: int64(tp)}}
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
