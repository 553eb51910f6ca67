package wanted

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// IngressClassAnnotation is the legacy annotation selecting an Ingress controller.
const IngressClassAnnotation = "kubernetes.io/ingress.class"

// gceIngressClasses are the ingress.class values served by GKE's Ingress controllers.
var gceIngressClasses = []string{"gce", "gce-internal", "gce-regional-external"}

// isGCEIngress reports whether ing is handled by a GCE load balancer: its
// kubernetes.io/ingress.class is one of the GCE classes, or it has neither that annotation nor
// spec.ingressClassName (GKE's default).
func isGCEIngress(ing *networkingv1.Ingress) bool {
	if class, ok := ing.Annotations[IngressClassAnnotation]; ok {
		return slices.Contains(gceIngressClasses, class)
	}
	return ing.Spec.IngressClassName == nil
}

// ingressBackends returns every Service backend of ing: the default backend and the backend of
// each rule path.
func ingressBackends(ing *networkingv1.Ingress) []*networkingv1.IngressServiceBackend {
	var out []*networkingv1.IngressServiceBackend
	if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil {
		out = append(out, b.Service)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service != nil {
				out = append(out, p.Backend.Service)
			}
		}
	}
	return out
}

// IngressServiceNames returns the names of the Services ing references, sorted, without
// duplicates.
func IngressServiceNames(ing *networkingv1.Ingress) []string {
	var out []string
	for _, b := range ingressBackends(ing) {
		if b.Name != "" {
			out = append(out, b.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// IngressPorts returns the Service ports of svc referenced by the GCE-class Ingresses among
// ings (any namespace; others are ignored), sorted. A backend names the Service port by number
// or by name; references to ports the Service does not have are ignored.
func IngressPorts(svc *corev1.Service, ings []*networkingv1.Ingress) []int32 {
	var out []int32
	for _, ing := range ings {
		if ing.Namespace != svc.Namespace || !isGCEIngress(ing) {
			continue
		}
		for _, b := range ingressBackends(ing) {
			if b.Name != svc.Name {
				continue
			}
			if p, ok := resolveServicePort(svc, b.Port); ok {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveServicePort maps an Ingress backend port (number or name) to a port of svc.
func resolveServicePort(svc *corev1.Service, ref networkingv1.ServiceBackendPort) (int32, bool) {
	for _, sp := range svc.Spec.Ports {
		if ref.Name != "" && sp.Name == ref.Name {
			return sp.Port, true
		}
		if ref.Name == "" && ref.Number != 0 && sp.Port == ref.Number {
			return sp.Port, true
		}
	}
	return 0, false
}
