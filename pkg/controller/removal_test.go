package controller

import (
	"fmt"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// syncedWeb starts a controller with Service default/web exposing 80 and 443 in zones A and B
// and waits until its NEGs hold its pods.
func syncedWeb(t *testing.T) (*testEnv, []testPod) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{},"443":{}}}`, 80, 443))
	pods := e.pods(8, "node-a1", "node-b1")
	e.setEndpoints("default", "web", []int32{80, 443}, pods)
	e.start(nil, 0)
	e.eventually("converge", func() error {
		if err := e.checkService("web", 80, negName("web", 80), pods, zoneA, zoneB); err != nil {
			return err
		}
		return e.checkService("web", 443, negName("web", 443), pods, zoneA, zoneB)
	})
	return e, pods
}

func (e *testEnv) checkGone(names ...string) error {
	for _, n := range names {
		for _, z := range []string{zoneA, zoneB} {
			if err := e.checkNoNEG(z, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestRemovePort(t *testing.T) {
	e, pods := syncedWeb(t)
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("443 NEGs deleted", func() error { return e.checkGone(negName("web", 443)) })
	if err := e.checkService("web", 80, negName("web", 80), pods, zoneA, zoneB); err != nil {
		t.Errorf("port 80 disturbed: %v", err)
	}
	if c := e.srv.Counts(); c[mDetach] < 2 {
		t.Errorf("endpoints were not detached before delete: %v", c)
	}
	e.eventually("status", func() error {
		st, _ := e.status("default", "web")
		if _, ok := st.NetworkEndpointGroups["443"]; ok || len(st.NetworkEndpointGroups) != 1 {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	e.eventually("delete events", func() error {
		return e.checkEvent("default", "web", ReasonDelete, fmt.Sprintf("Deleted NEG %q", negName("web", 443)))
	})
}

func TestRemoveAnnotation(t *testing.T) {
	e, _ := syncedWeb(t)
	e.setAnnotation("default", "web", "")
	e.eventually("NEGs deleted", func() error { return e.checkGone(negName("web", 80), negName("web", 443)) })
	e.eventually("status removed", func() error {
		if _, ok := e.status("default", "web"); ok {
			return fmt.Errorf("neg-status still present")
		}
		return nil
	})
}

func TestDeleteService(t *testing.T) {
	e, _ := syncedWeb(t)
	e.deleteService("default", "web")
	e.eventually("NEGs deleted", func() error { return e.checkGone(negName("web", 80), negName("web", 443)) })
}

func TestServiceDeletedWhileDown(t *testing.T) {
	e, _ := syncedWeb(t)
	e.createService(service("default", "other", `{"exposed_ports":{"80":{}}}`, 80))
	e.eventually("other synced", func() error { return e.checkNEG(zoneA, negName("other", 80), nil) })
	e.stop()
	e.deleteService("default", "web")
	e.start(nil, 0)
	e.eventually("GC deleted the NEGs", func() error { return e.checkGone(negName("web", 80), negName("web", 443)) })
	if err := e.checkNEG(zoneA, negName("other", 80), nil); err != nil {
		t.Errorf("GC touched a wanted NEG: %v", err)
	}
}

func TestNEGInUseIsKept(t *testing.T) {
	e, _ := syncedWeb(t)
	name := negName("web", 443)
	cloud := e.newCloud()
	bs := &compute.BackendService{Name: "web-be", Protocol: "HTTP", Backends: []*compute.Backend{{
		Group: gce.NEGURL(project, zoneA, name), BalancingMode: "RATE", MaxRatePerEndpoint: 1,
	}}}
	if _, err := cloud.Service().BackendServices.Insert(project, bs).Context(e.ctx).Do(); err != nil {
		t.Fatalf("insert backend service: %v", err)
	}
	e.eventually("backend service exists", func() error {
		_, err := cloud.Service().BackendServices.Get(project, "web-be").Context(e.ctx).Do()
		return err
	})

	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("NEGInUse", func() error {
		return e.checkEvent("default", "web", ReasonNEGInUse, fmt.Sprintf("NEG %q in zone %q", name, zoneA))
	})
	e.eventually("in-use NEG emptied and kept, the other deleted", func() error {
		if err := e.checkNEG(zoneA, name, nil); err != nil {
			return err
		}
		return e.checkNoNEG(zoneB, name)
	})

	// Once the backend service lets go, the NEG is deleted on a later retry.
	if _, err := cloud.Service().BackendServices.Delete(project, "web-be").Context(e.ctx).Do(); err != nil {
		t.Fatalf("delete backend service: %v", err)
	}
	e.eventually("NEG deleted after release", func() error { return e.checkNoNEG(zoneA, name) })
	time.Sleep(100 * time.Millisecond)
}

// TestNEGDeletedOutsideIsRecreated checks that the periodic listing notices a NEG deleted behind
// the controller's back and that the Service gets it back with its endpoints.
func TestNEGDeletedOutsideIsRecreated(t *testing.T) {
	e, pods := syncedWeb(t)
	name := negName("web", 80)
	if err := e.newCloud().DeleteNEG(e.ctx, zoneA, name); err != nil {
		t.Fatalf("DeleteNEG: %v", err)
	}
	e.eventually("re-created", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB) })
}
