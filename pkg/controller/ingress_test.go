package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func ingress(name, class string, className *string, def *networkingv1.IngressServiceBackend, paths ...networkingv1.IngressServiceBackend) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}}}
	if class != "" {
		ing.Annotations[IngressClassAnnotation] = class
	}
	ing.Spec.IngressClassName = className
	if def != nil {
		ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: def}
	}
	rule := networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}
	for _, p := range paths {
		rule.HTTP.Paths = append(rule.HTTP.Paths, networkingv1.HTTPIngressPath{Path: "/",
			PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{Service: ptr.To(p)}})
	}
	ing.Spec.Rules = []networkingv1.IngressRule{{IngressRuleValue: rule}}
	return ing
}

func byNumber(svc string, p int32) networkingv1.IngressServiceBackend {
	return networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: p}}
}

func byName(svc, port string) networkingv1.IngressServiceBackend {
	return networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: port}}
}

func TestIngressPorts(t *testing.T) {
	svc := service("default", "web", "", 80, 443, 8080)
	cases := []struct {
		name string
		ings []*networkingv1.Ingress
		want []int32
	}{
		{"none", nil, nil},
		{"gce class by number", []*networkingv1.Ingress{ingress("i", "gce", nil, nil, byNumber("web", 80))}, []int32{80}},
		{"gce-internal by name", []*networkingv1.Ingress{ingress("i", "gce-internal", nil, nil, byName("web", "p443"))}, []int32{443}},
		{"unset class is GCE", []*networkingv1.Ingress{ingress("i", "", nil, nil, byNumber("web", 8080))}, []int32{8080}},
		{"ingressClassName is not GCE", []*networkingv1.Ingress{ingress("i", "", ptr.To("nginx"), nil, byNumber("web", 80))}, nil},
		{"other class", []*networkingv1.Ingress{ingress("i", "nginx", nil, nil, byNumber("web", 80))}, nil},
		{"default backend", []*networkingv1.Ingress{ingress("i", "gce", nil, ptr.To(byNumber("web", 443)))}, []int32{443}},
		{"other service and unknown port ignored", []*networkingv1.Ingress{ingress("i", "gce", nil, nil,
			byNumber("other", 80), byNumber("web", 81), byName("web", "nope"), byName("web", "p80"))}, []int32{80}},
		{"merged and sorted", []*networkingv1.Ingress{
			ingress("i1", "gce", nil, nil, byNumber("web", 8080), byNumber("web", 80)),
			ingress("i2", "", nil, ptr.To(byNumber("web", 80)))}, []int32{80, 8080}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, ingressPorts(svc, c.ings)); d != "" {
				t.Errorf("ingressPorts (-want +got):\n%s", d)
			}
		})
	}
	other := ingress("x", "gce", nil, nil, byNumber("web", 80))
	other.Namespace = "elsewhere"
	if got := ingressPorts(svc, []*networkingv1.Ingress{other}); got != nil {
		t.Errorf("Ingress of another namespace counted: %v", got)
	}
}

func TestIngressNEGs(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"ingress":true}`, 80, 443))
	pods := e.pods(3, "node-a1")
	e.setEndpoints("default", "web", []int32{80, 443}, pods)
	e.start(nil, 0)
	create := func(ing *networkingv1.Ingress) {
		if _, err := e.kube.NetworkingV1().Ingresses("default").Create(e.ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(ingress("nginx", "nginx", nil, nil, byNumber("web", 443)))
	create(ingress("lb", "gce", nil, nil, byName("web", "p80")))
	e.eventually("NEG for port 80", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA) })
	if err := e.checkNoNEG(zoneA, negName("web", 443)); err != nil {
		t.Errorf("NEG for a port of a non-GCE Ingress: %v", err)
	}
	// A default backend of an Ingress with no class adds port 443.
	create(ingress("default-lb", "", nil, ptr.To(byNumber("web", 443))))
	e.eventually("NEG for port 443", func() error { return e.checkService("web", 443, negName("web", 443), pods, zoneA) })
	// Deleting that Ingress removes the NEG again.
	if err := e.kube.NetworkingV1().Ingresses("default").Delete(e.ctx, "default-lb", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("443 NEG removed", func() error { return e.checkNoNEG(zoneA, negName("web", 443)) })
	if err := e.checkService("web", 80, negName("web", 80), pods, zoneA); err != nil {
		t.Error(err)
	}
}

// TestInvalidEndpointsAreIsolated checks that endpoints GCE rejects as invalid are split off
// and skipped while the rest of the batch is attached.
func TestInvalidEndpointsAreIsolated(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	good := e.pods(300, "node-a1")
	bad := []testPod{
		{name: "outside-alias-range", node: "node-a1", ip: "192.168.7.7"},
		{name: "outside-alias-range-2", node: "node-a1", ip: "192.168.7.8"},
	}
	e.setEndpoints("default", "web", []int32{80}, append(append([]testPod{}, good...), bad...))
	e.start(nil, 0)
	e.eventually("good endpoints attached", func() error { return e.checkService("web", 80, negName("web", 80), good, zoneA) })
	e.eventually("InvalidEndpoint warning", func() error {
		return e.checkEvent("default", "web", ReasonInvalidEndpoint, "192.168.7.7")
	})
	e.srv.ResetCounts()
	e.ctrlQueueAdd("default", "web")
	if c := e.srv.Counts(); c[mAttach] > 0 {
		t.Errorf("invalid endpoints retried at once: %v", c)
	}
}

// ctrlQueueAdd enqueues a Service on the running controller and waits until it is quiet.
func (e *testEnv) ctrlQueueAdd(ns, name string) {
	e.mu.Lock()
	c := e.ctrl
	e.mu.Unlock()
	c.queue.Add(keyOf(ns, name))
	e.waitQuiet()
}
