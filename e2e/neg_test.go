//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/podsim"
)

const standalone80 = `{"exposed_ports":{"80":{}}}`

// TestAnnotatedServiceGetsNEGsInAllZones: annotate → NEGs in every node zone holding exactly the
// pods' endpoints, with GKE's name, and a Create event.
func TestAnnotatedServiceGetsNEGsInAllZones(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 6, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 6, 90*time.Second)
	st, _ := negStatus(t, ns, "web")
	if fmt.Sprint(st.Zones) != fmt.Sprint(initialZones) {
		t.Errorf("neg-status zones = %v, want %v", st.Zones, initialZones)
	}
	if len(name) < 5 || name[:5] != "k8s1-" {
		t.Errorf("NEG name %q is not a GKE generated name", name)
	}
	expectEvent(t, ns, "web", "Create", 30*time.Second)
}

// TestScaleAcrossBatchLimit: 3 → 600 → 0 replicas crosses the 500-endpoint batch size; no
// attach or detach is ever rejected, and the NEGs follow exactly.
func TestScaleAcrossBatchLimit(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "big", 3, 9376)
	createService(t, ns, "big", "big", standalone80, 80)
	expectSynced(t, ns, "big", "big", 80, 9376, 3, 90*time.Second)
	mark := time.Now()
	scale(t, ns, "big", 600)
	expectSynced(t, ns, "big", "big", 80, 9376, 600, 5*time.Minute)
	scale(t, ns, "big", 0)
	expectSynced(t, ns, "big", "big", 80, 9376, 0, 3*time.Minute)
	if bad := failedEndpointCalls(mark); len(bad) > 0 {
		t.Errorf("%d attach/detach calls were rejected, first: %+v", len(bad), bad[0])
	}
	t.Logf("attach calls: %d, detach calls: %d", countCalls(attachMethod, mark), countCalls(detachMethod, mark))
}

// TestPodReplacedWithNewIP: a deleted pod's endpoint leaves, its replacement's arrives.
func TestPodReplacedWithNewIP(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)
	pods, err := env.Kube.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("listing pods: %v", err)
	}
	victim := pods.Items[0]
	if err := env.Kube.CoreV1().Pods(ns).Delete(ctxFor(t), victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	name := expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)
	for _, eps := range gceNEGs(name) {
		for _, e := range eps {
			if e.IP == victim.Status.PodIP {
				t.Errorf("deleted pod's IP %s still attached", e.IP)
			}
		}
	}
}

// TestNodeInNewZone: a node registered in a zone without nodes makes the NEG appear there.
func TestNodeInNewZone(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)
	node := podsim.NodeSpec{Name: "node-" + spareZone + "-0", Zone: spareZone, PodCIDR: "10.64.200.0/24", IP: "10.1.0.200"}
	if err := podsim.AddNode(ctxFor(t), env.Kube, env.Compute, env.Project, node); err != nil {
		t.Fatalf("adding node: %v", err)
	}
	t.Cleanup(func() { _ = podsim.RemoveNode(ctxFor(t), env.Kube, env.Compute, env.Project, node) })
	waitFor(t, 60*time.Second, "NEG in the new zone", func() (bool, string) {
		_, ok := gceNEGs(name)[spareZone]
		return ok, "no NEG in " + spareZone
	})
	// Pods scheduled from now on may land there; the NEGs still follow exactly.
	scale(t, ns, "web", 8)
	expectSynced(t, ns, "web", "web", 80, 8080, 8, 90*time.Second)
}

// TestCustomName: exposed_ports with a custom name creates NEGs with exactly that name.
func TestCustomName(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	custom := "e2e-custom-" + ns[len(ns)-4:]
	createService(t, ns, "web", "web", `{"exposed_ports":{"80":{"name":"`+custom+`"}}}`, 80)
	if got := expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second); got != custom {
		t.Fatalf("NEG name %q, want %q", got, custom)
	}
}

