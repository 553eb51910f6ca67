package wanted

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/test/objects"
)

func TestIngressPorts(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	for _, p := range []int32{80, 443, 8080} {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p})
	}
	cases := []struct {
		name string
		ings []*networkingv1.Ingress
		want []int32
	}{
		{"none", nil, nil},
		{"gce class by number", []*networkingv1.Ingress{objects.Ingress("default", "i", "gce", nil, nil, objects.BackendPort("web", 80))}, []int32{80}},
		{"gce-internal by name", []*networkingv1.Ingress{objects.Ingress("default", "i", "gce-internal", nil, nil, objects.BackendPortName("web", "p443"))}, []int32{443}},
		{"unset class is GCE", []*networkingv1.Ingress{objects.Ingress("default", "i", "", nil, nil, objects.BackendPort("web", 8080))}, []int32{8080}},
		{"ingressClassName is not GCE", []*networkingv1.Ingress{objects.Ingress("default", "i", "", ptr.To("nginx"), nil, objects.BackendPort("web", 80))}, nil},
		{"other class", []*networkingv1.Ingress{objects.Ingress("default", "i", "nginx", nil, nil, objects.BackendPort("web", 80))}, nil},
		{"default backend", []*networkingv1.Ingress{objects.Ingress("default", "i", "gce", nil, ptr.To(objects.BackendPort("web", 443)))}, []int32{443}},
		{"other service and unknown port ignored", []*networkingv1.Ingress{objects.Ingress("default", "i", "gce", nil, nil,
			objects.BackendPort("other", 80), objects.BackendPort("web", 81), objects.BackendPortName("web", "nope"), objects.BackendPortName("web", "p80"))}, []int32{80}},
		{"merged and sorted", []*networkingv1.Ingress{
			objects.Ingress("default", "i1", "gce", nil, nil, objects.BackendPort("web", 8080), objects.BackendPort("web", 80)),
			objects.Ingress("default", "i2", "", nil, ptr.To(objects.BackendPort("web", 80)))}, []int32{80, 8080}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, IngressPorts(svc, c.ings)); d != "" {
				t.Errorf("ingressPorts (-want +got):\n%s", d)
			}
		})
	}
	other := objects.Ingress("default", "x", "gce", nil, nil, objects.BackendPort("web", 80))
	other.Namespace = "elsewhere"
	if got := IngressPorts(svc, []*networkingv1.Ingress{other}); got != nil {
		t.Errorf("Ingress of another namespace counted: %v", got)
	}
}
