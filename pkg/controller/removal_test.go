package controller

import (
	"fmt"
	"testing"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
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
	// GCE deletes a NEG with its endpoints: no detach is needed (nor wanted: a NEG in use
	// must never be emptied, see TestInUseNEGKeepsEndpoints).
	if c := e.srv.Counts(); c[mDetach] != 0 || c[mDelete] != 2 {
		t.Errorf("detach/delete calls = %d/%d, want 0/2", c[mDetach], c[mDelete])
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