// TestMalformedAnnotation: a bad annotation gives a Warning event and nothing in GCE for that
// Service, while another Service in the namespace is synced normally.
func TestMalformedAnnotation(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "bad-json", "web", `{"exposed_ports":`, 80)
	createService(t, ns, "bad-port", "web", `{"exposed_ports":{"81":{}}}`, 80)
	createService(t, ns, "good", "web", standalone80, 80)
	expectSynced(t, ns, "good", "web", 80, 8080, 3, 90*time.Second)
	for svc, reason := range map[string]string{"bad-json": "InvalidNEGAnnotation", "bad-port": "UnknownNEGPort"} {
		ev := expectEvent(t, ns, svc, reason, 30*time.Second)
		if ev.Type != "Warning" {
			t.Errorf("%s: event type %s, want Warning", svc, ev.Type)
		}
		if _, ok := negStatus(t, ns, svc); ok {
			t.Errorf("%s: has a neg-status", svc)
		}
	}
	for _, r := range env.GCE.Requests() {
		if strings.Contains(r.Path, "-bad-") {
			t.Errorf("GCE request for a rejected Service: %s %s", r.HTTPMethod, r.Path)
		}
	}
}

// TestAnnotationRemovedDeletesNEGs: removing the annotation detaches and deletes the NEGs and
// the neg-status.
func TestAnnotationRemovedDeletesNEGs(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)
	setNEGAnnotation(t, ns, "web", "")
	expectNoNEG(t, name, 60*time.Second)
	waitFor(t, 30*time.Second, "neg-status removed", func() (bool, string) {
		_, ok := negStatus(t, ns, "web")
		return !ok, "neg-status still present"
	})
}

// TestServiceDeletedWhileControllerDown: garbage collection after a restart removes the NEGs of
// a Service that was deleted while no controller ran.
func TestServiceDeletedWhileControllerDown(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)
	if err := env.Controller().Stop(15 * time.Second); err != nil {
		t.Logf("stop: %v", err)
	}
	if err := env.Kube.CoreV1().Services(ns).Delete(ctxFor(t), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(gceNEGs(name)) == 0 {
		t.Fatal("NEGs vanished while the controller was down")
	}
	restartController(t)
	expectNoNEG(t, name, 90*time.Second)
}

// TestRestartDuringLargeSync: kill -9 the controller while a 400-endpoint sync is in flight
// (slow operations); the restarted controller converges without a rejected attach or detach.
func TestRestartDuringLargeSync(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "big", 400, 8080)
	// Let the pods exist first, then annotate, so the controller has one large sync to do.
	waitFor(t, 3*time.Minute, "400 pods running", func() (bool, string) {
		eps, err := podEndpoints(t, ns, "big", 8080)
		if err != nil {
			return false, err.Error()
		}
		return eps.Len() == 400, fmt.Sprintf("%d pods with IPs", eps.Len())
	})
	env.GCE.InjectFault(fakegce.Fault{Method: attachMethod, Latency: 2 * time.Second})
	t.Cleanup(env.GCE.ClearFaults)
	mark := time.Now()
	createService(t, ns, "big", "big", standalone80, 80)
	waitFor(t, 60*time.Second, "attach calls in flight", func() (bool, string) {
		return countCalls(attachMethod, mark) > 0, "no attach yet"
	})
	env.Controller().Kill()
	env.GCE.ClearFaults()
	restartController(t)
	expectSynced(t, ns, "big", "big", 80, 8080, 400, 2*time.Minute)
	if bad := failedEndpointCalls(mark); len(bad) > 0 {
		t.Errorf("%d attach/detach calls were rejected (duplicates?), first: %+v", len(bad), bad[0])
	}
}

// TestConvergesUnderFaults: with 20% 429 and 5% 503 on every NEG call, scaling up and down
// still converges to exactly the pods.
func TestConvergesUnderFaults(t *testing.T) {
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 10, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	expectSynced(t, ns, "web", "web", 80, 8080, 10, 90*time.Second)
	for _, m := range []string{attachMethod, detachMethod, "compute.networkEndpointGroups.listNetworkEndpoints", insertMethod, "compute.networkEndpointGroups.get"} {
		env.GCE.InjectFault(fakegce.Fault{Method: m, Code: 429, Reason: "rateLimitExceeded", Rate: 0.20})
		env.GCE.InjectFault(fakegce.Fault{Method: m, Code: 503, Rate: 0.05})
	}
	t.Cleanup(env.GCE.ClearFaults)
	scale(t, ns, "web", 60)
	expectSynced(t, ns, "web", "web", 80, 8080, 60, 4*time.Minute)
	scale(t, ns, "web", 5)
	expectSynced(t, ns, "web", "web", 80, 8080, 5, 4*time.Minute)
}
