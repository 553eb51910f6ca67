package controller

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/objects"
)

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
	create(objects.Ingress("default", "nginx", "nginx", nil, nil, objects.BackendPort("web", 443)))
	create(objects.Ingress("default", "lb", "gce", nil, nil, objects.BackendPortName("web", "p80")))
	e.eventually("NEG for port 80", func() error { return e.checkService("web", 80, negName("web", 80), pods, zoneA) })
	if err := e.checkNoNEG(zoneA, negName("web", 443)); err != nil {
		t.Errorf("NEG for a port of a non-GCE Ingress: %v", err)
	}
	// A default backend of an Ingress with no class adds port 443.
	create(objects.Ingress("default", "default-lb", "", nil, ptr.To(objects.BackendPort("web", 443))))
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
