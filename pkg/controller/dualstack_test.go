package controller

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// addDualStackNode adds a node whose instance owns the IPv6 range fd20::<idx>:0:0/96 of the
// dual-stack default subnetwork, with IPv4 and IPv6 pod ranges.
func (e *testEnv) addDualStackNode(name, zone string) {
	e.t.Helper()
	idx := len(e.nodes) + 1
	e.nodes[name] = testNode{zone: zone, index: idx}
	v4, v6 := fmt.Sprintf("10.%d.0.0/16", idx), fmt.Sprintf("fd20::%x:0:0/96", idx)
	if err := e.srv.AddInstance(zone, fakegce.InstanceSpec{Name: name, AliasCIDRs: []string{v4}, IPv6: v6}); err != nil {
		e.t.Fatalf("AddInstance: %v", err)
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": zone}},
		Spec:       corev1.NodeSpec{ProviderID: fmt.Sprintf("gce://%s/%s/%s", project, zone, name), PodCIDR: v4, PodCIDRs: []string{v4, v6}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node: %v", err)
	}
}

// podIPv6 is the IPv6 address of the pod with IPv4 address ip on a node of addDualStackNode
// (10.<idx>.<a>.<b> → fd20::<idx>:<a>:<b>), in the canonical form GCE lists.
func podIPv6(ip string) string {
	var idx, a, b int
	if _, err := fmt.Sscanf(ip, "10.%d.%d.%d", &idx, &a, &b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("fd20::%x:%x:%x", idx, a, b)
}

// setIPv6Endpoints writes the IPv6 EndpointSlice of the pods, as the EndpointSlice controller
// does for a dual-stack Service beside the IPv4 one (setEndpoints).
func (e *testEnv) setIPv6Endpoints(ns, svc string, ports []int32, pods []testPod) {
	e.t.Helper()
	e.writeSlice(ns, svc+"-v6", svc, discoveryv1.AddressTypeIPv6, ports, pods, func(p testPod) string { return podIPv6(p.ip) })
}

// dualEndpointsOf is endpointsOf with each endpoint's IPv6 address.
func (e *testEnv) dualEndpointsOf(pods []testPod, p int32) map[string][]neg.Endpoint {
	out := e.endpointsOf(pods, p)
	for _, eps := range out {
		for i := range eps {
			eps[i].IPv6 = podIPv6(eps[i].IP)
		}
		neg.SortEndpoints(eps)
	}
	return out
}

func dualStack(svc *corev1.Service) *corev1.Service {
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
	return svc
}

// TestDualStackServiceGetsBothAddresses: a dual-stack Service's endpoints carry each pod's IPv4
// and IPv6 address, paired from the two slices; the IPv4 slice alone attaches nothing (its pods
// wait for their IPv6 address), so the NEG gets one attach call with the dual-stack endpoints
// and never an IPv4-only endpoint to migrate away later.
func TestDualStackServiceGetsBothAddresses(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{DefaultStackType: fakegce.StackDual})
	e.addDualStackNode("node-a1", zoneA)
	pods := e.pods(4, "node-a1")
	e.createService(dualStack(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80)))
	e.start(func(c *Config) { c.DualStackNEG = true }, 0)
	e.eventually("NEG created", func() error { return e.checkNEG(zoneA, negName("web", 80), nil) })
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.settle()
	if err := e.checkNEG(zoneA, negName("web", 80), nil); err != nil {
		t.Errorf("with the IPv4 slice only: %v (dual-stack pods must wait for their IPv6 address)", err)
	}
	e.setIPv6Endpoints("default", "web", []int32{80}, pods)
	e.eventually("dual-stack endpoints", func() error {
		return e.checkNEG(zoneA, negName("web", 80), e.dualEndpointsOf(pods, 80)[zoneA])
	})
	e.waitQuiet()
	if c := e.srv.Counts(); c[mAttach] != 1 || c[mDetach] != 0 {
		t.Errorf("%d attach and %d detach calls, want 1 and 0", c[mAttach], c[mDetach])
	}
}

// TestDualStackOffKeepsIPv4: with dual-stack NEGs off (GKE's default), a dual-stack Service's
// NEG holds IPv4 endpoints, and its IPv6 slice causes no warning.
func TestDualStackOffKeepsIPv4(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{DefaultStackType: fakegce.StackDual})
	e.addDualStackNode("node-a1", zoneA)
	pods := e.pods(3, "node-a1")
	e.createService(dualStack(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80)))
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.setIPv6Endpoints("default", "web", []int32{80}, pods)
	e.start(func(c *Config) { c.DualStackNEG = false }, 0)
	e.eventually("IPv4 endpoints", func() error {
		return e.checkNEG(zoneA, negName("web", 80), e.endpointsOf(pods, 80)[zoneA])
	})
	e.waitQuiet()
	for _, r := range []string{ReasonEndpointsSkipped, ReasonNoIPv4Endpoints} {
		if evs := e.events("default", "web", r); len(evs) > 0 {
			t.Errorf("%s events: %v", r, evs[0].Message)
		}
	}
}

// TestSingleToDualStackMigratesInSteps: switching a Service with 10 pods in one NEG from
// single- to dual-stack replaces its endpoints one per step (10% of 10): 10 detach calls of one
// endpoint, each followed by the attach of its successor, so the NEG never holds fewer than 9
// pods; it ends with exactly the dual-stack endpoints, and switching back migrates the same way.
func TestSingleToDualStackMigratesInSteps(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{DefaultStackType: fakegce.StackDual})
	e.addDualStackNode("node-a1", zoneA)
	pods := e.pods(10, "node-a1")
	svc := service("default", "web", `{"exposed_ports":{"80":{}}}`, 80)
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	e.createService(svc)
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(func(c *Config) { c.DualStackNEG, c.MigrationPause = true, 20*time.Millisecond }, 0)
	ref := negName("web", 80)
	e.eventually("IPv4 endpoints", func() error { return e.checkNEG(zoneA, ref, e.endpointsOf(pods, 80)[zoneA]) })
	e.waitQuiet()
	before := e.srv.Counts()

	for _, step := range []struct {
		name    string
		svc     *corev1.Service
		v6Slice bool
		want    []neg.Endpoint
	}{
		{"single → dual-stack", dualStack(e.getService("default", "web")), true, e.dualEndpointsOf(pods, 80)[zoneA]},
		{"dual → single-stack", svc, false, e.endpointsOf(pods, 80)[zoneA]},
	} {
		cur := e.getService("default", "web")
		cur.Spec.IPFamilies, cur.Spec.IPFamilyPolicy = step.svc.Spec.IPFamilies, step.svc.Spec.IPFamilyPolicy
		if _, err := e.kube.CoreV1().Services("default").Update(e.ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if step.v6Slice {
			e.setIPv6Endpoints("default", "web", []int32{80}, pods)
		} else if err := e.kube.DiscoveryV1().EndpointSlices("default").Delete(e.ctx, "web-v6", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.eventually(step.name, func() error { return e.checkNEG(zoneA, ref, step.want) })
		e.waitQuiet()
		after := e.srv.Counts()
		if a, d := after[mAttach]-before[mAttach], after[mDetach]-before[mDetach]; a != 10 || d != 10 {
			t.Errorf("%s: %d attach and %d detach calls, want 10 and 10 (one endpoint per step)", step.name, a, d)
		}
		before = after
	}
}
